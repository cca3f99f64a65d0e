"""`gat-tui eval`'s figures, table and JSON against a hand computation, direct and indirect.

Two linear classifiers on four two-pixel images: the target reads pixel 0 as class 0 and pixel 1
as class 1; the source model is wired the other way round (class 0 from 2 × pixel 1, class 1 from
pixel 0), so its gradients push the images the other way and with other proportions. Every
figure taken from the wrong model (clean accuracy of the source, a perturbation from the target
in an indirect attack, accuracy judged by the source) differs from the one expected here.

The images (pixel values / 255, label):
    a (140, 115) 0     margin 25/255 ≈ 0.098: correct; a step of 0.1 against it flips it
    b (178,  76) 0     margin 0.4: correct, and stays so
    c (115, 128) 1     margin 13/255 ≈ 0.051: correct; flips
    d (133, 122) 1     wrong when clean; the source's gradient pushes it right
so the target's clean accuracy is 3/4 (the source's own would be 1/4).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from rich.console import Console
from torch import nn

from gat_tui.attacks import FGML2, FGSM, PGDLinf
from gat_tui.console.eval_tables import results_table, settings_lines, write_json
from gat_tui.robustness.evaluate import AttackResult, evaluate_attacks
from gat_tui.robustness.plan import AttackPlan
from gat_tui.robustness.settings import attack_settings

IMAGES = torch.tensor([[140, 115], [178, 76], [115, 128], [133, 122]], dtype=torch.uint8).reshape(4, 1, 1, 2)
LABELS = torch.tensor([0, 0, 1, 1])
TARGET_WEIGHT = [[1.0, 0.0], [0.0, 1.0]]
SOURCE_WEIGHT = [[0.0, 2.0], [1.0, 0.0]]


def linear(weight: list[list[float]]) -> nn.Module:
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor(weight))
    return model


def by_hand(weight: list[list[float]], eps: float, kind: str) -> tuple[float, float, float]:
    """(target accuracy, mean ‖δ‖₂, mean ‖δ‖∞) of one step along the input gradient of `weight`'s
    cross-entropy: for a linear model that gradient is Wᵀ(softmax(Wx) − onehot(y))."""
    w = torch.tensor(weight, dtype=torch.float64)
    x = IMAGES.reshape(4, 2).double() / 255
    p = torch.softmax(x @ w.T, dim=1)
    g = (p - nn.functional.one_hot(LABELS, 2).double()) @ w
    step = eps * g.sign() if kind == "fgsm" else eps * g / g.norm(dim=1, keepdim=True)
    delta = (x + step).clamp(0, 1) - x
    target = torch.tensor(TARGET_WEIGHT, dtype=torch.float64)
    accuracy = (((x + delta) @ target.T).argmax(dim=1) == LABELS).double().mean().item()
    return accuracy, delta.norm(dim=1).mean().item(), delta.abs().amax(dim=1).mean().item()


def evaluate(source_weight: list[list[float]] | None) -> list[AttackResult]:
    target = linear(TARGET_WEIGHT)
    source = linear(source_weight) if source_weight is not None else target
    plans = [AttackPlan(FGSM(clip=True), (0.1,)), AttackPlan(FGML2(clip=True), (0.2,))]
    # batches of 3: the sums run over unequal batches (3 + 1)
    return evaluate_attacks(target, source, None if source_weight is None else "source.safetensors", IMAGES, LABELS, plans, 3)


def test_direct_figures_by_hand() -> None:
    rows = {row.attack: row for row in evaluate(None)}
    assert rows["clean"].accuracy == 0.75 and rows["clean"].source is None
    # FGSM, ε = 0.1: a and c flip, b holds, d stays wrong; each pixel moves by 0.1
    fgsm = rows["fgsm"]
    assert (fgsm.eps, fgsm.accuracy) == (0.1, 0.25)
    assert fgsm.pert_l2 == pytest.approx(0.1 * math.sqrt(2), abs=1e-6) and fgsm.pert_linf == pytest.approx(0.1, abs=1e-6)
    # FGM-L2, ε = 0.2: the gradient is ±(1, -1) p: δ = 0.2 (∓1, ±1) / √2, so ‖δ‖∞ = 0.1414
    fgm = rows["fgm-l2"]
    assert fgm.accuracy == 0.25
    assert fgm.pert_l2 == pytest.approx(0.2, abs=1e-6) and fgm.pert_linf == pytest.approx(0.2 / math.sqrt(2), abs=1e-6)
    for row, kind, eps in ((fgsm, "fgsm", 0.1), (fgm, "fgm", 0.2)):
        assert (row.accuracy, row.pert_l2, row.pert_linf) == pytest.approx(by_hand(TARGET_WEIGHT, eps, kind), abs=1e-6)


def test_indirect_figures_come_from_the_source_s_gradient_and_the_target_s_verdict() -> None:
    rows = {row.attack: row for row in evaluate(SOURCE_WEIGHT)}
    assert rows["clean"].accuracy == 0.75  # the target's, not the source's 1/4
    assert {row.source for row in rows.values()} == {"source.safetensors"}
    # the source's gradient pushes every image towards its label: all four right
    assert rows["fgsm"].accuracy == 1.0 and rows["fgm-l2"].accuracy == 1.0
    # the source's gradient is ∝ (1, -2): δ = 0.2 (1, -2) / √5, so ‖δ‖∞ = 0.4 / √5 = 0.1789 (direct: 0.1414)
    assert rows["fgm-l2"].pert_linf == pytest.approx(0.4 / math.sqrt(5), abs=1e-6)
    for name, kind, eps in (("fgsm", "fgsm", 0.1), ("fgm-l2", "fgm", 0.2)):
        row = rows[name]
        assert (row.accuracy, row.pert_l2, row.pert_linf) == pytest.approx(by_hand(SOURCE_WEIGHT, eps, kind), abs=1e-6)


def table_rows(results: list[AttackResult], title: str = "t") -> tuple[list[str], list[list[str]]]:
    console = Console(width=160, record=True, color_system=None)
    console.print(results_table(results, title))
    lines = [line for line in console.export_text().splitlines() if line.startswith(("┃", "│"))]
    cells = [[cell.strip() for cell in re.split(r"[┃│]", line)[1:-1]] for line in lines]
    return cells[0], cells[1:]


@pytest.mark.parametrize("source", [None, SOURCE_WEIGHT])
def test_the_printed_table_column_by_column(source: list[list[float]] | None) -> None:
    results = evaluate(source)
    header, rows = table_rows(results)
    assert header == ["attack", "ε", "accuracy", "mean ‖δ‖₂", "mean ‖δ‖∞"]  # one source for all: said once, in the title
    expected = {row.attack: row for row in results}
    assert [row[0] for row in rows] == ["clean", "fgsm", "fgm-l2"]
    for attack, eps, accuracy, l2, linf in rows:
        row = expected[attack]
        assert accuracy == f"{100 * row.accuracy:.2f}%" and l2 == f"{row.pert_l2:.4f}" and linf == f"{row.pert_linf:.4f}"
        assert eps == {"clean": "-", "fgsm": "0.1", "fgm-l2": "0.2"}[attack]
    if source is None:
        assert rows[1][2:] == ["25.00%", "0.1414", "0.1000"] and rows[2][2:] == ["25.00%", "0.2000", "0.1414"]
    else:
        assert rows[0][2] == "75.00%" and rows[1][2] == "100.00%" and rows[2][2:] == ["100.00%", "0.2000", "0.1789"]


def test_mixed_sources_keep_the_column_and_l_inf_eps_prints_in_255ths() -> None:
    results = [AttackResult("fgsm", 2 / 255, 0.5, 0.1, 2 / 255, None), AttackResult("fgsm", 8 / 255, 0.25, 0.4, 8 / 255, "b.safetensors")]
    header, rows = table_rows(results)
    assert header[-1] == "source"
    assert [(row[1], row[-1]) for row in rows] == [("2/255", "(direct)"), ("8/255", "b.safetensors")]


def test_the_json_record_field_by_field(tmp_path: Path) -> None:
    results = evaluate(SOURCE_WEIGHT)
    path = tmp_path / "eval.json"
    settings = attack_settings([PGDLinf(steps=7)])
    write_json(path, Path("run/checkpoints/best.safetensors"), "test", 4, results, {"clip": True, "settings": settings})
    record = json.loads(path.read_text())
    assert (record["checkpoint"], record["split"], record["n"], record["clip"]) == ("run/checkpoints/best.safetensors", "test", 4, True)
    assert record["settings"] == {"pgd-linf": {"steps": 7, "step_size": "2.5*eps/steps", "random_start": True, "restarts": 1}}
    fgsm_acc, fgsm_l2, fgsm_linf = by_hand(SOURCE_WEIGHT, 0.1, "fgsm")
    fgm_acc, fgm_l2, fgm_linf = by_hand(SOURCE_WEIGHT, 0.2, "fgm")
    expected = [
        ("clean", 0.0, 0.75, 0.0, 0.0),
        ("fgsm", 0.1, fgsm_acc, fgsm_l2, fgsm_linf),
        ("fgm-l2", 0.2, fgm_acc, fgm_l2, fgm_linf),
    ]
    assert len(record["results"]) == 3
    for row, (attack, eps, accuracy, l2, linf) in zip(record["results"], expected):
        assert set(row) == {"attack", "eps", "accuracy", "pert_l2", "pert_linf", "source"}
        assert (row["attack"], row["eps"], row["source"]) == (attack, eps, "source.safetensors")
        assert (row["accuracy"], row["pert_l2"], row["pert_linf"]) == pytest.approx((accuracy, l2, linf), abs=1e-6)


def test_attack_settings_and_their_line() -> None:
    from gat_tui.attacks.autoattack import APGDCE, AutoAttack

    auto = AutoAttack("linf", "standard")
    auto.stage_settings = {"apgd-ce": {"n_iter": 100, "n_restarts": 1}, "apgd-t": {"n_iter": 100, "n_restarts": 1, "n_target_classes": 9},
                           "fab-t": {"n_iter": 100, "n_restarts": 1, "n_target_classes": 9}, "square": {"n_queries": 5000, "n_restarts": 1}}
    settings = attack_settings([FGSM(), PGDLinf(steps=20, step_size=0.002, random_start=False), auto, APGDCE("l2", iterations=50, restarts=2)])
    assert list(settings) == ["pgd-linf", "autoattack", "apgd-ce"]  # FGSM has none
    assert settings["pgd-linf"] == {"steps": 20, "step_size": 0.002, "random_start": False, "restarts": 1}
    assert settings["autoattack"]["version"] == "standard" and settings["autoattack"]["stages"] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert settings["apgd-ce"] == {"norm": "l2", "iterations": 50, "restarts": 2}
    assert settings_lines(settings) == [
        "pgd-linf: 20 steps, step size 0.002, no random start, 1 restart",
        "autoattack: version standard, L∞, stages:",
        "  apgd-ce: 100 iterations, 1 restart",
        "  apgd-t: 100 iterations, 1 restart, 9 target classes",
        "  fab-t: 100 iterations, 1 restart, 9 target classes",
        "  square: 5000 queries, 1 restart",
        "apgd-ce: L2, 50 iterations, 2 restarts",
    ]
    auto.stage_settings = None  # resumed from a finished state: no stage ran in this process
    assert settings_lines(attack_settings([auto])) == ["autoattack: version standard, L∞, stages apgd-ce, apgd-t, fab-t, square"]


def test_autoattack_s_stage_settings_are_read_from_pyautoattack() -> None:
    pyautoattack = pytest.importorskip("pyautoattack")
    from gat_tui.attacks.autoattack import _stage_settings

    runner = pyautoattack.AutoAttack(linear(TARGET_WEIGHT), norm="Linf", eps=8 / 255, version="standard", device="cpu")
    runner.apgd_targeted.n_target_classes = 1  # as gat-tui caps it for two classes
    assert _stage_settings(runner, ("apgd-ce", "apgd-t", "fab-t", "square")) == {
        "apgd-ce": {"n_iter": 100, "n_restarts": 1},
        "apgd-t": {"n_iter": 100, "n_restarts": 1, "n_target_classes": 1},
        "fab-t": {"n_iter": 100, "n_restarts": 1, "n_target_classes": 9},
        "square": {"n_queries": 5000, "n_restarts": 1},
    }
