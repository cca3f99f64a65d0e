from __future__ import annotations

import pytest
import torch
from torch import nn

from gat_tui.attacks import FGSM, PGDL2, GATAttack, PGDLinf
from gat_tui.robustness.evaluate import AttackResult, evaluate_attacks
from gat_tui.robustness.plan import EvalError, plan_attacks


def linear_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 4))


def data() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    return torch.rand(32, 3, 6, 6), torch.randint(0, 4, (32,))


def test_pgd_linf_stays_in_the_eps_ball_and_the_pixel_range() -> None:
    images, labels = data()
    result = PGDLinf(steps=5)(linear_model(), images, labels, eps=0.05)
    assert result.linf().max() <= 0.05 + 1e-6
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    torch.testing.assert_close(result.perturbation, result.adversarial - images)


def test_pgd_l2_stays_in_the_eps_ball() -> None:
    images, labels = data()
    result = PGDL2(steps=5)(linear_model(), images, labels, eps=0.4)
    assert result.l2().max() <= 0.4 + 1e-5


def test_pgd_is_at_least_as_strong_as_fgsm() -> None:
    images, labels = data()
    model = linear_model()

    def accuracy(x: torch.Tensor) -> float:
        return (model(x).argmax(1) == labels).float().mean().item()

    eps = 0.1
    assert accuracy(PGDLinf(steps=20)(model, images, labels, eps).adversarial) <= accuracy(
        FGSM()(model, images, labels, eps).adversarial
    )
    assert accuracy(FGSM()(model, images, labels, eps).adversarial) < accuracy(images)


def test_match_power_adds_fgm_and_fgsm_at_the_gat_attackers_l2_norm() -> None:
    images, labels = data()
    uint8_images = (images * 255).round().to(torch.uint8)
    model = linear_model()
    generator = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Tanh())
    plans = plan_attacks(["gat"], [], clip=False, generator=generator, pgd_steps=3, pgd_step_size=None)
    results = evaluate_attacks(model, model, None, uint8_images, labels, plans, batch_size=8, match_power=True)
    assert [r.attack for r in results] == ["clean", "gat", "fgm-l2", "fgsm"]
    gat, fgm, fgsm = results[1:]
    assert gat.eps is None and fgm.matched_to == fgsm.matched_to == "gat"
    assert fgm.pert_l2 == pytest.approx(gat.pert_l2, rel=1e-4)
    assert fgsm.pert_l2 == pytest.approx(gat.pert_l2, rel=1e-4)  # no clipping: sign step has L2 = eps·sqrt(CHW)
    # accuracies are counts over the 32 images, and the clean row is the model's own accuracy
    assert all(r.accuracy * 32 == pytest.approx(round(r.accuracy * 32)) for r in results)
    assert results[0].accuracy == pytest.approx((model(uint8_images.float() / 255).argmax(1) == labels).float().mean().item())
    assert fgm.accuracy <= results[0].accuracy and fgsm.accuracy <= results[0].accuracy


def test_plan_refuses_unknown_attacks_and_gat_without_generator() -> None:
    with pytest.raises(EvalError, match="--attack 'cw'.*expected one of"):
        plan_attacks(["cw"], [], True, None, 10, None)
    with pytest.raises(EvalError, match="needs a generator"):
        plan_attacks(["gat"], [], True, None, 10, None)
    plans = plan_attacks(["fgsm", "pgd-l2"], [], True, None, 7, None)
    assert plans[0].eps_values == FGSM.default_eps and plans[1].attack.steps == 7  # type: ignore[attr-defined]


def test_gat_attack_reports_its_own_power() -> None:
    images, labels = data()
    attack = GATAttack(nn.Sequential(nn.Conv2d(3, 3, 1), nn.Tanh()), clip=True)
    result = attack(linear_model(), images, labels, eps=123.0)  # eps is not used
    assert not result.adversarial.requires_grad


def test_attack_result_json_drops_matched_to_only_when_unset() -> None:
    plain = AttackResult("gat", None, 0.5, 1.0, 0.1, None).to_json()
    assert plain == {"attack": "gat", "eps": None, "accuracy": 0.5, "pert_l2": 1.0, "pert_linf": 0.1, "source": None}
    matched = AttackResult("fgsm", 0.02, 0.25, 1.0, 0.02, "runs/b.safetensors", matched_to="gat").to_json()
    assert matched == {
        "attack": "fgsm", "eps": 0.02, "accuracy": 0.25, "pert_l2": 1.0, "pert_linf": 0.02,
        "source": "runs/b.safetensors", "matched_to": "gat",
    }


def test_accuracy_falls_with_eps_and_pgd_is_no_weaker_than_fgsm() -> None:
    images, labels = data()
    uint8_images = (images * 255).round().to(torch.uint8)
    model = linear_model()
    plans = plan_attacks(["fgsm", "pgd-linf", "fgm-l2"], [0.02, 0.1], clip=True, generator=None, pgd_steps=10, pgd_step_size=None)
    results = evaluate_attacks(model, model, None, uint8_images, labels, plans, batch_size=8)
    by_attack = {(r.attack, r.eps): r for r in results}
    clean = by_attack[("clean", 0.0)].accuracy
    for attack in ("fgsm", "pgd-linf", "fgm-l2"):
        small, large = by_attack[(attack, 0.02)], by_attack[(attack, 0.1)]
        assert large.accuracy <= small.accuracy <= clean
    for eps in (0.02, 0.1):
        assert by_attack[("pgd-linf", eps)].accuracy <= by_attack[("fgsm", eps)].accuracy
        assert by_attack[("pgd-linf", eps)].pert_linf <= eps + 1e-6
        assert by_attack[("fgm-l2", eps)].pert_l2 <= eps + 1e-6
    assert by_attack[("fgsm", 0.1)].accuracy < clean  # the case is one the attack changes
