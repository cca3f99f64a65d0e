"""Properties the attacks and the perturbing methods promise: projections, step sizes, norms, Eq. 9 of the GAT attacker."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as functional
from torch import nn

from gat_tui.attacks import FGML2, FGSM, PGDL2, PGDLinf, RandomL2, RandomLinf
from gat_tui.attacks.base import Perturbed, apply_perturbation, per_sample_l2, true_class_probability_gradient
from gat_tui.methods.fast_gradient import FastGradientTraining
from gat_tui.methods.gat_attack import GatAttackerTraining
from gat_tui.methods.random_noise import RandomPerturbationTraining
from gat_tui.methods.standard import StandardTraining


def linear(in_features: int = 2 * 3 * 3, classes: int = 3, seed: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, classes)).double()


def batch(n: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 2, 3, 3, generator=generator, dtype=torch.float64)
    return images, torch.randint(0, 3, (n,), generator=generator)


# -- the pieces ---------------------------------------------------------------------------


def test_perturbed_norms_are_per_sample_over_all_values() -> None:
    perturbation = torch.zeros(2, 1, 2, 2)
    perturbation[0, 0, 0, 0], perturbation[0, 0, 1, 1] = 3.0, -4.0
    perturbation[1, 0, 0, 1] = -0.5
    perturbed = Perturbed(perturbation, perturbation)
    torch.testing.assert_close(perturbed.l2(), torch.tensor([5.0, 0.5]))
    torch.testing.assert_close(perturbed.linf(), torch.tensor([4.0, 0.5]))
    torch.testing.assert_close(per_sample_l2(perturbation).flatten(), torch.tensor([5.0, 0.5]))
    assert per_sample_l2(perturbation).shape == (2, 1, 1, 1)
    assert per_sample_l2(torch.zeros(1, 1, 2, 2)).item() > 0  # floored: no division by zero


def test_apply_perturbation_clips_only_when_asked() -> None:
    images = torch.tensor([[[[0.9, 0.1]]]])
    step = torch.tensor([[[[0.3, -0.3]]]])
    unclipped = apply_perturbation(images, step, clip=False)
    torch.testing.assert_close(unclipped.adversarial, torch.tensor([[[[1.2, -0.2]]]]))
    torch.testing.assert_close(unclipped.perturbation, step)
    clipped = apply_perturbation(images, step, clip=True)
    torch.testing.assert_close(clipped.adversarial, torch.tensor([[[[1.0, 0.0]]]]))
    torch.testing.assert_close(clipped.perturbation, torch.tensor([[[[0.1, -0.1]]]]))


def test_random_linf_clips_when_asked() -> None:
    images = torch.full((4, 2, 3, 3), 0.98)
    clipped = RandomLinf(clip=True).perturb(nn.Identity(), images, torch.zeros(4, dtype=torch.long), eps=0.1)
    assert clipped.adversarial.max() <= 1.0 and clipped.perturbation.max() <= 0.02 + 1e-6
    torch.testing.assert_close(clipped.perturbation.abs().amax(), torch.tensor(0.1))  # the negative steps are whole


def test_a_zero_gradient_gives_a_zero_fgm_step_not_nan() -> None:
    constant = nn.Sequential(nn.Flatten(), nn.Linear(18, 3)).double()
    with torch.no_grad():
        constant[1].weight.zero_()
    images, labels = batch()
    result = FGML2(clip=False).perturb(constant, images, labels, eps=1.0)
    assert torch.equal(result.perturbation, torch.zeros_like(images))


# -- PGD ----------------------------------------------------------------------------------


def test_pgd_l2_projection_keeps_what_is_inside_and_scales_what_is_outside_to_eps() -> None:
    inside = torch.zeros(1, 1, 2, 2)
    inside[0, 0, 0, 0], inside[0, 0, 1, 0] = 0.3, 0.4  # norm 0.5
    outside = torch.zeros(1, 1, 2, 2)
    outside[0, 0, 0, 1], outside[0, 0, 1, 1] = 3.0, -4.0  # norm 5
    projected = PGDL2()._project(torch.cat([inside, outside]), eps=1.0)
    torch.testing.assert_close(projected[0:1], inside)  # unchanged, not stretched to eps
    torch.testing.assert_close(projected[1:2], outside / 5.0)  # same direction, norm eps
    torch.testing.assert_close(projected.flatten(1).norm(dim=1), torch.tensor([0.5, 1.0]))


def test_pgd_linf_projection_clamps_each_value() -> None:
    perturbation = torch.tensor([[[[0.05, -0.3, 0.2, -0.01]]]])
    torch.testing.assert_close(PGDLinf()._project(perturbation, eps=0.1), torch.tensor([[[[0.05, -0.1, 0.1, -0.01]]]]))


def test_pgd_steps_have_the_step_size_along_sign_or_unit_gradient() -> None:
    gradient = torch.tensor([[[[3.0, -4.0]]], [[[0.0, 2.0]]]])
    torch.testing.assert_close(PGDLinf()._step(gradient, 0.1), torch.tensor([[[[0.1, -0.1]]], [[[0.0, 0.1]]]]))
    torch.testing.assert_close(PGDL2()._step(gradient, 0.1), torch.tensor([[[[0.06, -0.08]]], [[[0.0, 0.1]]]]))


def test_pgd_random_starts_lie_in_the_ball() -> None:
    images = torch.zeros(200, 3, 4, 4)
    l2_start = PGDL2()._random_start(images, eps=0.5)
    norms = l2_start.flatten(1).norm(dim=1)
    assert norms.max() <= 0.5 + 1e-6
    assert norms.min() < 0.25 < norms.max()  # the radius is drawn in [0, eps], not fixed at eps
    linf_start = PGDLinf()._random_start(images, eps=0.1)
    assert linf_start.abs().max() <= 0.1 and linf_start.min() < -0.05 and linf_start.max() > 0.05


@pytest.mark.parametrize("attack_class", [PGDLinf, PGDL2])
def test_pgd_default_step_size_is_madrys_and_runs_steps_times(attack_class: type, monkeypatch: pytest.MonkeyPatch) -> None:
    attack = attack_class(steps=4)
    sizes: list[float] = []
    real_step = attack._step

    def recorded(gradient: torch.Tensor, size: float) -> torch.Tensor:
        sizes.append(size)
        return real_step(gradient, size)

    monkeypatch.setattr(attack, "_step", recorded)
    images, labels = batch()
    attack(linear(), images, labels, eps=0.2)
    assert sizes == pytest.approx([2.5 * 0.2 / 4] * 4)
    sizes.clear()
    explicit = attack_class(steps=2, step_size=0.01)
    monkeypatch.setattr(explicit, "_step", recorded)
    explicit(linear(), images, labels, eps=0.2)
    assert sizes == [0.01, 0.01]
    with pytest.raises(ValueError, match="steps must be >= 1"):
        attack_class(steps=0)
    default = attack_class()  # the evaluation's PGD: 10 steps of 2.5·ε/10 from a random start (Madry et al.)
    assert (default.steps, default.step_size, default.random_start, default.clip) == (10, None, True, True)


def test_random_draws_follow_the_images_device_and_dtype() -> None:
    # on the "meta" device (shapes only, no data) a draw made on the CPU, or in float32, shows
    # at once; on CUDA or in half precision it would cost a copy or precision
    images = torch.zeros(2, 3, 4, 4, device="meta", dtype=torch.float16)
    draws = [attack.perturb(nn.Identity(), images, torch.zeros(2, dtype=torch.long), 0.5).perturbation for attack in (RandomL2(False), RandomLinf(False))]
    draws.append(PGDL2(clip=False)._random_start(images, 0.5))
    assert [(draw.device.type, draw.dtype) for draw in draws] == [("meta", torch.float16)] * 3


def test_one_pgd_linf_step_from_no_start_is_fgsm_and_pgd_l2_is_fgm(monkeypatch: pytest.MonkeyPatch) -> None:
    images, labels = batch()
    model = linear()
    for attack, one_step in ((PGDLinf(clip=False, steps=1, step_size=0.05), FGSM(clip=False)), (PGDL2(clip=False, steps=1, step_size=0.3), FGML2(clip=False))):
        monkeypatch.setattr(attack, "_random_start", lambda x, eps: torch.zeros_like(x))
        eps = 0.05 if isinstance(attack, PGDLinf) else 0.3
        result = attack(model, images, labels, eps=1.0)  # a wide ball: the step alone decides
        expected = one_step(model, images, labels, eps)
        torch.testing.assert_close(result.perturbation, expected.perturbation)
        torch.testing.assert_close(result.adversarial, images + result.perturbation)
        assert not result.perturbation.requires_grad


def test_pgd_with_clipping_keeps_pixels_in_range_and_reports_the_applied_change() -> None:
    images, labels = batch()
    result = PGDL2(steps=3)(linear(), images, labels, eps=3.0)
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    torch.testing.assert_close(result.perturbation, result.adversarial - images)
    assert result.l2().max() <= 3.0 + 1e-9


# -- the perturbing training methods -------------------------------------------------------


def test_random_perturbation_training_draws_l2_normed_gaussian_noise_of_norm_eps() -> None:
    images, labels = batch(n=8)
    method = RandomPerturbationTraining(linear(), lr_f=1e-3, alpha=0.5, eps=0.8, clip=False)
    perturbed = method.perturb(images, labels)
    torch.testing.assert_close(perturbed.l2(), torch.full((8,), 0.8, dtype=torch.float64))
    magnitudes = perturbed.perturbation.abs()
    assert not torch.allclose(magnitudes, magnitudes.flatten(1)[:, :1].view(-1, 1, 1, 1).expand_as(magnitudes))  # no sign pattern
    assert isinstance(method.attack, RandomL2) and not isinstance(method.attack, RandomLinf)
    result = method.train_step(images, labels, lambda: (images, labels))
    assert result.pert_l2 is not None and result.pert_l2.item() == pytest.approx(0.8)


@pytest.mark.parametrize(("norm", "figure"), [("l2", "pert_l2"), ("linf", "pert_linf")])
def test_fast_gradient_training_perturbs_with_its_norm_and_eps(norm: str, figure: str) -> None:
    images, labels = batch(n=8)
    method = FastGradientTraining(linear(), lr_f=1e-3, alpha=0.5, eps=0.07, clip=False, norm=norm)
    reference = (FGML2 if norm == "l2" else FGSM)(clip=False).perturb(method.classifier, images, labels, 0.07)
    torch.testing.assert_close(method.perturb(images, labels).perturbation, reference.perturbation)
    result = method.train_step(images, labels, lambda: (images, labels))
    assert getattr(result, figure).item() == pytest.approx(0.07)
    with pytest.raises(ValueError, match="norm must be"):
        FastGradientTraining(linear(), 1e-3, 0.5, 0.07, False, "l1")


def test_standard_training_has_no_perturbation_and_reports_its_clean_loss() -> None:
    images, _ = batch(n=8)
    model = linear()
    predicted = model(images).argmax(1)
    labels = torch.cat([predicted[:5], (predicted[5:] + 1) % 3])  # 5 of 8 right before the step
    expected = functional.cross_entropy(model(images), labels).detach()
    method = StandardTraining(model, lr_f=1e-3)
    assert method.perturb(images, labels) is None and method.validation_loss(images, labels) is None
    result = method.train_step(images, labels, lambda: (images, labels))
    torch.testing.assert_close(result.loss_f, expected)
    assert result.train_acc_clean is not None and result.train_acc_clean.item() == 5 / 8
    assert result.pert_l2 is None and result.loss_g is None and result.train_acc_adv is None


# -- the GAT attacker's validation loss (Eq. 9, summed) --------------------------------------


def eq9_summed_by_hand(classifier: nn.Module, generator: nn.Module, images: torch.Tensor, labels: torch.Tensor, c_g: float, clip: bool) -> torch.Tensor:
    delta = true_class_probability_gradient(classifier, images, labels)
    perturbation = generator(delta).detach()
    adversarial = images + perturbation
    if clip:
        adversarial = adversarial.clamp(0, 1)
    probability = torch.softmax(classifier(adversarial), dim=1)[torch.arange(len(labels)), labels]
    # the norm term is of G's output, before clipping, as in Eq. 9
    return (probability.sum() + c_g * perturbation.pow(2).sum()).detach()


class Push(nn.Module):
    """A 'generator' pushing every pixel up by about 0.6: clipping then matters for bright pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0, dtype=torch.float64))  # something for the optimiser

    def forward(self, delta: torch.Tensor) -> torch.Tensor:
        return torch.full_like(delta, 0.6) + self.scale * delta


@pytest.mark.parametrize("clip", [True, False])
def test_gat_attacker_validation_loss_is_eq_9_summed_and_honours_clip(clip: bool) -> None:
    images, labels = batch(n=6)
    images = images * 0.5 + 0.5  # bright: x + 0.6 leaves [0, 1]
    classifier = linear(seed=7)
    method = GatAttackerTraining(classifier, Push(), lr_g=1e-3, c_g=0.1, clip=clip, patience=5)
    loss = method.validation_loss(images, labels)
    torch.testing.assert_close(loss, eq9_summed_by_hand(classifier, Push(), images, labels, 0.1, clip))
    other = eq9_summed_by_hand(classifier, Push(), images, labels, 0.1, not clip)
    assert abs(loss.item() - other.item()) > 1e-3  # the case is one where clipping matters


def test_random_perturbation_training_step_replays_eq_4_by_hand() -> None:
    # one step of the random baseline: Eq. 4 with an L2-normed Gaussian direction, replayed by hand
    images, labels = batch()
    classifier, replay = linear(), linear()
    with torch.no_grad():  # accuracies are of the minibatch before the step
        clean_accuracy = replay(images).argmax(1).eq(labels).double().mean()
    method = RandomPerturbationTraining(classifier, lr_f=0.05, alpha=0.3, eps=0.8, clip=True)
    torch.manual_seed(11)
    result = method.train_step(images, labels, draw_batch=lambda: (images, labels))
    torch.manual_seed(11)
    noise = torch.randn(images.shape, dtype=images.dtype)
    adversarial = (images + 0.8 * noise / per_sample_l2(noise)).clamp(0, 1)  # clip=True
    loss = 0.3 * functional.cross_entropy(replay(images), labels) + 0.7 * functional.cross_entropy(replay(adversarial), labels)
    optimizer = torch.optim.Adam(replay.parameters(), lr=0.05)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert result.loss_f is not None and result.pert_l2 is not None and result.pert_linf is not None
    torch.testing.assert_close(result.loss_f, loss.detach())
    applied = adversarial - images
    torch.testing.assert_close(result.pert_l2, applied.flatten(1).norm(dim=1).mean())
    torch.testing.assert_close(result.pert_linf, applied.flatten(1).abs().amax(dim=1).mean())
    assert result.train_acc_clean is not None and result.train_acc_adv is not None
    torch.testing.assert_close(result.train_acc_clean, clean_accuracy.to(result.train_acc_clean.dtype))
    for ours, theirs in zip(classifier.parameters(), replay.parameters()):
        torch.testing.assert_close(ours, theirs)


def test_pgd_iterates_from_the_perturbed_point(monkeypatch: pytest.MonkeyPatch) -> None:
    # two L-inf steps with no random start, replayed by hand: the second gradient is taken at x + δ₁
    # (a non-linear model and large steps, so that the gradient's sign depends on where it is taken)
    torch.manual_seed(5)
    model = nn.Sequential(nn.Flatten(), nn.Linear(18, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    images, labels = batch()
    attack = PGDLinf(clip=False, steps=2, step_size=0.6)
    monkeypatch.setattr(attack, "_random_start", lambda images, eps: torch.zeros_like(images))
    result = attack.perturb(model, images, labels, eps=1.0)

    def gradient_at(points: torch.Tensor) -> torch.Tensor:
        points = points.detach().requires_grad_(True)
        functional.cross_entropy(model(points), labels, reduction="sum").backward()
        assert points.grad is not None
        return points.grad

    first = 0.6 * gradient_at(images).sign()
    second = (first + 0.6 * gradient_at(images + first).sign()).clamp(-1.0, 1.0)
    assert not torch.equal(gradient_at(images + first).sign(), gradient_at(images - first).sign())
    torch.testing.assert_close(result.perturbation, second)


def test_pgd_with_clipping_takes_every_gradient_inside_the_pixel_range(monkeypatch: pytest.MonkeyPatch) -> None:
    # near-white images: each iterate is clipped to [0, 1] before the next gradient is taken
    model = linear()
    images, labels = batch()
    images = 0.9 + 0.1 * images
    attack = PGDLinf(clip=True, steps=2, step_size=0.2)
    start = torch.full_like(images, 0.3)
    monkeypatch.setattr(attack, "_random_start", lambda images, eps: start)
    result = attack.perturb(model, images, labels, eps=0.5)

    def gradient_at(points: torch.Tensor) -> torch.Tensor:
        points = points.detach().requires_grad_(True)
        functional.cross_entropy(model(points), labels, reduction="sum").backward()
        assert points.grad is not None
        return points.grad

    def inside(delta: torch.Tensor) -> torch.Tensor:
        return (images + delta.clamp(-0.5, 0.5)).clamp(0, 1) - images

    delta = inside(start)
    for _ in range(2):
        delta = inside(delta + 0.2 * gradient_at(images + delta).sign())
    torch.testing.assert_close(result.perturbation, delta)
    torch.testing.assert_close(result.adversarial, images + delta)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fast_gradient_training_step_uses_its_learning_rate_and_clipping(norm: str) -> None:
    images, _ = batch()
    classifier, replay = linear(), linear()
    labels = replay(images).argmax(1)  # all right when clean, so the attack has something to take
    method = FastGradientTraining(classifier, lr_f=0.05, alpha=0.5, eps=3.0, clip=True, norm=norm)
    result = method.train_step(images, labels, draw_batch=lambda: (images, labels))
    attack = FGSM(clip=True) if norm == "linf" else FGML2(clip=True)
    adversarial = attack.perturb(replay, images, labels, 3.0).adversarial.detach()
    assert adversarial.min() >= 0 and adversarial.max() <= 1  # ε = 3 would leave [0, 1] unclipped
    with torch.no_grad():  # the step's figures are of the minibatch before the step, clean and perturbed
        accuracies = [replay(x).argmax(1).eq(labels).double().mean().item() for x in (images, adversarial)]
    applied = (adversarial - images).flatten(1)
    assert None not in (result.train_acc_clean, result.train_acc_adv, result.pert_l2, result.pert_linf, result.loss_f)
    assert [result.train_acc_clean.item(), result.train_acc_adv.item()] == pytest.approx(accuracies)  # type: ignore[union-attr]
    assert accuracies[0] != accuracies[1]  # the case tells the two apart
    assert result.pert_l2.item() == pytest.approx(applied.norm(dim=1).mean().item())  # type: ignore[union-attr]
    assert result.pert_linf.item() == pytest.approx(applied.abs().amax(dim=1).mean().item())  # type: ignore[union-attr]
    assert result.loss_g is None
    loss = 0.5 * functional.cross_entropy(replay(images), labels) + 0.5 * functional.cross_entropy(replay(adversarial), labels)
    optimizer = torch.optim.Adam(replay.parameters(), lr=0.05)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    for ours, theirs in zip(classifier.parameters(), replay.parameters()):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("clip", [True, False])
def test_gat_attacker_training_step_is_one_adam_step_on_eq_9_of_the_generator_only(clip: bool) -> None:
    images, labels = batch(n=6)
    images = images * 0.5 + 0.5  # bright: x + G(Δ) leaves [0, 1], so clipping matters
    classifier = linear(seed=7)
    torch.manual_seed(5)
    generator = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Tanh()).double()
    replay = copy.deepcopy(generator)
    frozen = [parameter.clone() for parameter in classifier.parameters()]
    method = GatAttackerTraining(classifier, generator, lr_g=0.05, c_g=0.1, clip=clip, patience=5)
    assert method.optimizers() == {"generator": method.generator_optimizer}
    result = method.train_step(images, labels, draw_batch=lambda: (images, labels))
    perturbation = replay(true_class_probability_gradient(classifier, images, labels))
    applied = apply_perturbation(images, perturbation, clip).perturbation
    probability = torch.softmax(classifier(images + applied), dim=1).gather(1, labels.view(-1, 1))
    loss = probability.mean() + 0.1 * perturbation.flatten(1).pow(2).sum(dim=1).mean()  # Eq. 9, batch mean
    optimizer = torch.optim.Adam(replay.parameters(), lr=0.05)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert result.loss_g is not None and result.pert_l2 is not None and result.pert_linf is not None
    torch.testing.assert_close(result.loss_g, loss.detach())
    torch.testing.assert_close(result.pert_l2, applied.detach().flatten(1).norm(dim=1).mean())
    torch.testing.assert_close(result.pert_linf, applied.detach().flatten(1).abs().amax(dim=1).mean())
    assert result.loss_f is None and result.train_acc_clean is None
    for ours, theirs in zip(generator.parameters(), replay.parameters()):
        torch.testing.assert_close(ours, theirs)
    assert all(torch.equal(before, after) for before, after in zip(frozen, classifier.parameters()))
    assert not any(parameter.requires_grad for parameter in classifier.parameters())  # frozen: no gradients spent on F
    delta = true_class_probability_gradient(classifier, images, labels)
    with torch.no_grad():
        expected = apply_perturbation(images, replay(delta), clip)
    torch.testing.assert_close(method.perturb(images, labels).adversarial, expected.adversarial)  # its own clipping too
