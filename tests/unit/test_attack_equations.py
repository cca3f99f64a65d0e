"""Each perturbation against its formula, on a linear model whose gradients are known in closed form."""

from __future__ import annotations

import torch
from torch import nn

from gat_tui.attacks import FGML2, FGSM, PGDL2, GATAttack, PGDLinf, RandomL2, RandomLinf
from gat_tui.attacks.base import cross_entropy_input_gradient, true_class_probability_gradient

SHAPE = (2, 3, 4)  # C, H, W
NUM_CLASSES = 5


def linear_model() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(1)
    weight = torch.randn(NUM_CLASSES, 24, dtype=torch.float64)
    model = nn.Sequential(nn.Flatten(), nn.Linear(24, NUM_CLASSES, bias=False)).double()
    with torch.no_grad():
        model[1].weight.copy_(weight)
    return model, weight


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(2)
    return torch.rand(6, *SHAPE, dtype=torch.float64) * 0.5 + 0.25, torch.tensor([0, 1, 2, 3, 4, 0])


def cross_entropy_gradient_by_hand(weight: torch.Tensor, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    # dJ/dx = W^T (softmax(Wx) - onehot(y)) for J = cross-entropy of the logits Wx
    probabilities = torch.softmax(images.flatten(1) @ weight.T, dim=1)
    onehot = nn.functional.one_hot(labels, NUM_CLASSES).double()
    return ((probabilities - onehot) @ weight).view_as(images)


def test_fgm_l2_follows_eq_3_and_has_norm_eps_before_clipping() -> None:
    model, weight = linear_model()
    images, labels = batch()
    result = FGML2(clip=False).perturb(model, images, labels, eps=0.7)
    gradient = cross_entropy_gradient_by_hand(weight, images, labels)
    norms = gradient.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    torch.testing.assert_close(result.perturbation, 0.7 * gradient / norms)
    torch.testing.assert_close(result.l2(), torch.full((6,), 0.7, dtype=torch.float64))
    torch.testing.assert_close(result.adversarial, images + result.perturbation)


def test_fgsm_follows_eq_1_and_has_linf_norm_eps() -> None:
    model, weight = linear_model()
    images, labels = batch()
    result = FGSM(clip=False).perturb(model, images, labels, eps=0.03)
    expected = 0.03 * cross_entropy_gradient_by_hand(weight, images, labels).sign()
    torch.testing.assert_close(result.perturbation, expected)
    torch.testing.assert_close(result.linf(), torch.full((6,), 0.03, dtype=torch.float64))


def test_clipping_keeps_pixels_in_range_and_reports_the_applied_perturbation() -> None:
    model, _ = linear_model()
    images, labels = batch()
    result = FGML2(clip=True).perturb(model, images, labels, eps=5.0)
    assert result.adversarial.min() >= 0.0 and result.adversarial.max() <= 1.0
    torch.testing.assert_close(result.perturbation, result.adversarial - images)
    assert (result.l2() < 5.0).all()  # clipping removed part of it


def test_delta_is_the_gradient_of_the_true_class_probability() -> None:
    model, weight = linear_model()
    images, labels = batch()
    delta = true_class_probability_gradient(model, images, labels)
    # d p_y / dx = p_y (W_y - sum_j p_j W_j) for p = softmax(Wx)
    probabilities = torch.softmax(images.flatten(1) @ weight.T, dim=1)
    p_true = probabilities.gather(1, labels.view(-1, 1))
    expected = p_true * (weight[labels] - probabilities @ weight)
    torch.testing.assert_close(delta, expected.view_as(images))
    # and it is what autograd gives for one sample on its own
    single = images[3:4].clone().requires_grad_(True)
    torch.softmax(model(single), dim=1)[0, labels[3]].backward()
    torch.testing.assert_close(delta[3:4], single.grad)


def test_random_perturbation_has_the_asked_norm() -> None:
    images, labels = batch()
    l2 = RandomL2(clip=False).perturb(nn.Identity(), images, labels, eps=0.9)
    torch.testing.assert_close(l2.l2(), torch.full((6,), 0.9, dtype=torch.float64))
    linf = RandomLinf(clip=False).perturb(nn.Identity(), images, labels, eps=0.05)
    torch.testing.assert_close(linf.perturbation.abs(), torch.full_like(images, 0.05))


def test_gat_perturbation_is_generator_of_delta_added_to_x() -> None:
    model, _ = linear_model()
    images, labels = batch()
    generator = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Tanh()).double()
    result = GATAttack(generator, clip=False).perturb(model, images, labels)
    expected = generator(true_class_probability_gradient(model, images, labels))
    torch.testing.assert_close(result.perturbation, expected)


def test_perturbations_leave_the_model_untouched() -> None:
    model, weight = linear_model()
    model.train()
    images, labels = batch()
    FGML2().perturb(model, images, labels, eps=0.5)
    FGSM().perturb(model, images, labels, eps=0.5)
    FGML2()(model, images, labels, eps=0.5)  # the evaluation entry switches to eval mode and back
    true_class_probability_gradient(model, images, labels)
    assert model.training
    assert model[1].weight.grad is None
    torch.testing.assert_close(model[1].weight.detach(), weight)


def test_the_input_gradient_is_each_images_own_cross_entropy_gradient() -> None:
    # summed over the batch, not averaged: image i's gradient is that of its own J(x_i, y_i) whatever the batch size
    model, weight = linear_model()
    images, labels = batch()
    torch.testing.assert_close(cross_entropy_input_gradient(model, images, labels), cross_entropy_gradient_by_hand(weight, images, labels))
    torch.testing.assert_close(cross_entropy_input_gradient(model, images[:1], labels[:1]), cross_entropy_gradient_by_hand(weight, images[:1], labels[:1]))


def test_every_attack_clips_unless_told_not_to() -> None:
    generator = nn.Conv2d(2, 2, 1)
    attacks = [FGSM(), FGML2(), RandomL2(), RandomLinf(), PGDLinf(), PGDL2(), GATAttack(generator)]
    assert [attack.clip for attack in attacks] == [True] * len(attacks)
