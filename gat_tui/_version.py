"""The package version, in a module of its own: the engine records it in checkpoints without
importing `gat_tui` itself, whose public API sits above the engine (see `gat_tui/__init__.py`)."""

__version__ = "0.1.0"
