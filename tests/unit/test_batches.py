from __future__ import annotations

import pytest
import torch

from gat_tui.data import to_model_input
from gat_tui.training.batches import ShuffledBatches


def test_an_epoch_visits_every_image_once_in_a_seeded_order() -> None:
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 2, 2).contiguous()
    labels = torch.arange(10)
    batches = ShuffledBatches(images, labels, batch_size=3, seed=7, channels_last=False)
    assert batches.batches_per_epoch == 3  # drop-last: every step has the same shape
    epoch = list(batches.epoch())
    seen = torch.cat([y for _, y in epoch])
    assert len(seen) == 9 and len(set(seen.tolist())) == 9
    for x, y in epoch:
        assert x.dtype == torch.float32 and x.shape == (3, 3, 2, 2)
        torch.testing.assert_close(x[:, 0, 0, 0], y.float() / 255)  # pixels follow their labels
    again = ShuffledBatches(images, labels, batch_size=3, seed=7, channels_last=False)
    assert torch.equal(torch.cat([y for _, y in again.epoch()]), seen)
    assert not torch.equal(torch.cat([y for _, y in batches.epoch()]), seen)  # a new order next epoch
    assert len(list(batches.epoch(limit=2))) == 2


def test_model_input_is_in_the_unit_range_and_channels_last_on_request() -> None:
    images = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    pixels = to_model_input(images, channels_last=True)
    assert pixels.min() == 0.0 and pixels.max() == 1.0
    assert pixels.is_contiguous(memory_format=torch.channels_last)


def test_model_input_refuses_float_images_instead_of_dividing_them_again_in_place() -> None:
    pixels = torch.rand(2, 3, 4, 4)
    before = pixels.clone()
    with pytest.raises(TypeError, match="expects uint8 images.*float32"):
        to_model_input(pixels, channels_last=False)
    assert torch.equal(pixels, before)
