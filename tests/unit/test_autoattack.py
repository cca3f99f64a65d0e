"""AutoAttack and APGD through pyautoattack; the eval plan's options, ε specs and result rows."""

from __future__ import annotations

import sys

import pytest
import torch
from autoattack_support import tiny_batch, tiny_classifier
from torch import nn

from gat_tui.attacks import APGDCE, AutoAttack, PGDLinf
from gat_tui.robustness.evaluate import AttackResult, StageResult, evaluate_attacks
from gat_tui.robustness.plan import AttackSpec, AutoAttackOptions, EvalError, parse_attack_spec, parse_sizes, plan_attacks


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return tiny_batch(misclassified=2)  # correct on all but the first two


def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return (net(images).argmax(1) == labels).float().mean().item()


@pytest.mark.slow  # pyautoattack's 100-iteration attacks take seconds on a CPU
@pytest.mark.usefixtures("pyautoattack")
@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.05), ("l2", 0.5)])
def test_autoattack_stages_are_cumulative_and_within_eps(norm: str, eps: float) -> None:
    net, (images, labels) = tiny_classifier(), batch()
    attack = AutoAttack(norm, "custom", ("apgd-ce", "apgd-t"))
    stages = list(attack.stages(net, images, labels, eps))
    assert [name for name, _ in stages] == ["apgd-ce", "apgd-t"]
    accuracies = [accuracy(net, result.adversarial, labels) for _, result in stages]
    assert accuracies == sorted(accuracies, reverse=True) and accuracies[0] <= accuracy(net, images, labels)
    for _, result in stages:
        size = result.linf() if norm == "linf" else result.l2()
        assert size.max() <= eps + 1e-6
        assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
        torch.testing.assert_close(result.perturbation, result.adversarial - images)
        assert torch.equal(result.adversarial[:2], images[:2])  # already misclassified: left alone
    assert net.training  # the caller's mode is restored


@pytest.mark.slow  # pyautoattack's 100-iteration attacks take seconds on a CPU
@pytest.mark.usefixtures("pyautoattack")
def test_autoattack_is_repeatable_and_leaves_the_random_stream_alone() -> None:
    net, (images, labels) = tiny_classifier(), batch()
    attack = AutoAttack("linf", "custom", ("apgd-ce",))
    torch.manual_seed(5)
    first = attack(net, images, labels, 0.05).adversarial
    after_first = torch.rand(3)
    torch.manual_seed(5)
    second = attack(net, images, labels, 0.05).adversarial
    assert torch.equal(first, second) and torch.equal(after_first, torch.rand(3))


@pytest.mark.slow  # pyautoattack's 100-iteration attacks take seconds on a CPU
@pytest.mark.usefixtures("pyautoattack")
def test_apgd_ce_is_at_least_as_strong_as_pgd_and_within_eps() -> None:
    net, (images, labels) = tiny_classifier(), batch()
    eps = 0.03
    apgd = APGDCE("linf")(net, images, labels, eps)
    pgd = PGDLinf(steps=10)(net, images, labels, eps)
    assert apgd.linf().max() <= eps + 1e-6
    assert accuracy(net, apgd.adversarial, labels) <= accuracy(net, pgd.adversarial, labels)


@pytest.mark.slow  # pyautoattack's 100-iteration attacks take seconds on a CPU
@pytest.mark.usefixtures("pyautoattack")
def test_evaluate_attacks_reports_stages_version_norm_and_count() -> None:
    net, (images, labels) = tiny_classifier(), batch()
    uint8 = (images * 255).round().to(torch.uint8)
    plans = plan_attacks(
        ["autoattack:0.05", "apgd-ce:0.05"], [], True, None, 10, None,
        AutoAttackOptions("linf", "custom", ("apgd-ce", "apgd-t")), num_classes=5,
    )
    seen: list[tuple[str, int, int]] = []
    results = evaluate_attacks(net, net, None, uint8, labels, plans, batch_size=5, progress=lambda *a: seen.append(a))
    clean, auto, apgd = results
    assert (auto.attack, auto.eps, auto.norm, auto.n, auto.version) == ("autoattack", 0.05, "linf", 12, "custom")
    assert auto.stages is not None and [s.attack for s in auto.stages] == ["apgd-ce", "apgd-t"]
    assert auto.accuracy == auto.stages[-1].accuracy <= auto.stages[0].accuracy <= clean.accuracy
    assert auto.pert_linf <= 0.05 + 1e-6
    assert (apgd.norm, apgd.n, apgd.version, apgd.stages) == ("linf", 12, None, None)
    assert any("apgd-t done" in what for what, _, _ in seen) and seen[-1][1:] == (12, 12)  # batches of 5: 5, 10, 12
    record = auto.to_json()
    assert record["stages"] == [{"attack": "apgd-ce", "accuracy": auto.stages[0].accuracy},
                                {"attack": "apgd-t", "accuracy": auto.stages[1].accuracy}]
    assert set(clean.to_json()) == {"attack", "eps", "accuracy", "pert_l2", "pert_linf", "source"}


@pytest.mark.usefixtures("pyautoattack")
def test_plan_refuses_bad_autoattack_options_naming_them() -> None:
    def plan(names: list[str], options: AutoAttackOptions, classes: int | None = 10) -> None:
        plan_attacks(names, [], True, None, 10, None, options, classes)

    with pytest.raises(EvalError, match="--version custom needs --aa-attacks"):
        plan(["autoattack"], AutoAttackOptions(version="custom"))
    with pytest.raises(EvalError, match="--aa-attacks 'apgd-ce': only with --version custom"):
        plan(["autoattack"], AutoAttackOptions(stages=("apgd-ce",)))
    with pytest.raises(EvalError, match="--aa-attacks.*'cw'"):
        plan(["autoattack"], AutoAttackOptions(version="custom", stages=("apgd-ce", "cw")))
    with pytest.raises(EvalError, match="--norm 'l1'"):
        plan(["apgd-ce"], AutoAttackOptions(norm="l1"))
    with pytest.raises(EvalError, match="apgd-t needs models of at least 4 classes; this one has 3"):
        plan(["autoattack"], AutoAttackOptions(), classes=3)
    with pytest.raises(EvalError, match="apgd-dlr needs models of at least 3 classes; this one has 2"):
        plan(["apgd-dlr"], AutoAttackOptions(), classes=2)
    plans = plan_attacks(["autoattack", "apgd-ce"], [], True, None, 10, None, AutoAttackOptions(norm="l2"))
    assert [p.eps_values for p in plans] == [(0.5,), (0.5,)]  # RobustBench's L2 default
    assert plan_attacks(["autoattack"], [0.1], True, None, 10, None)[0].eps_values == (0.1,)


def test_missing_pyautoattack_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyautoattack", None)  # import fails as when not installed
    with pytest.raises(EvalError, match=r'--attack autoattack needs the pyautoattack package.*pip install -e "\.\[autoattack\]"'):
        plan_attacks(["autoattack"], [], True, None, 10, None)


def test_attack_specs_take_their_own_eps_and_fractions() -> None:
    assert parse_attack_spec("fgsm:2/255, 8/255") == AttackSpec("fgsm", (2 / 255, 8 / 255))
    assert parse_attack_spec("pgd-l2") == AttackSpec("pgd-l2")
    assert parse_sizes("0.5,1", "--eps") == (0.5, 1.0)
    plans = plan_attacks(["fgsm:1/255", "fgm-l2"], [0.25], True, None, 10, None)
    assert [p.eps_values for p in plans] == [(1 / 255,), (0.25,)]
    for text, message in [("fgsm:", "no ε after ':'"), ("fgsm:1/0", "'1/0' is not a number"),
                          ("fgsm:2/255,x", "'x' is not a number"), ("fgsm:-1", "'-1' is not a finite size"),
                          ("fgsm:inf", "'inf' is not a finite size")]:
        with pytest.raises(EvalError, match=f"--attack {text!r}: {message}"):
            parse_attack_spec(text)
    with pytest.raises(EvalError, match="--attack 'cw'.*autoattack"):
        plan_attacks(["cw:1"], [], True, None, 10, None)


def test_table_shows_stage_rows() -> None:
    from rich.console import Console

    from gat_tui.console.eval_tables import results_table

    row = AttackResult("autoattack", 0.03, 0.25, 0.1, 0.03, None, None, "linf", 8, "standard",
                       (StageResult("apgd-ce", 0.5), StageResult("apgd-t", 0.25)))
    console = Console(width=120, record=True)
    console.print(results_table([row], "t"))
    text = console.export_text()
    assert "autoattack (standard, L∞)" in text and "after apgd-ce" in text and "50.00%" in text
