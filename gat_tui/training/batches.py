"""Minibatches from a data set held on the device as uint8, with no DataLoader and no copies.

Shuffling uses a CPU generator seeded from the run's seed, so the data order is the same on
every device, and a cursor's position (the generator state that drew the current order, and
how far into it we are) can be saved in a checkpoint and restored exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from gat_tui.data import to_model_input
from gat_tui.methods.base import Batch


class ShuffledBatches:
    """A cursor over shuffled minibatches (drop-last, so every step has the same shape)."""

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int, channels_last: bool
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size = min(batch_size, images.shape[0])
        self.channels_last = channels_last
        self.generator = torch.Generator().manual_seed(seed)
        self._order_state = self.generator.get_state()
        self._order: torch.Tensor | None = None
        self.position = 0  # batches taken from the current order

    @property
    def batches_per_epoch(self) -> int:
        return self.images.shape[0] // self.batch_size

    def new_order(self) -> None:
        """Draw a fresh random order and start at its beginning."""
        self._order_state = self.generator.get_state()
        # one host-to-device copy of the order per epoch: a copy per step from pageable memory
        # would make the host wait for the GPU every step
        self._order = torch.randperm(self.images.shape[0], generator=self.generator).to(self.images.device)
        self.position = 0

    def next_batch(self) -> Batch:
        """The next minibatch of the current order; a new order once this one is used up."""
        if self._order is None or self.position >= self.batches_per_epoch:
            self.new_order()
        assert self._order is not None
        start = self.position * self.batch_size
        indices = self._order[start : start + self.batch_size]
        self.position += 1
        return to_model_input(self.images[indices], self.channels_last), self.labels[indices]

    def epoch(self, limit: int = 0, continue_order: bool = False) -> Iterator[Batch]:
        """One pass in a fresh order, or the rest of the current (restored) one; `limit` > 0 caps it."""
        if not continue_order or self._order is None:
            self.new_order()
        count = self.batches_per_epoch if limit <= 0 else min(limit, self.batches_per_epoch)
        while self.position < count:
            yield self.next_batch()

    def endless(self) -> Iterator[Batch]:
        """Fresh minibatches forever, order after order (GAT's generator steps draw from this)."""
        while True:
            yield self.next_batch()

    def state(self) -> tuple[torch.Tensor, int, bool]:
        """(generator state that drew the current order, position in it, whether an order exists)."""
        return self._order_state.clone(), self.position, self._order is not None

    def load_state(self, order_state: torch.Tensor, position: int, has_order: bool) -> None:
        self.generator.set_state(order_state)
        if has_order:
            self.new_order()  # redraws the very same order from the saved generator state
            self.position = position
        else:
            self._order_state, self._order, self.position = order_state.clone(), None, 0
