"""Minibatches from a data set held on the device as uint8, with no DataLoader and no copies.

Shuffling uses CPU generators seeded from the run's seed, so the data order is the same on
every device and its state can be saved and restored.
"""

from __future__ import annotations

from typing import Iterator

import torch

from gat_tui.methods.base import Batch


def to_model_input(images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float32 in [0, 1], in the memory layout the networks use."""
    pixels = images.float().div_(255.0)
    return pixels.contiguous(memory_format=torch.channels_last) if channels_last else pixels


class ShuffledBatches:
    """Epochs of shuffled minibatches (drop-last, so every step has the same shape)."""

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int, channels_last: bool
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size = min(batch_size, images.shape[0])
        self.channels_last = channels_last
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def batches_per_epoch(self) -> int:
        return self.images.shape[0] // self.batch_size

    def epoch(self, limit: int = 0) -> Iterator[Batch]:
        """One pass in a fresh random order; `limit` > 0 stops after that many batches."""
        # one host-to-device copy of the order per epoch: a copy per step from pageable memory
        # would make the host wait for the GPU every step
        order = torch.randperm(self.images.shape[0], generator=self.generator).to(self.images.device)
        count = self.batches_per_epoch if limit <= 0 else min(limit, self.batches_per_epoch)
        for start in range(0, count * self.batch_size, self.batch_size):
            indices = order[start : start + self.batch_size]
            yield to_model_input(self.images[indices], self.channels_last), self.labels[indices]

    def endless(self) -> Iterator[Batch]:
        """Fresh minibatches forever, epoch after epoch (GAT's generator steps draw from this)."""
        while True:
            yield from self.epoch()
