"""The Python API's implementation; import it as `import gat_tui as gt` (see `gat_tui.__all__`).

It sits above the engine (training, robustness, methods, attacks, checkpoints) and calls it;
the engine never imports it, and it imports no user interface.
"""
