"""A sweep's report for people: Rich tables, Markdown, terminal charts (plotext) and PNG files (matplotlib, optional)."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text

from gat_tui.console.accuracy_chart import accuracy_chart
from gat_tui.sweep.report import SweepReport


def report_tables(report: SweepReport) -> list[Table]:
    """Table 2 (test accuracy, mean ± std over seeds, beside the paper's) and, if any, the evaluations."""
    table = Table(title=f"{report.name}: test accuracy (%), mean ± std over seeds (n)")
    for column in ("run", "clean", "own perturbation", "FGM-L2", "paper (clean)"):
        table.add_column(column)
    for row in report.table:
        paper = row.paper.text() if row.paper is not None else "n/a"
        table.add_row(row.label, row.test_acc_clean.text(), row.test_acc_adv.text(), row.test_acc_fgm_l2.text(), paper)
    tables = [table]
    if report.curves:
        curves = Table(title="evaluations: accuracy (%) under attack, mean ± std over seeds")
        for column in ("evaluation", "run", "attack", "ε", "accuracy", "mean ‖δ‖₂"):
            curves.add_column(column)
        for point in report.curves:
            attack = point.attack + (f" (matched to {point.matched_to})" if point.matched_to else "")
            eps = "-" if point.eps is None else f"{point.eps:g}"
            curves.add_row(point.evaluation, point.label, attack, eps, point.accuracy.text(), point.pert_l2.text(percent=False))
        tables.append(curves)
    return tables


def markdown(report: SweepReport) -> str:
    lines = [
        f"# {report.name}",
        "",
        "Test accuracy (%), mean ± standard deviation over the seeds that finished (n).",
        "",
        "| run | clean | own perturbation | FGM-L2 | paper (clean) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in report.table:
        paper = row.paper.text() if row.paper is not None else "n/a"
        lines.append(f"| {row.label} | {row.test_acc_clean.text()} | {row.test_acc_adv.text()} | {row.test_acc_fgm_l2.text()} | {paper} |")
    if report.curves:
        lines += ["", "Evaluations: accuracy (%) under attack, mean ± std over seeds.", "",
                  "| evaluation | run | attack | ε | accuracy | mean ‖δ‖₂ |", "| --- | --- | --- | --- | --- | --- |"]
        for point in report.curves:
            attack = point.attack + (f" (matched to {point.matched_to})" if point.matched_to else "")
            eps = "-" if point.eps is None else f"{point.eps:g}"
            lines.append(f"| {point.evaluation} | {point.label} | {attack} | {eps} | {point.accuracy.text()} | {point.pert_l2.text(percent=False)} |")
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
