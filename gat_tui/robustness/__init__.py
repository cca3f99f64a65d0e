"""Attack evaluation of saved models (`gat-tui eval`, sweep evaluations)."""
