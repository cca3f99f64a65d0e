"""What the synthetic data set promises: smooth class patterns of zero mean and unit spread, pixels
of the documented brightness and noise, and a test set that stays the same whatever the training
set's size. Expected figures from the module's constants, worked out by hand below."""

from __future__ import annotations

import torch

from gat_tui.config import DataConfig
from gat_tui.data import load_splits
from gat_tui.data.synthetic import _prototypes, _render


def test_the_test_set_does_not_depend_on_the_training_sets_size() -> None:
    def load(train_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        config = DataConfig(dataset="synthetic", image_size=8, num_classes=3, train_size=train_size, val_size=10,
                            test_size=30, split_seed=5)
        splits = load_splits(config)
        return splits.test_images, splits.test_labels

    small, large = load(60), load(120)
    assert torch.equal(small[0], large[0]) and torch.equal(small[1], large[1])
    assert torch.bincount(small[1]).tolist() == [10, 10, 10]


def test_class_patterns_are_smooth_with_zero_mean_and_unit_spread() -> None:
    patterns = _prototypes(4, 20, torch.Generator().manual_seed(1))
    assert patterns.shape == (4, 3, 20, 20)
    flat = patterns.flatten(1)
    assert flat.mean(dim=1).abs().max() < 1e-5
    assert (flat.std(dim=1) - 1).abs().max() < 1e-4
    # white noise of unit spread would differ by about 1.13 between neighbours (2/sqrt(pi));
    # a 2x2 random field blown up to 20x20 changes by a few hundredths a pixel
    assert (patterns[..., 1:] - patterns[..., :-1]).abs().mean() < 0.2
    assert (patterns[..., 1:, :] - patterns[..., :-1, :]).abs().mean() < 0.2


def test_pixels_are_mid_grey_plus_the_pattern_with_the_documented_noise() -> None:
    labels = torch.zeros(400, dtype=torch.int64)
    generator = torch.Generator().manual_seed(2)
    flat = _render(torch.zeros(1, 3, 10, 10), labels, 8, generator).float()
    # a zero pattern leaves 0.5 + brightness (uniform +-0.1) + noise (std 0.2): mean 127.5, and a spread of
    # 255 * sqrt(0.2^2 + 0.1^2 / 3) = 53.1 (a little less: the tails beyond 2.4 std are clipped at 0 and 255)
    assert 126 < flat.mean() < 129
    assert 51 < flat.std() < 54
    bright = _render(torch.ones(1, 3, 10, 10), labels, 8, generator).float()
    # a pattern of +1 adds 0.18 x contrast (uniform 0.6..1.4, mean 1): 0.68 x 255 = 173.4, less ~1.6 where
    # the noise runs past 255 and is clipped
    assert 169 < bright.mean() < 175
    assert bright.dtype == torch.float32 and _render(torch.ones(1, 3, 10, 10), labels[:2], 8, generator).dtype == torch.uint8
