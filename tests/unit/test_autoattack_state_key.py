"""AutoAttack's resume key covers the evaluated data itself, not only the dataset's name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from gat_tui.attacks import AutoAttack
from gat_tui.attacks.base import Perturbed
from gat_tui.data.splits import data_fingerprint
from gat_tui.robustness.evaluate import run_autoattack
from gat_tui.robustness.resume import ResumeSpec


class NoPerturbation(AutoAttack):
    """A one-stage cascade that leaves the images as they are: the bookkeeping without pyautoattack."""

    def __init__(self) -> None:
        super().__init__("linf", "custom", ("apgd-ce",))

    def stages(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Iterator[tuple[str, Perturbed]]:
        yield "apgd-ce", Perturbed(images, torch.zeros_like(images))


def pixels(count: int) -> torch.Tensor:
    return torch.randint(0, 256, (count, 3, 4, 4), dtype=torch.uint8)


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))


def evaluate(images: torch.Tensor, labels: torch.Tensor, resume: ResumeSpec, stop_after_first: bool = False) -> float:
    def on_batch(done: int) -> None:
        if stop_after_first and done:
            raise KeyboardInterrupt

    model = net()
    robust, _, _, _ = run_autoattack(NoPerturbation(), 0.03, model, model, images, labels, 4, on_batch, resume=resume)
    return robust


def test_a_state_saved_for_other_images_of_the_same_name_is_not_taken_up(tmp_path: Path) -> None:
    torch.manual_seed(1)
    old_images, new_images = pixels(8), pixels(8)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    notices: list[str] = []
    resume = ResumeSpec(tmp_path, {"target": "net.safetensors", "dataset": "synthetic", "split": "test"}, notices.append)
    with pytest.raises(KeyboardInterrupt):
        evaluate(old_images, labels, resume, stop_after_first=True)
    assert len(list(tmp_path.glob(".autoattack-*.json"))) == 1

    robust = evaluate(new_images, labels, resume)
    assert not any("resuming" in notice for notice in notices)
    with torch.no_grad():
        clean = (net()(new_images.float() / 255).argmax(1) == labels).float().mean().item()
    assert robust == pytest.approx(clean)  # no perturbation: robust accuracy is the new images' clean accuracy


def test_the_same_images_resume(tmp_path: Path) -> None:
    torch.manual_seed(1)
    images, labels = pixels(8), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    notices: list[str] = []
    resume = ResumeSpec(tmp_path, {"target": "net.safetensors", "dataset": "synthetic", "split": "test"}, notices.append)
    with pytest.raises(KeyboardInterrupt):
        evaluate(images, labels, resume, stop_after_first=True)
    evaluate(images.clone(), labels.clone(), resume)
    assert any("resuming AutoAttack from image 4 of 8" in notice for notice in notices)


def test_the_fingerprint_tells_values_dtypes_and_label_order_apart() -> None:
    images, labels = torch.rand(4, 3, 2, 2), torch.tensor([1, 2, 3, 0])
    same = data_fingerprint(images.clone(), labels.clone())
    assert data_fingerprint(images, labels) == same
    assert data_fingerprint(images + 1e-6, labels) != same
    assert data_fingerprint(images.double(), labels) != same
    assert data_fingerprint(images, labels.flip(0)) != same
