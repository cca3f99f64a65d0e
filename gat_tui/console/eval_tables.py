"""Showing an attack evaluation: a Rich table and accuracy-versus-ε charts drawn with plotext."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table
from rich.text import Text

from gat_tui.atomic import write_text_atomically
from gat_tui.attacks import ATTACKS
from gat_tui.console.accuracy_chart import accuracy_chart
from gat_tui.robustness.evaluate import AttackResult


def results_table(results: Sequence[AttackResult], title: str) -> Table:
    table = Table(title=title)
    for column in ("attack", "ε", "accuracy", "mean ‖δ‖₂", "mean ‖δ‖∞", "source"):
        table.add_column(column, justify="left" if column in ("attack", "source") else "right")
    for row in results:
        name = row.attack + (f" (matched to {row.matched_to})" if row.matched_to else "")
        if row.norm is not None:
            name += f" ({', '.join(filter(None, (row.version, _NORM_NAMES[row.norm])))})"
        eps = "-" if row.eps is None or row.attack == "clean" else f"{row.eps:.4g}"
        table.add_row(
            name, eps, f"{100 * row.accuracy:.2f}%", f"{row.pert_l2:.4f}", f"{row.pert_linf:.4f}", row.source or "(direct)"
        )
        # AutoAttack's cascade: the accuracy after each stage (the last one is the row's own)
        for stage in row.stages or ():
            table.add_row(f"  └ after {stage.attack}", "", f"{100 * stage.accuracy:.2f}%", "", "", "", style="dim")
    return table


_NORM_NAMES = {"linf": "L∞", "l2": "L2"}


def _norm_of(row: AttackResult) -> str | None:
    if row.norm is not None:
        return row.norm
    attack = ATTACKS.get(row.attack)
    return attack.norm if attack is not None else None


def accuracy_charts(results: Sequence[AttackResult], width: int = 72, height: int = 16, color: bool = True) -> list[Text]:
    """One chart per norm (L2, L-inf): accuracy against ε, a line per attack with 2+ points."""
    charts = []
    clean = next((r.accuracy for r in results if r.attack == "clean"), None)
    for norm, axis in (("l2", "ε (L2 norm)"), ("linf", "ε (L-inf bound)")):
        series: dict[str, list[tuple[float, float]]] = {}
        for row in results:
            if _norm_of(row) == norm and row.matched_to is None and row.eps is not None and row.attack != "clean":
                series.setdefault(row.attack, []).append((row.eps, 100 * row.accuracy))
        # each line starts at ε = 0 with the clean accuracy
        start = [(0.0, 100 * clean)] if clean is not None else []
        lines = {name: start + sorted(points) for name, points in series.items() if len(points) >= 2}
        if lines:
            title = f"accuracy (%) under {norm.upper().replace('LINF', 'L-inf')} attacks"
            charts.append(accuracy_chart(lines, title, axis, width, height, color))
    return charts


def write_json(
    path: Path, checkpoint: Path, split: str, count: int, results: Sequence[AttackResult], extra: dict[str, object]
) -> None:
    record = {
        "checkpoint": str(checkpoint),
        "split": split,
        "n": count,
        "results": [row.to_json() for row in results],
        **extra,
    }
    write_text_atomically(path, json.dumps(record, indent=2) + "\n")
