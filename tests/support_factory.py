"""Tiny user networks for the `package.module:factory` specs of the tests (`model.classifier = "support_factory:..."`)."""

from __future__ import annotations

import torch
from torch import nn


def tiny_classifier(num_classes: int, image_shape: tuple[int, int, int], dropout: float = 0.0) -> nn.Module:
    channels = image_shape[0]
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.Dropout(dropout),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes),
    )


def no_dropout_classifier(num_classes: int, image_shape: tuple[int, int, int]) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(image_shape).prod()), num_classes))


def wrong_output_classifier(num_classes: int, image_shape: tuple[int, int, int]) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(image_shape).prod()), num_classes + 1))


def failing_classifier(num_classes: int, image_shape: tuple[int, int, int]) -> nn.Module:
    raise RuntimeError("this factory always fails")


def tiny_generator(image_shape: tuple[int, int, int]) -> nn.Module:
    channels = image_shape[0]
    return nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, channels, 1), nn.Tanh())
