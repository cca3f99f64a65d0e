"""A sweep's evaluation curves: in the terminal (plotext) and as PNG files (matplotlib, optional)."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

from gat_tui.console.accuracy_chart import accuracy_chart
from gat_tui.sweep.report import SweepReport


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
