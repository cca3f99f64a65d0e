"""Showing an attack evaluation: a Rich table and accuracy-versus-ε charts drawn with plotext."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.table import Table
from rich.text import Text

from gat_tui.atomic import write_text_atomically
from gat_tui.attacks import ATTACKS
from gat_tui.console.accuracy_chart import accuracy_chart
from gat_tui.console.eps_text import eps_text
from gat_tui.robustness.evaluate import AttackResult


def results_table(results: Sequence[AttackResult], title: str) -> Table:
    """A row per attack and ε (`title` empty: none). The source column only when the rows' sources differ (the
    title says a shared one)."""
    sources = {row.source for row in results}
    columns = ["attack", "ε", "accuracy", "mean ‖δ‖₂", "mean ‖δ‖∞"] + (["source"] if len(sources) > 1 else [])
    table = Table(title=title or None)
    for column in columns:
        table.add_column(column, justify="left" if column in ("attack", "source") else "right")
    for row in results:
        name = row.attack + (f" (matched to {row.matched_to})" if row.matched_to else "")
        if row.norm is not None:
            name += f" ({', '.join(filter(None, (row.version, _NORM_NAMES[row.norm])))})"
        eps = "-" if row.attack == "clean" else eps_text(row.eps, _norm_of(row))
        cells = [name, eps, f"{100 * row.accuracy:.2f}%", f"{row.pert_l2:.4f}", f"{row.pert_linf:.4f}"]
        table.add_row(*cells, *([row.source or "(direct)"] if len(sources) > 1 else []))
        # AutoAttack's cascade: the accuracy after each stage (the last one is the row's own)
        for stage in row.stages or ():
            table.add_row(f"  └ after {stage.attack}", "", f"{100 * stage.accuracy:.2f}%", "", "", *([""] if len(sources) > 1 else []), style="dim")
    return table


def settings_lines(settings: Mapping[str, Mapping[str, object]]) -> list[str]:
    """A line per attack with settings: PGD's steps, step size, random start and restarts;
    AutoAttack's version, then a line per stage (iterations, restarts, ...); APGD's iterations and restarts."""
    lines = []
    for attack, given in settings.items():
        if "steps" in given:
            step = given["step_size"]
            size = "2.5·ε/steps" if isinstance(step, str) else f"{step:g}"
            start = "random start" if given["random_start"] else "no random start"
            lines.append(f"{attack}: {given['steps']} steps, step size {size}, {start}, {_count(given['restarts'], 'restart')}")
        elif "version" in given:
            norm = _NORM_NAMES.get(str(given["norm"]), str(given["norm"]))
            per_stage = given.get("stage_settings")
            stages = given["stages"]
            assert isinstance(stages, list)
            if isinstance(per_stage, dict):  # a line per stage: as pyautoattack ran it
                lines.append(f"{attack}: version {given['version']}, {norm}, stages:")
                lines += [f"  {stage}: {_stage_text(per_stage.get(stage, {}))}" for stage in stages]
            else:  # no stage ran here (resumed from a finished state): the stages only
                lines.append(f"{attack}: version {given['version']}, {norm}, stages {', '.join(stages)}")
        elif "iterations" in given:
            norm = _NORM_NAMES.get(str(given["norm"]), str(given["norm"]))
            lines.append(f"{attack}: {norm}, {_count(given['iterations'], 'iteration')}, {_count(given['restarts'], 'restart')}")
    return lines


def _count(value: object, word: str) -> str:
    return f"{value} {word}" + ("" if value == 1 else "s")


_STAGE_WORDS = {
    "n_iter": ("iteration", "iterations"), "n_restarts": ("restart", "restarts"),
    "n_target_classes": ("target class", "target classes"), "n_queries": ("query", "queries"),
}


def _stage_text(given: Mapping[str, object]) -> str:
    words = [(value, _STAGE_WORDS.get(key, (key, key))) for key, value in given.items()]
    return ", ".join(f"{value} {one if value == 1 else many}" for value, (one, many) in words)


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
            ticks = sorted({x for points in lines.values() for x, _ in points})
            charts.append(accuracy_chart(lines, title, axis, width, height, color, x_ticks=[(x, eps_text(x, norm)) for x in ticks]))
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
