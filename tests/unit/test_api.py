"""The Python API's surface (`import gat_tui as gt`): its names, its lazy import, and `GAT`'s three
calls checked by hand on a linear classifier."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as functional
from torch import nn

import gat_tui as gt

NUM_CLASSES = 3


def linear_classifier() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, NUM_CLASSES)).double()


def small_generator() -> nn.Module:
    torch.manual_seed(4)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1), nn.Tanh()).double()


def batch(seed: int, n: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 2, 3, 3, generator=generator, dtype=torch.float64), torch.randint(0, NUM_CLASSES, (n,), generator=generator)


def delta_by_hand(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    # for logits Wx + b: d softmax_y / dx = p_y (W_y - sum_j p_j W_j)
    weight = classifier[1].weight.detach()
    p = torch.softmax(classifier(images).detach(), dim=1)
    return (p.gather(1, labels.view(-1, 1)) * (weight[labels] - p @ weight)).view_as(images)


def test_every_name_in_all_exists_and_dir_lists_them() -> None:
    for name in gt.__all__:
        assert getattr(gt, name) is not None, name
    assert set(gt.__all__) <= set(dir(gt))
    assert {"GAT", "attacks", "load", "train", "evaluate"} <= set(gt.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        _ = gt.nonexistent  # type: ignore[attr-defined]


def test_importing_gat_tui_does_not_import_torch() -> None:
    # the `gat-tui` command imports the package first: its start-up must not pay for torch
    code = "import sys, gat_tui; print('torch' in sys.modules, 'gat_tui.api' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_classifier_loss_is_eq_10_and_reaches_the_model_only() -> None:
    classifier, generator = linear_classifier(), small_generator()
    images, labels = batch(0)
    gat = gt.GAT(classifier, (2, 3, 3), alpha=0.3, lr_g=1e-2, generator=generator)
    loss = gat.classifier_loss(images, labels)
    with torch.no_grad():
        adversarial = (images + generator(delta_by_hand(classifier, images, labels))).clamp(0, 1)
    by_hand = 0.3 * functional.cross_entropy(classifier(images), labels) + 0.7 * functional.cross_entropy(classifier(adversarial), labels)
    torch.testing.assert_close(loss, by_hand)
    loss.backward()
    assert all(parameter.grad is not None for parameter in classifier.parameters())
    assert all(parameter.grad is None for parameter in generator.parameters())  # Eq. 10 is minimised over F only


def test_generator_step_is_one_adam_step_on_eq_9_and_leaves_the_model_alone() -> None:
    classifier, generator = linear_classifier(), small_generator()
    images, labels = batch(1)
    hand_generator = small_generator()
    classifier_before = [parameter.detach().clone() for parameter in classifier.parameters()]
    gat = gt.GAT(classifier, (2, 3, 3), c_g=0.2, lr_g=1e-2, generator=generator)
    reported = gat.generator_step(images, labels)
    for before, parameter in zip(classifier_before, classifier.parameters()):
        assert torch.equal(before, parameter) and parameter.grad is None  # Eq. 9 is minimised over G only

    perturbation = hand_generator(delta_by_hand(classifier, images, labels))
    adversarial = (images + perturbation).clamp(0, 1)
    p_true = torch.softmax(classifier(adversarial), dim=1)[torch.arange(len(labels)), labels]
    eq9 = p_true.mean() + 0.2 * (perturbation**2).sum(dim=(1, 2, 3)).mean()
    hand_optimizer = torch.optim.Adam(hand_generator.parameters(), lr=1e-2)
    hand_optimizer.zero_grad()
    eq9.backward()
    hand_optimizer.step()

    torch.testing.assert_close(reported, eq9.detach())
    for ours, theirs in zip(generator.parameters(), hand_generator.parameters()):
        torch.testing.assert_close(ours, theirs)


def test_perturb_attacks_in_eval_mode_and_restores_the_modes() -> None:
    torch.manual_seed(0)
    dropout_model = nn.Sequential(nn.Flatten(), nn.Dropout(0.9), nn.Linear(2 * 3 * 3, NUM_CLASSES)).double()
    generator = small_generator()
    images, labels = batch(2)
    gat = gt.GAT(dropout_model, (2, 3, 3), generator=generator)
    dropout_model.train()
    first, second = gat.perturb(images, labels), gat.perturb(images, labels)
    # with dropout on, Δ (and so δ) would differ between two calls
    assert torch.equal(first.perturbation, second.perturbation)
    assert dropout_model.training and generator.training
    torch.testing.assert_close(first.perturbation, first.adversarial - images)
    assert first.adversarial.min() >= 0 and first.adversarial.max() <= 1


def test_the_default_generator_is_table_1s_on_the_models_device() -> None:
    gat = gt.GAT(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)), (3, 8, 8))
    assert [type(layer).__name__ for layer in gat.generator.modules()].count("Conv2d") == 8  # six 3x3, two 1x1
    assert gat.generator(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 8, 8)
    assert gat.generator_optimizer.param_groups[0]["lr"] == 1e-6


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"input_shape": (3, 32)}, "input_shape = (3, 32); expected (channels, height, width)"),
        ({"alpha": 1.5}, "alpha = 1.5 is out of range; expected >= 0.0 and <= 1.0"),
        ({"lr_g": 0.0}, "lr_g = 0.0 is out of range; expected > 0.0"),
        ({"c_g": float("nan")}, "c_g = nan; expected a finite number"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(arguments: dict[str, object], message: str) -> None:
    options: dict[str, object] = {"input_shape": (2, 3, 3)} | arguments
    with pytest.raises(ValueError) as raised:
        gt.GAT(linear_classifier(), **options)  # type: ignore[arg-type]
    assert message in str(raised.value)
