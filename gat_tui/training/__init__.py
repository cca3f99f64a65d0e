"""Training: the loop (`trainer`), its state and batches, step figures, validation, control."""
