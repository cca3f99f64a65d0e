"""The rows `evaluate_attacks` makes: which ε a row names, the fields of AutoAttack's family, rows
matched to the GAT attacker's power, the progress labels, and the models' eval mode."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from two_pixel_support import IMAGES, LABELS, TARGET_WEIGHT, linear

from gat_tui.attacks import FGSM, GATAttack, RandomL2
from gat_tui.attacks.base import Attack, Perturbed
from gat_tui.robustness.evaluate import AttackResult, StageResult, evaluate_attacks
from gat_tui.robustness.plan import AttackPlan


class PushBy(Attack):
    """Moves pixel 0 down and pixel 1 up by ε (the target's class 1 gains 2ε on class 0): no gradient involved."""

    name = "apgd-ce"  # a member of AutoAttack's family by name: its rows carry norm and n
    norm = "l2"
    default_eps = (0.1,)

    def perturb(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Perturbed:
        delta = torch.tensor([-eps, eps]).expand_as(images)
        return Perturbed(images + delta, delta.clone())


class Shifter(nn.Module):
    """A 'generator' that maps any gradient to the same shift (+0.03, −0.04): ‖δ‖₂ = 0.05 for every image."""

    def forward(self, gradient: torch.Tensor) -> torch.Tensor:
        return torch.tensor([0.03, -0.04]).expand_as(gradient)


def test_an_apgd_row_carries_its_norm_and_image_count_and_its_figures() -> None:
    # ε = 0.05 per pixel moves every margin by 0.1 towards class 1: a (0.098) flips, b holds, c holds, d (-0.043) is won: 3 of 4
    clean, row = evaluate_attacks(linear(TARGET_WEIGHT), linear(TARGET_WEIGHT), None, IMAGES, LABELS, [AttackPlan(PushBy(), (0.05,))], 3)
    assert (row.attack, row.eps, row.norm, row.n, row.version, row.stages, row.matched_to) == ("apgd-ce", 0.05, "l2", 4, None, None, None)
    assert (row.accuracy, row.pert_l2, row.pert_linf) == pytest.approx((0.75, 0.05 * math.sqrt(2), 0.05), abs=1e-6)
    assert (clean.norm, clean.n, clean.eps, clean.pert_l2, clean.pert_linf) == (None, None, 0.0, 0.0, 0.0)


def test_other_rows_leave_norm_and_count_out_and_an_attack_without_a_norm_has_no_eps() -> None:
    plans = [AttackPlan(RandomL2(clip=True), (0.0,)), AttackPlan(GATAttack(Shifter(), clip=False), (0.0,))]
    seen: list[tuple[str, int, int]] = []
    _, random, gat = evaluate_attacks(
        linear(TARGET_WEIGHT), linear(TARGET_WEIGHT), None, IMAGES, LABELS, plans, 4, progress=lambda *a: seen.append(a)
    )
    assert (random.eps, random.norm, random.n) == (0.0, None, None)
    assert (gat.eps, gat.norm, gat.n) == (None, None, None)
    # the shift moves every margin by 0.07 towards class 0: a and b hold, c (0.051) flips, d stays wrong
    assert (gat.accuracy, gat.pert_l2, gat.pert_linf) == pytest.approx((0.5, 0.05, 0.04), abs=1e-6)
    assert seen == [("random ε=0", 4, 4), ("gat", 4, 4)]


def test_match_power_adds_fgm_l2_at_the_gat_attacker_s_l2_and_fgsm_at_that_over_the_root_of_the_values() -> None:
    plans = [AttackPlan(GATAttack(Shifter(), clip=False), (0.0,))]
    seen: list[str] = []
    rows = evaluate_attacks(
        linear(TARGET_WEIGHT), linear(TARGET_WEIGHT), "src", IMAGES, LABELS, plans, 4, match_power=True,
        progress=lambda what, done, total: seen.append(what),
    )
    assert [(row.attack, row.matched_to, row.source) for row in rows] == [
        ("clean", None, "src"), ("gat", None, "src"), ("fgm-l2", "gat", "src"), ("fgsm", "gat", "src"),
    ]
    fgm, fgsm = rows[2], rows[3]
    assert fgm.eps == pytest.approx(0.05, abs=1e-7) and fgsm.eps == pytest.approx(0.05 / math.sqrt(2), abs=1e-7)
    assert fgsm.pert_l2 == pytest.approx(0.05, abs=1e-6) and fgm.pert_l2 == pytest.approx(0.05, abs=1e-6)  # unclipped: both at G's power
    assert seen == ["gat", f"fgm-l2 ε={fgm.eps:g}", f"fgsm ε={fgsm.eps:g}"]
    without = evaluate_attacks(linear(TARGET_WEIGHT), linear(TARGET_WEIGHT), None, IMAGES, LABELS, plans, 4)
    assert [row.attack for row in without] == ["clean", "gat"]


@pytest.mark.parametrize("clip", [True, False])
def test_match_power_keeps_the_gat_attacker_s_clip(clip: bool) -> None:
    plans = [AttackPlan(GATAttack(Shifter(), clip=clip), (0.0,))]
    white = torch.full((4, 1, 1, 2), 255, dtype=torch.uint8)
    gat, fgm, fgsm = evaluate_attacks(linear(TARGET_WEIGHT), linear(TARGET_WEIGHT), None, white, LABELS, plans, 4, match_power=True)[1:]
    assert fgm.eps is not None and fgsm.eps is not None
    if clip:
        assert gat.pert_l2 == pytest.approx(0.04, abs=1e-6)  # white pixels: only the step down (−0.04) stays
        # FGM-L2 and FGSM at that power, clipped at white too: their steps up are cut, as the GAT attacker's were
        assert fgm.pert_l2 < fgm.eps - 1e-3 and fgsm.pert_l2 < fgsm.eps * math.sqrt(2) - 1e-3
    else:
        assert gat.pert_l2 == pytest.approx(0.05, abs=1e-6)
        assert fgm.pert_l2 == pytest.approx(fgm.eps, abs=1e-6) and fgsm.pert_l2 == pytest.approx(fgsm.eps * math.sqrt(2), abs=1e-6)


def test_both_models_are_put_in_eval_mode_before_the_clean_accuracy() -> None:
    # batch norm in training mode normalises by the batch: a, b, c, d would all be judged differently
    target = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(2), nn.Linear(2, 2, bias=False))
    source = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(2), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        target[2].weight.copy_(torch.tensor(TARGET_WEIGHT))
        source[2].weight.copy_(torch.tensor(TARGET_WEIGHT))
    target.train()
    source.train()
    rows = evaluate_attacks(target, source, None, IMAGES, LABELS, [AttackPlan(FGSM(), (0.0,))], 4)
    assert not target.training and not source.training
    assert [row.accuracy for row in rows] == pytest.approx([0.75, 0.75])  # eval mode: batch norm is the identity at its start


def test_an_autoattack_row_s_json_lists_its_stages() -> None:
    row = AttackResult("autoattack", 0.03, 0.25, 0.1, 0.03, "s.safetensors", None, "linf", 8, "standard",
                       (StageResult("apgd-ce", 0.5), StageResult("apgd-t", 0.25)))
    assert row.to_json() == {
        "attack": "autoattack", "eps": 0.03, "accuracy": 0.25, "pert_l2": 0.1, "pert_linf": 0.03, "source": "s.safetensors",
        "norm": "linf", "n": 8, "version": "standard",
        "stages": [{"attack": "apgd-ce", "accuracy": 0.5}, {"attack": "apgd-t", "accuracy": 0.25}],
    }
    apgd = AttackResult("apgd-ce", 0.5, 0.5, 0.5, 0.4, None, None, "l2", 4)
    assert apgd.to_json() == {"attack": "apgd-ce", "eps": 0.5, "accuracy": 0.5, "pert_l2": 0.5, "pert_linf": 0.4, "source": None,
                              "norm": "l2", "n": 4}
    assert AttackResult("autoattack", 0.03, 0.25, 0.1, 0.03, None, stages=()).to_json()["stages"] == []
