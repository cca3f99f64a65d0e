"""Generated images with class structure: a fast, offline stand-in for CIFAR in tests and demos.

Each class has a smooth random colour pattern (a coarse random field upsampled to the image size).
An image is its class pattern, shifted by a few pixels, scaled in contrast, offset in brightness
and covered in pixel noise. A small conv net learns the classes in a few epochs, yet the noise and
jitter keep the task from being trivial, so accuracy under perturbations still means something.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gat_tui.config import DataConfig
from gat_tui.data.splits import ImageSplits, split_train_val

CHANNELS = 3
AMPLITUDE = 0.18  # std of the class pattern, in [0, 1] pixel units
NOISE_STD = 0.2  # per-pixel Gaussian noise; the pattern is below the noise pixel by pixel
CONTRAST_JITTER = 0.4  # each image scales its pattern by a factor in [1 - j, 1 + j]
BRIGHTNESS_JITTER = 0.1  # each image adds one offset in [-j, j] to every pixel
CHUNK = 4096  # images generated at once, to bound float32 memory for large sets


def _prototypes(num_classes: int, canvas: int, generator: torch.Generator) -> torch.Tensor:
    """[K, C, canvas, canvas] smooth patterns with zero mean and unit std each."""
    coarse = max(2, round(canvas / 8))
    field = torch.randn(num_classes, CHANNELS, coarse, coarse, generator=generator)
    smooth = F.interpolate(field, size=(canvas, canvas), mode="bicubic", align_corners=False)
    flat = smooth.flatten(1)
    flat = (flat - flat.mean(dim=1, keepdim=True)) / flat.std(dim=1, keepdim=True).clamp_min(1e-6)
    return flat.view_as(smooth)


def _render(prototypes: torch.Tensor, labels: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """uint8 [N, C, size, size] images of the given classes, cropped at random offsets of the canvas."""
    canvas = prototypes.shape[-1]
    count = labels.shape[0]
    out = torch.empty(count, CHANNELS, size, size, dtype=torch.uint8)
    span = torch.arange(size)
    channel = torch.arange(CHANNELS).view(1, CHANNELS, 1, 1)
    for start in range(0, count, CHUNK):
        part = labels[start : start + CHUNK]
        n = part.shape[0]
        dy = torch.randint(0, canvas - size + 1, (n,), generator=generator)
        dx = torch.randint(0, canvas - size + 1, (n,), generator=generator)
        rows = (dy[:, None] + span).view(n, 1, size, 1)
        cols = (dx[:, None] + span).view(n, 1, 1, size)
        pattern = prototypes[part.view(n, 1, 1, 1), channel, rows, cols]
        contrast = 1 + CONTRAST_JITTER * (2 * torch.rand(n, 1, 1, 1, generator=generator) - 1)
        brightness = BRIGHTNESS_JITTER * (2 * torch.rand(n, 1, 1, 1, generator=generator) - 1)
        noise = NOISE_STD * torch.randn(n, CHANNELS, size, size, generator=generator)
        pixels = (0.5 + AMPLITUDE * contrast * pattern + brightness + noise).clamp(0, 1)
        out[start : start + n] = (pixels * 255).round().to(torch.uint8)
    return out


def _balanced_labels(count: int, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    labels = torch.arange(count, dtype=torch.int64) % num_classes
    return labels[torch.randperm(count, generator=generator)]


def load_synthetic(config: DataConfig) -> ImageSplits:
    """`train_size` images split by `val_size`, plus `test_size` test images, all fixed by `split_seed`."""
    size, classes = config.image_size, config.num_classes
    # Independent streams, so the test set does not change when train_size does.
    seeds = torch.randint(0, 2**62, (3,), generator=torch.Generator().manual_seed(config.split_seed)).tolist()
    pattern_gen, train_gen, test_gen = (torch.Generator().manual_seed(seed) for seed in seeds)
    # Patterns live on a slightly larger canvas so each image can be a shifted crop without wrap-around.
    canvas = size + 2 * (size // 8)
    prototypes = _prototypes(classes, canvas, pattern_gen)
    train_labels = _balanced_labels(config.train_size, classes, train_gen)
    train_images = _render(prototypes, train_labels, size, train_gen)
    test_labels = _balanced_labels(config.test_size, classes, test_gen)
    test_images = _render(prototypes, test_labels, size, test_gen)
    train_x, train_y, val_x, val_y = split_train_val(train_images, train_labels, config.val_size, config.split_seed)
    names = tuple(f"class_{index}" for index in range(classes))
    return ImageSplits(train_x, train_y, val_x, val_y, test_images, test_labels, names)
