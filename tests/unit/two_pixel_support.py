"""Four two-pixel images and linear classifiers whose every figure can be worked out by hand.

The target reads pixel 0 as class 0 and pixel 1 as class 1 (the identity). The images (pixel
values / 255, label), as in `test_eval_figures.py`:
    a (140, 115) 0     margin 25/255 ≈ 0.098: correct
    b (178,  76) 0     margin 0.4: correct
    c (115, 128) 1     margin 13/255 ≈ 0.051: correct
    d (133, 122) 1     wrong
so the target's clean accuracy is 3/4. `ALWAYS_ONE` says class 1 for every image (accuracy 1/2
whatever the pixels): a verdict taken from it instead of the target's shows.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from gat_tui.attacks import AutoAttack
from gat_tui.attacks.base import Perturbed

IMAGES = torch.tensor([[140, 115], [178, 76], [115, 128], [133, 122]], dtype=torch.uint8).reshape(4, 1, 1, 2)
LABELS = torch.tensor([0, 0, 1, 1])
TARGET_WEIGHT = [[1.0, 0.0], [0.0, 1.0]]
ALWAYS_ONE = [[0.0, 0.0], [1.0, 1.0]]


def linear(weight: list[list[float]]) -> nn.Module:
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor(weight))
    return model


class ScriptedCascade(AutoAttack):
    """A two-stage AutoAttack whose stages push each image towards the other class by a set amount.

    Per pixel, an image of class 0 moves by ε/2 after `apgd-ce` and by ε after `apgd-t`, one of
    class 1 by ε and 2ε (towards the other class: pixel 0 down and pixel 1 up for class 0). With
    ε = 0.06 the target's accuracy is 2/4 after `apgd-ce` (a and b hold, c flips) and 1/4 after
    `apgd-t` (only b holds); the last stage's ‖δ‖∞ is 0.06 for class 0 and 0.12 for class 1, so
    its mean over a, b, c, d is 0.09 and its mean ‖δ‖₂ 0.09·√2. No pyautoattack is needed.
    """

    def __init__(self) -> None:
        super().__init__("linf", "custom", ("apgd-ce", "apgd-t"))
        self.calls: list[tuple[nn.Module, int]] = []  # (the model attacked, images in the batch)

    def stages(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Iterator[tuple[str, Perturbed]]:
        self.calls.append((source, int(images.shape[0])))
        towards_other = torch.where(labels.view(-1, 1) == 0, torch.tensor([-1.0, 1.0]), torch.tensor([2.0, -2.0]))
        for name, scale in (("apgd-ce", 0.5), ("apgd-t", 1.0)):
            delta = (eps * scale * towards_other).view(-1, 1, 1, 2)
            yield name, Perturbed(images + delta, delta)
