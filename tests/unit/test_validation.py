"""Validation: networks in eval mode (dropout off) and back in train mode after; figures by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from gat_tui.attacks import FGML2, FGSM, GATAttack
from gat_tui.events import EpochSummary
from gat_tui.methods.gat import GenerativeAdversarialTraining
from gat_tui.methods.gat_attack import GatAttackerTraining
from gat_tui.methods.random_noise import RandomPerturbationTraining
from gat_tui.methods.standard import StandardTraining
from gat_tui.training.validation import PgdBudget, SplitFigures, evaluate_split, preview_panel


class ModeRecorder(nn.Module):
    """A linear classifier behind a dropout, noting the mode of every forward pass."""

    def __init__(self, features: int = 3 * 4 * 4, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(11)
        self.dropout = nn.Dropout(0.5)
        self.linear = nn.Linear(features, classes)
        self.modes: list[bool] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        return self.linear(self.dropout(images.flatten(1)))


class RecordingGenerator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.modes: list[bool] = []

    def forward(self, delta: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        return torch.tanh(self.conv(delta))


def uint8_batch(n: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return torch.randint(0, 256, (n, 3, 4, 4), generator=generator, dtype=torch.uint8), torch.randint(0, 3, (n,), generator=generator)


def test_evaluate_split_runs_in_eval_mode_and_restores_train_mode() -> None:
    classifier, generator = ModeRecorder(), RecordingGenerator()
    method = GenerativeAdversarialTraining(classifier, generator, 1e-3, 1e-3, alpha=0.5, c_g=0.1, k=1, clip=True)
    method.train()
    images, labels = uint8_batch()
    evaluate_split(method, images, labels, batch_size=4, fgm_eps=0.5, clip=True, channels_last=False)
    assert classifier.modes and not any(classifier.modes)
    assert generator.modes and not any(generator.modes)
    assert classifier.training and generator.training


def test_preview_panel_runs_in_eval_mode_and_restores_train_mode() -> None:
    classifier, generator = ModeRecorder(), RecordingGenerator()
    method = GenerativeAdversarialTraining(classifier, generator, 1e-3, 1e-3, alpha=0.5, c_g=0.1, k=1, clip=True)
    method.train()
    images, labels = uint8_batch(4)
    panel = preview_panel(method, images, labels, epoch=3, class_names=["a", "b", "c"], channels_last=False)
    assert classifier.modes and not any(classifier.modes)
    assert generator.modes and not any(generator.modes)
    assert classifier.training and generator.training
    x = images.float() / 255
    classifier.eval()
    adversarial = GATAttack(generator, clip=True)(classifier, x, labels).adversarial
    with torch.no_grad():
        assert panel.predicted_clean == classifier.linear(x.flatten(1)).argmax(1).tolist()
        assert panel.predicted_adversarial == classifier.linear(adversarial.flatten(1)).argmax(1).tolist()
    assert panel.epoch == 3 and panel.labels == labels.tolist() and panel.class_names == ["a", "b", "c"]
    torch.testing.assert_close(torch.from_numpy(panel.images), x)
    torch.testing.assert_close(torch.from_numpy(panel.adversarial), adversarial)
    torch.testing.assert_close(torch.from_numpy(panel.perturbations), adversarial - x)


def test_preview_panel_of_a_method_without_perturbation_shows_the_clean_images() -> None:
    method = StandardTraining(ModeRecorder(), lr_f=1e-3)
    images, labels = uint8_batch(4)
    panel = preview_panel(method, images, labels, epoch=1, class_names=["a", "b", "c"], channels_last=False)
    assert panel.predicted_clean == panel.predicted_adversarial
    assert not panel.perturbations.any()
    assert method.classifier.training


@pytest.mark.parametrize("attack", [FGSM(), FGML2(), GATAttack(RecordingGenerator())])
@pytest.mark.parametrize("start_in_training", [True, False])
def test_attack_calls_use_eval_mode_and_restore_the_callers_mode(attack: object, start_in_training: bool) -> None:
    source = ModeRecorder()
    source.train(start_in_training)
    generator = getattr(attack, "generator", None)
    if generator is not None:
        generator.train(start_in_training)
        generator.modes.clear()
    images, labels = uint8_batch(4)
    attack(source, images.float() / 255, labels, 0.1)  # type: ignore[operator]
    assert source.modes and not any(source.modes)
    assert source.training == start_in_training
    if generator is not None:
        assert generator.modes and not any(generator.modes)
        assert generator.training == start_in_training


def test_attack_perturb_uses_the_callers_mode() -> None:
    source = ModeRecorder().train()
    images, labels = uint8_batch(4)
    FGML2().perturb(source, images.float() / 255, labels, 0.1)
    assert source.modes == [True]


def test_evaluate_split_figures_by_hand() -> None:
    # batches of 4 over 10 images (4, 4, 2): the sums must be divided by the image count
    torch.manual_seed(0)
    classifier = ModeRecorder()
    method = RandomPerturbationTraining(classifier, lr_f=1e-3, alpha=0.5, eps=3.0, clip=False)
    images, _ = uint8_batch(10)
    with torch.no_grad():
        predicted = classifier.linear((images.float() / 255).flatten(1)).argmax(1)
    labels = torch.cat([predicted[:7], (predicted[7:] + 1) % 3])  # 7 of 10 right when clean
    torch.manual_seed(5)
    figures = evaluate_split(method, images, labels, batch_size=4, fgm_eps=2.0, clip=False, channels_last=False)

    x = images.float() / 255
    classifier.eval()
    with torch.no_grad():
        clean = (classifier(x).argmax(1) == labels).float().mean().item()
    torch.manual_seed(5)
    adversarial_batches = [method.perturb(x[start : start + 4], labels[start : start + 4]) for start in (0, 4, 8)]
    adversarial = torch.cat([perturbed.adversarial for perturbed in adversarial_batches])
    fgm = FGML2(clip=False).perturb(classifier, x, labels, 2.0).adversarial
    with torch.no_grad():
        expected_adv = (classifier(adversarial).argmax(1) == labels).float().mean().item()
        expected_fgm = (classifier(fgm).argmax(1) == labels).float().mean().item()
    assert figures.acc_clean == pytest.approx(clean)
    assert figures.acc_adv == pytest.approx(expected_adv)
    assert figures.acc_fgm_l2 == pytest.approx(expected_fgm)
    assert figures.acc_clean == pytest.approx(0.7)
    assert figures.pert_l2 == pytest.approx(3.0)  # every sample's random step has norm eps
    expected_linf = torch.cat([perturbed.linf() for perturbed in adversarial_batches]).mean().item()
    assert figures.pert_linf == pytest.approx(expected_linf)
    assert figures.loss_g is None
    assert len({figures.acc_clean, figures.acc_adv, figures.acc_fgm_l2}) > 1  # the case tells the figures apart


def test_evaluate_split_of_plain_training_has_no_perturbation_figures() -> None:
    method = StandardTraining(ModeRecorder(), lr_f=1e-3)
    images, labels = uint8_batch(6)
    figures = evaluate_split(method, images, labels, batch_size=4, fgm_eps=0.5, clip=True, channels_last=False)
    assert figures.acc_adv is None and figures.pert_l2 is None and figures.pert_linf is None and figures.loss_g is None
    assert figures.acc_clean * 6 == pytest.approx(round(figures.acc_clean * 6))


def test_the_validation_fgm_attack_clips_when_the_run_clips() -> None:
    # white images (x = 1) of class 0: logits (1.1 - mean x, mean x - 1.1), so class 0 by 0.2 when
    # clean; FGM-L2 with ε = 1 raises every pixel by 1/√48 ≈ 0.144 (mean x 1.144: class 1 wins),
    # unless the run clips to [0, 1], which takes the whole step back
    linear = nn.Linear(48, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.stack([torch.full((48,), -1 / 48), torch.full((48,), 1 / 48)]))
        linear.bias.copy_(torch.tensor([1.1, -1.1]))
    method = StandardTraining(nn.Sequential(nn.Flatten(), linear), lr_f=1e-3)
    images, labels = torch.full((8, 3, 4, 4), 255, dtype=torch.uint8), torch.zeros(8, dtype=torch.long)
    # batches of 3, 3 and 2: every batch's count must be added up
    clipped = evaluate_split(method, images, labels, batch_size=3, fgm_eps=1.0, clip=True, channels_last=False)
    unclipped = evaluate_split(method, images, labels, batch_size=3, fgm_eps=1.0, clip=False, channels_last=False)
    assert (clipped.acc_clean, clipped.acc_fgm_l2) == (1.0, 1.0)
    assert (unclipped.acc_clean, unclipped.acc_fgm_l2) == (1.0, 0.0)


def test_the_validation_generator_loss_is_the_batches_eq_9_sums_over_the_image_count() -> None:
    classifier, generator = ModeRecorder(), RecordingGenerator()
    method = GatAttackerTraining(classifier, generator, lr_g=1e-3, c_g=0.1, clip=True, patience=3)
    images, labels = uint8_batch(10)
    figures = evaluate_split(method, images, labels, batch_size=4, fgm_eps=0.5, clip=True, channels_last=False)
    method.eval()
    x = images.float() / 255
    sums = [method.validation_loss(x[start : start + 4], labels[start : start + 4]) for start in (0, 4, 8)]
    assert min(sums) > 0 and figures.loss_g == pytest.approx(float(sum(sums)) / 10)


def test_split_figures_become_the_epochs_validation_event_field_by_field() -> None:
    figures = SplitFigures(acc_clean=0.75, acc_adv=0.5, acc_fgm_l2=0.25, pert_l2=1.5, pert_linf=0.125, loss_g=3.0)
    assert figures.epoch_summary(epoch=4, step=96, time=12.5, is_best=True, seconds=2.5) == EpochSummary(
        epoch=4, step=96, time=12.5, val_acc_clean=0.75, val_acc_adv=0.5, val_acc_fgm_l2=0.25, val_pert_l2=1.5,
        val_pert_linf=0.125, val_loss_g=3.0, is_best=True, epoch_seconds=2.5,
    )


def test_the_validation_pgd_figure_counts_the_budgets_first_images_only() -> None:
    # class 0 while the mean pixel is below 0.6: logits (0.6 - mean x, mean x - 0.6). Grey images
    # (128/255) are pushed past it by L-inf PGD at eps 0.2 (every pixel +0.2: mean 0.70); dark ones
    # (51/255 = 0.2) cannot be (at most 0.4). FGM-L2 at eps 0.5 moves each pixel by 0.07 only.
    linear = nn.Linear(48, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.stack([torch.full((48,), -1 / 48), torch.full((48,), 1 / 48)]))
        linear.bias.copy_(torch.tensor([0.6, -0.6]))
    method = StandardTraining(nn.Sequential(nn.Flatten(), linear), lr_f=1e-3)
    grey, dark = torch.full((1, 3, 4, 4), 128, dtype=torch.uint8), torch.full((1, 3, 4, 4), 51, dtype=torch.uint8)
    images = torch.cat([grey, grey, grey, dark, dark, grey, grey, grey, dark, dark])
    labels = torch.zeros(10, dtype=torch.long)
    budget = PgdBudget(norm="linf", eps=0.2, steps=3, images=4)
    # batches of 3: the budget's 4 images end inside the second batch
    figures = evaluate_split(method, images, labels, batch_size=3, fgm_eps=0.5, clip=True, channels_last=False, pgd=budget)
    assert (figures.acc_clean, figures.acc_fgm_l2) == (1.0, 1.0)
    assert figures.acc_pgd == pytest.approx(1 / 4)  # of the first 4 images, only the dark one survives
    everything = evaluate_split(
        method, images, labels, batch_size=3, fgm_eps=0.5, clip=True, channels_last=False, pgd=replace(budget, images=0)
    )
    assert everything.acc_pgd == pytest.approx(4 / 10)  # the 4 dark images of 10
    assert evaluate_split(method, images, labels, batch_size=3, fgm_eps=0.5, clip=True, channels_last=False).acc_pgd is None
    assert figures.epoch_summary(epoch=1, step=1, time=0.0, is_best=True, seconds=0.0).val_acc_pgd == figures.acc_pgd
