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


class _ViewClassifier(nn.Module):
    """Flattens with .view(), as many hand-written networks do: it needs the default memory layout."""

    def __init__(self, num_classes: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels, height, width = image_shape
        self.conv = nn.Conv2d(channels, 4, 3, padding=1)
        self.linear = nn.Linear(4 * height * width, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.conv(images).relu()
        return self.linear(features.view(features.size(0), -1))


def view_classifier(num_classes: int, image_shape: tuple[int, int, int]) -> nn.Module:
    return _ViewClassifier(num_classes, image_shape)


def no_dropout_classifier(num_classes: int, image_shape: tuple[int, int, int]) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(image_shape).prod()), num_classes))


def wrong_output_classifier(num_classes: int, image_shape: tuple[int, int, int]) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(image_shape).prod()), num_classes + 1))


def failing_classifier(num_classes: int, image_shape: tuple[int, int, int]) -> nn.Module:
    raise RuntimeError("this factory always fails")


def tiny_generator(image_shape: tuple[int, int, int]) -> nn.Module:
    channels = image_shape[0]
    return nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, channels, 1), nn.Tanh())
