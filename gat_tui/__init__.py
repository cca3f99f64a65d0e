"""gat-tui: the Generative Adversarial Trainer of Lee, Han and Lee (2017), with a terminal UI.

The engine (data, models, perturbations, methods, training, checkpoints) never imports Textual
or Rich; user interfaces subscribe to its events.
"""

__version__ = "0.1.0"
