"""The tiny network and images the AutoAttack tests share (`test_autoattack*.py`)."""

from __future__ import annotations

import torch
from torch import nn

CLASSES = 5
SHAPE = (3, 6, 6)
COUNT = 12


def tiny_classifier() -> nn.Module:
    """A seeded 108-16-5 perceptron: the same network at every call."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(SHAPE[0] * SHAPE[1] * SHAPE[2], 16), nn.ReLU(), nn.Linear(16, CLASSES))


def tiny_images() -> torch.Tensor:
    """COUNT seeded images, pixels in [0, 1]."""
    torch.manual_seed(1)
    return torch.rand(COUNT, *SHAPE)


def predictions(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(images).argmax(1)


def tiny_batch(misclassified: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`tiny_images` labelled with `tiny_classifier`'s own predictions, but the first `misclassified` moved one class on."""
    images = tiny_images()
    labels = predictions(tiny_classifier(), images)
    labels[:misclassified] = (labels[:misclassified] + 1) % CLASSES
    return images, labels
