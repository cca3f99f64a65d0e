"""Our fast-gradient and PGD images against torchattacks' on the same model and batch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gat_tui.attacks import FGML2, FGSM, PGDLinf

torchattacks = pytest.importorskip("torchattacks", reason="torchattacks is in the test extra: pip install -e '.[test]'")


def model_and_batch() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()
    torch.manual_seed(1)
    return model, torch.rand(16, 3, 8, 8), torch.randint(0, 5, (16,))


def test_fgsm_equals_torchattacks() -> None:
    model, images, labels = model_and_batch()
    for eps in (2 / 255, 8 / 255, 0.1):
        ours = FGSM()(model, images, labels, eps).adversarial
        theirs = torchattacks.FGSM(model, eps=eps)(images, labels)
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def test_fgm_l2_equals_one_pgd_l2_step_and_the_formula() -> None:
    model, images, labels = model_and_batch()
    eps = 0.5
    ours = FGML2()(model, images, labels, eps).adversarial
    # one L2 step of size ε from x, projected onto the ε-ball (a no-op here) and into [0, 1]
    theirs = torchattacks.PGDL2(model, eps=eps, alpha=eps, steps=1, random_start=False)(images, labels)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    x = images.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(nn.functional.cross_entropy(model(x), labels, reduction="sum"), x)
    by_hand = (images + eps * gradient / gradient.flatten(1).norm(dim=1).view(-1, 1, 1, 1)).clamp(0, 1)
    torch.testing.assert_close(ours, by_hand, atol=1e-6, rtol=0)


def test_pgd_linf_without_random_start_equals_torchattacks_pgd() -> None:
    model, images, labels = model_and_batch()
    eps, step, steps = 8 / 255, 2 / 255, 7
    ours = PGDLinf(steps=steps, step_size=step, random_start=False)(model, images, labels, eps).adversarial
    theirs = torchattacks.PGD(model, eps=eps, alpha=step, steps=steps, random_start=False)(images, labels)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    assert (ours - images).abs().max() <= eps + 1e-6


def test_pgd_random_start_stays_the_default() -> None:
    assert PGDLinf().random_start is True
