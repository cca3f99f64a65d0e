"""A sweep's report for people: Rich tables, Markdown, terminal charts (plotext) and PNG files (matplotlib, optional)."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text

from gat_tui.console.accuracy_chart import accuracy_chart
from gat_tui.sweep.report import Cell, SweepReport, TableRow
from gat_tui.sweep.tuning import PointResult, Tuning

MAIN_COLUMNS = (
    "run", "clean", "own perturbation", "FGM-L2", "paper (clean)", "(ours − paper) / paper std", "tuned setting", "checkpoint chosen by",
)
TUNING_COLUMNS = ("grid point", "best val acc (%), mean ± std (n)", "failed", "not finished", "")


def _main_cells(row: TableRow) -> tuple[str, ...]:
    paper = row.paper.text() if row.paper is not None else "n/a"
    z = "-" if row.paper_z is None else f"{row.paper_z:+.2f}"
    tuned = row.tuned if row.tuned is not None else "-"
    return (row.label, row.test_acc_clean.text(), row.test_acc_adv.text(), row.test_acc_fgm_l2.text(), paper, z, tuned, row.selected_by)


def ordering_lines(report: SweepReport) -> list[str]:
    """The method ordering of ours and of the paper, and whether the paper's first is still first."""
    if len(report.order_paper) < 2:
        return []
    lines = [
        "ordering by mean clean test accuracy (runs with both figures):",
        "  ours:  " + " > ".join(report.order_ours),
        "  paper: " + " > ".join(report.order_paper),
    ]
    first = report.order_paper[0]
    same = report.order_ours[0] == first
    lines.append(f"  the paper's first ({first}) is {'also our first' if same else f'not our first (ours: {report.order_ours[0]})'}")
    return lines


def _point_cells(point: PointResult, tuning: Tuning) -> tuple[str, ...]:
    figure = Cell(point.mean, point.std, point.finished).text()
    return (point.point, figure, str(point.failed), str(point.pending), "chosen" if point.point == tuning.chosen else "")


def tuning_tables(report: SweepReport) -> list[Table]:
    tables = []
    for tuning in report.tuning:
        chosen = tuning.chosen or f"none yet ({tuning.waiting})"
        table = Table(
            title=f"tuning {tuning.label}: {tuning.tune_seeds} seeds per point, compared on {tuning.metric}; chosen: {chosen}",
            caption=f"rule: {tuning.rule}; tie: {tuning.tie_break}",
        )
        for column in TUNING_COLUMNS:
            table.add_column(column)
        for point in tuning.points:
            table.add_row(*_point_cells(point, tuning))
        tables.append(table)
    return tables


def report_tables(report: SweepReport) -> list[Table]:
    """Table 2 (test accuracy, mean ± std over seeds, beside the paper's), the tuning grids and, if any, the evaluations."""
    table = Table(title=f"{report.name}: test accuracy (%), mean ± std over seeds (n)", caption="\n".join(ordering_lines(report)) or None)
    for column in MAIN_COLUMNS:
        table.add_column(column)
    for row in report.table:
        table.add_row(*_main_cells(row))
    tables = [table, *tuning_tables(report)]
    if report.curves:
        curves = Table(title="evaluations: accuracy (%) under attack, mean ± std over seeds")
        for column in ("evaluation", "run", "attack", "ε", "accuracy", "mean ‖δ‖₂"):
            curves.add_column(column)
        for point in report.curves:
            eps = "-" if point.eps is None else f"{point.eps:g}"
            curves.add_row(point.evaluation, point.label, point.attack_text, eps, point.accuracy.text(), point.pert_l2.text(percent=False))
        tables.append(curves)
    return tables


def markdown(report: SweepReport) -> str:
    lines = [
        f"# {report.name}",
        "",
        "Test accuracy (%), mean ± standard deviation over the seeds that finished (n).",
        "",
        "| " + " | ".join(MAIN_COLUMNS) + " |",
        "|" + " --- |" * len(MAIN_COLUMNS),
    ]
    for row in report.table:
        lines.append("| " + " | ".join(_main_cells(row)) + " |")
    ordering = ordering_lines(report)
    if ordering:
        lines += ["", ordering[0], ""] + [f"- {line.strip()}" for line in ordering[1:]]
    for tuning in report.tuning:
        lines += [
            "", f"Tuning {tuning.label} ({tuning.tune_seeds} seeds per point, compared on {tuning.metric}): "
            f"chosen **{tuning.chosen or 'none yet: ' + tuning.waiting}**.",
            f"Rule: {tuning.rule}. Tie: {tuning.tie_break}.", "",
            "| " + " | ".join(TUNING_COLUMNS[:-1]) + " | chosen |", "|" + " --- |" * len(TUNING_COLUMNS),
        ]
        lines += ["| " + " | ".join(_point_cells(point, tuning)) + " |" for point in tuning.points]
    if report.curves:
        lines += ["", "Evaluations: accuracy (%) under attack, mean ± std over seeds.", "",
                  "| evaluation | run | attack | ε | accuracy | mean ‖δ‖₂ |", "| --- | --- | --- | --- | --- | --- |"]
        for point in report.curves:
            eps = "-" if point.eps is None else f"{point.eps:g}"
            lines.append(f"| {point.evaluation} | {point.label} | {point.attack_text} | {eps} | {point.accuracy.text()} | {point.pert_l2.text(percent=False)} |")
    return "\n".join(lines) + "\n"


def _curves(report: SweepReport) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """evaluation -> 'label attack' -> sorted (eps, mean accuracy %), for swept attacks only."""
    found: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for point in report.curves:
        if point.eps is None or point.matched_to is not None or point.accuracy.mean is None or point.attack == "clean":
            continue
        found.setdefault(point.evaluation, {}).setdefault(f"{point.label} {point.attack}", []).append(
            (point.eps, 100 * point.accuracy.mean)
        )
    return {name: {k: sorted(v) for k, v in lines.items() if len(v) >= 2} for name, lines in found.items()}


def terminal_charts(report: SweepReport, width: int = 78, height: int = 18, color: bool = True) -> list[Text]:
    return [
        accuracy_chart(lines, f"{evaluation}: mean accuracy (%) against ε", None, width, height, color)
        for evaluation, lines in _curves(report).items()
        if lines
    ]


def write_pngs(report: SweepReport, folder: Path) -> list[Path]:
    """One PNG per evaluation, accuracy against ε with a line per run, like the paper's figures."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        raise RuntimeError("PNG figures need matplotlib: pip install -e \".[plot]\"") from None
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for evaluation, lines in _curves(report).items():
        figure, axes = pyplot.subplots(figsize=(5, 4))
        for label, points in lines.items():
            axes.plot([x for x, _ in points], [y for _, y in points], marker="o", label=label)
        axes.set_xlabel("ε")
        axes.set_ylabel("accuracy (%)")
        axes.set_ylim(0, 100)
        axes.set_title(f"{report.name}: {evaluation}")
        axes.legend(fontsize="small")
        figure.tight_layout()
        path = folder / f"{evaluation}.png"
        figure.savefig(path, dpi=150)
        pyplot.close(figure)
        written.append(path)
    return written
