"""A sweep's evaluation curves as TensorBoard scalars: accuracy against ε, one series per run.

TensorBoard's steps are whole numbers, so ε is scaled: an evaluation whose every ε is a whole
number of 255ths (the L∞ sizes of the papers) uses ε × 255 as the step, any other ε × 1000;
the tag says which (`accuracy_vs_eps_x255/<run>`). Each evaluation is a folder of its own under
`<out>/evaluations/<name>/`, so TensorBoard lists it beside the runs; the clean accuracy is the
step 0 point, and a second tag holds the std over seeds (`accuracy_std_vs_eps_x255/<run>`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gat_tui.runs.tensorboard import EventWriter, ExportError, event_files
from gat_tui.sweep.report import CurvePoint, build_report

# how far from a whole number an ε × scale may be and still count as one (float noise of k/255)
_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ExportedCurves:
    evaluation: str
    out_dir: Path
    scale: int  # the step is ε × scale
    series: int


def eps_scale(eps_values: list[float]) -> int:
    """255 when every ε is a whole number of 255ths, else 1000."""
    whole = all(abs(eps * 255 - round(eps * 255)) < _TOLERANCE for eps in eps_values)
    return 255 if whole else 1000


def _swept(point: CurvePoint) -> bool:
    return point.eps is not None and point.matched_to is None and point.accuracy.mean is not None


def export_sweep_curves(sweep_dir: Path, out: Path) -> list[ExportedCurves]:
    """Event files of each evaluation's mean accuracy (%) against ε, a series per run and attack."""
    report = build_report(sweep_dir)
    exported = []
    for evaluation in dict.fromkeys(point.evaluation for point in report.curves):
        points = [point for point in report.curves if point.evaluation == evaluation and _swept(point)]
        if not points:
            continue
        scale = eps_scale([point.eps or 0.0 for point in points])
        folder = out / "evaluations" / evaluation
        if event_files(folder):
            raise ExportError(f"{folder}: already holds TensorBoard event files; remove them or choose another --tensorboard folder")
        attacks = {point.attack_text for point in points if point.attack != "clean"}
        events = EventWriter(folder)
        series: set[str] = set()
        try:
            for point in sorted(points, key=lambda point: (point.label, point.eps or 0.0)):
                # a clean point belongs to every attack of its run (ε = 0)
                for attack in (attacks if point.attack == "clean" else {point.attack_text}):
                    name = point.label if len(attacks) <= 1 else f"{point.label} {attack}"
                    step = round((point.eps or 0.0) * scale)
                    events.scalar(f"accuracy_vs_eps_x{scale}/{name}", 100 * (point.accuracy.mean or 0.0), step)
                    events.scalar(f"accuracy_std_vs_eps_x{scale}/{name}", 100 * (point.accuracy.std or 0.0), step)
                    series.add(name)
        finally:
            events.close()
        exported.append(ExportedCurves(evaluation, folder, scale, len(series)))
    return exported
