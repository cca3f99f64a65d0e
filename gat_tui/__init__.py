"""gat-tui: the Generative Adversarial Trainer of Lee, Han and Lee (2017), with a terminal UI.

The Python API, for your own training code (`import gat_tui as gt`):

- `gt.GAT(model, input_shape, c_g=..., lr_g=..., alpha=..., clip=...)`: GAT around your
  classifier: `generator_step` (Eq. 9), `classifier_loss` (Eq. 10), `perturb` (the attack).
- `gt.attacks`: FGSM, FGML2, PGDLinf, PGDL2, RandomL2, GATAttack (and AutoAttack, APGD with the
  autoattack extra), each called as `attack(model, images, labels, eps)`.
- `gt.load(path)`: a saved checkpoint: `.config`, `.classifier()`, `.generator()`.
- `gt.train(preset, overrides, on_event=...)`: a run, as `gat-tui run --headless` trains it.
- `gt.evaluate(checkpoint, attacks=[...])`: attacks on a saved model, as `gat-tui eval` runs them.

These names are the stable surface; everything else is the engine's, free to change. They load
lazily, so `import gat_tui` (and the `gat-tui` command's start-up) does not import torch.
The engine (data, models, perturbations, methods, training, checkpoints) never imports Textual
or Rich; user interfaces subscribe to its events.
"""

from __future__ import annotations

import importlib

from gat_tui._version import __version__

# typing.TYPE_CHECKING without importing typing (5 ms): type checkers treat this name as true
TYPE_CHECKING = False

if TYPE_CHECKING:
    from gat_tui import attacks
    from gat_tui.api.checkpoint import SavedModel, load
    from gat_tui.api.evaluation import AttackResult, CheckpointEvaluation, evaluate
    from gat_tui.api.gat import GAT
    from gat_tui.api.training import RunFailed, TrainedRun, train
    from gat_tui.attacks import Perturbed

__all__ = [
    "GAT", "AttackResult", "CheckpointEvaluation", "Perturbed", "RunFailed", "SavedModel", "TrainedRun",
    "__version__", "attacks", "evaluate", "load", "train",
]

# each public name and the module that defines it, imported on first use (torch comes with them)
_LAZY = {
    "GAT": "gat_tui.api.gat",
    "AttackResult": "gat_tui.api.evaluation",
    "CheckpointEvaluation": "gat_tui.api.evaluation",
    "evaluate": "gat_tui.api.evaluation",
    "SavedModel": "gat_tui.api.checkpoint",
    "load": "gat_tui.api.checkpoint",
    "RunFailed": "gat_tui.api.training",
    "TrainedRun": "gat_tui.api.training",
    "train": "gat_tui.api.training",
    "Perturbed": "gat_tui.attacks",
}


def __getattr__(name: str) -> object:
    if name == "attacks":
        return importlib.import_module("gat_tui.attacks")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'gat_tui' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
