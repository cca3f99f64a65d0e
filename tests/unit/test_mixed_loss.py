"""`mixed_loss` (Eq. 2, 4 and 10): its one-pass (CUDA) and two-pass paths, both run on the CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as functional
from torch import nn

from gat_tui.methods.base import mixed_loss
from gat_tui.models import AllConvClassifier


def batch(n: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)
    clean = torch.rand(n, 3, 8, 8, generator=generator)
    adversarial = (clean + 0.1 * torch.randn(n, 3, 8, 8, generator=generator)).clamp(0, 1)
    return clean, adversarial, torch.randint(0, 4, (n,), generator=generator)


def loss_and_gradients(concatenate: bool | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    # the All-Conv F has no batch statistics (no batch-norm) and, without dropout, nothing random,
    # so one pass over the concatenated halves and two passes must agree
    torch.manual_seed(0)
    classifier = AllConvClassifier(num_classes=4, in_channels=3, dropout=0.0)
    clean, adversarial, labels = batch()
    mixed = mixed_loss(classifier, clean, adversarial, labels, alpha=0.3, concatenate=concatenate)
    mixed.loss.backward()
    gradients = [parameter.grad.clone() for parameter in classifier.parameters() if parameter.grad is not None]
    return mixed.loss.detach(), mixed.acc_clean, mixed.acc_adv, gradients


def test_the_one_pass_and_two_pass_paths_give_the_same_loss_and_gradients() -> None:
    loss_one, clean_one, adv_one, gradients_one = loss_and_gradients(concatenate=True)
    loss_two, clean_two, adv_two, gradients_two = loss_and_gradients(concatenate=False)
    torch.testing.assert_close(loss_one, loss_two, rtol=1e-5, atol=1e-6)
    assert clean_one == clean_two and adv_one == adv_two
    assert len(gradients_one) == len(gradients_two) == len(list(AllConvClassifier(4, 3).parameters()))
    for one, two in zip(gradients_one, gradients_two):
        torch.testing.assert_close(one, two, rtol=1e-4, atol=1e-6)


def test_the_default_on_the_cpu_is_the_two_pass_path() -> None:
    calls: list[int] = []
    torch.manual_seed(0)
    classifier = AllConvClassifier(num_classes=4, in_channels=3)
    classifier.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    clean, adversarial, labels = batch()
    mixed_loss(classifier, clean, adversarial, labels, alpha=0.5)
    assert calls == [6, 6]
    calls.clear()
    mixed_loss(classifier, clean, adversarial, labels, alpha=0.5, concatenate=True)
    assert calls == [12]


@pytest.mark.parametrize("concatenate", [True, False])
def test_mixed_loss_is_alpha_weighted_cross_entropy_and_batch_accuracies(concatenate: bool) -> None:
    # a linear classifier whose logits are known: check Eq. 10 and the two accuracies by hand
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(2))
    clean = torch.tensor([[[[2.0, 0.0]]], [[[0.0, 1.0]]], [[[3.0, 0.0]]]])  # predicted 0, 1, 0
    adversarial = torch.tensor([[[[0.0, 2.0]]], [[[2.0, 0.0]]], [[[0.0, 3.0]]]])  # predicted 1, 0, 1
    labels = torch.tensor([0, 1, 1])
    mixed = mixed_loss(model, clean, adversarial, labels, alpha=0.25, concatenate=concatenate)
    expected = 0.25 * functional.cross_entropy(clean.flatten(1), labels) + 0.75 * functional.cross_entropy(
        adversarial.flatten(1), labels
    )
    torch.testing.assert_close(mixed.loss, expected)
    torch.testing.assert_close(mixed.acc_clean, torch.tensor(2 / 3))
    torch.testing.assert_close(mixed.acc_adv, torch.tensor(1 / 3))
    # alpha = 1 is the clean loss alone, alpha = 0 the adversarial one alone
    only_clean = mixed_loss(model, clean, adversarial, labels, alpha=1.0, concatenate=concatenate).loss
    only_adversarial = mixed_loss(model, clean, adversarial, labels, alpha=0.0, concatenate=concatenate).loss
    torch.testing.assert_close(only_clean, functional.cross_entropy(clean.flatten(1), labels))
    torch.testing.assert_close(only_adversarial, functional.cross_entropy(adversarial.flatten(1), labels))
