"""`gat-tui eval`'s charts: which rows become which line, in which chart, with which ticks and titles.

The rows below are an evaluation as `evaluate_attacks` returns it; the expected lines are written
out by hand: each swept attack (two or more ε) of a norm starts at ε = 0 with the clean accuracy,
its points in increasing ε, in percent.
"""

from __future__ import annotations

from typing import Any

import pytest

from gat_tui.console import eval_tables
from gat_tui.console.eval_tables import accuracy_charts
from gat_tui.robustness.evaluate import AttackResult

ONE, TWO = 1 / 255, 2 / 255
ROWS = [
    AttackResult("clean", 0.0, 0.75, 0.0, 0.0, None),
    AttackResult("fgsm", TWO, 0.5, 0.1, TWO, None),
    AttackResult("fgsm", ONE, 0.625, 0.05, ONE, None),  # out of order: the line sorts by ε
    AttackResult("fgm-l2", 0.5, 0.25, 0.5, 0.3, None),
    AttackResult("fgm-l2", 1.0, 0.125, 1.0, 0.6, None),
    AttackResult("fgm-l2", 0.75, 0.375, 0.75, 0.5, None, matched_to="fgsm"),  # --match-power rows: not a line
    AttackResult("pgd-l2", 0.5, 0.0625, 0.5, 0.4, None),  # one ε: no line
    AttackResult("autoattack", 0.25, 0.5, 0.25, 0.2, None, norm="l2", n=4, version="standard"),  # its own norm
    AttackResult("autoattack", 1.0, 0.0, 1.0, 0.9, None, norm="l2", n=4, version="standard"),
    AttackResult("gat", None, 0.4375, 0.3, 0.2, None),  # no ε, no norm
    AttackResult("gat", 0.5, 0.4375, 0.3, 0.2, None),
    AttackResult("cw", 0.5, 0.5, 0.5, 0.4, None),  # an attack this version does not know, without a norm: no line
    AttackResult("cw", 1.0, 0.25, 1.0, 0.8, None),
]


def drawn(monkeypatch: pytest.MonkeyPatch, rows: list[AttackResult], **options: Any) -> list[tuple[Any, ...]]:
    """The arguments of each accuracy_chart call accuracy_charts makes."""
    calls: list[tuple[Any, ...]] = []

    def record(lines: Any, title: str, x_label: str, width: int, height: int, color: bool, x_ticks: Any) -> str:
        calls.append((lines, title, x_label, width, height, color, x_ticks))
        return title

    monkeypatch.setattr(eval_tables, "accuracy_chart", record)
    assert accuracy_charts(rows, **options) == [call[1] for call in calls]
    return calls


def test_a_chart_per_norm_with_a_line_per_swept_attack(monkeypatch: pytest.MonkeyPatch) -> None:
    l2, linf = drawn(monkeypatch, ROWS, width=50, height=14, color=False)
    assert l2 == (
        {"fgm-l2": [(0.0, 75.0), (0.5, 25.0), (1.0, 12.5)], "autoattack": [(0.0, 75.0), (0.25, 50.0), (1.0, 0.0)]},
        "accuracy (%) under L2 attacks", "ε (L2 norm)", 50, 14, False, [(0.0, "0"), (0.25, "0.25"), (0.5, "0.5"), (1.0, "1")],
    )
    assert linf == (
        {"fgsm": [(0.0, 75.0), (ONE, 62.5), (TWO, 50.0)]},
        "accuracy (%) under L-inf attacks", "ε (L-inf bound)", 50, 14, False, [(0.0, "0"), (ONE, "1/255"), (TWO, "2/255")],
    )


def test_without_a_clean_row_the_lines_start_at_their_first_eps(monkeypatch: pytest.MonkeyPatch) -> None:
    (linf,) = drawn(monkeypatch, [row for row in ROWS if row.attack in ("fgsm", "gat")])
    assert linf[0] == {"fgsm": [(ONE, 62.5), (TWO, 50.0)]} and linf[3:6] == (72, 16, True)  # the defaults
    assert linf[6] == [(ONE, "1/255"), (TWO, "2/255")]


def test_no_chart_without_an_attack_at_two_eps(monkeypatch: pytest.MonkeyPatch) -> None:
    assert drawn(monkeypatch, [row for row in ROWS if row.attack in ("clean", "pgd-l2", "gat", "cw") or row.matched_to]) == []


def test_the_charts_as_drawn() -> None:
    charts = accuracy_charts(ROWS)
    assert len(charts) == 2
    for chart, title, ticks in ((charts[0], "accuracy (%) under L2 attacks", ["0", "0.25", "0.5", "1"]),
                                (charts[1], "accuracy (%) under L-inf attacks", ["0", "1/255", "2/255"])):
        lines = chart.plain.split("\n")
        assert lines[0].strip() == title and [len(line) for line in lines[:16]] == [72] * 16 and lines[16] == ""
        assert lines[14].split() == ticks and chart.spans  # coloured by default
    assert charts[0].plain.split("\n")[15].strip() == "ε (L2 norm)"
    assert charts[0].plain.split("\n")[17:] == ["o fgm-l2 (hidden under x at ε 0)", "x autoattack"]
