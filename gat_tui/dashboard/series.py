"""The curves of one run, fed live by engine events or read back from metrics.jsonl.

Pure data, no widgets: charts ask for `points(name, x_axis, smoothing)`, where the x-axis is
the step, the epoch or the wall-clock time (seconds of training, as the engine reports it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from gat_tui.events import EPOCH_FIGURES, STEP_FIGURES, EpochSummary, StepMetrics
from gat_tui.runs.folder import read_json_lines

STEP_SERIES = STEP_FIGURES
EPOCH_SERIES = EPOCH_FIGURES
X_AXES = ("step", "epoch", "time")


def smooth(values: list[float], factor: float) -> list[float]:
    """TensorBoard's debiased exponential moving average; factor 0 keeps the values, 0.9 smooths strongly.

    The average starts from zero and is divided by 1 − factor^n (n the values seen), so the curve
    follows the first values without a lag from a starting value; a non-finite value is shown as
    itself and left out of the average (as TensorBoard does).
    """
    if factor <= 0 or not values:
        return list(values)
    smoothed: list[float] = []
    average, seen = 0.0, 0
    for value in values:
        if not math.isfinite(value):
            smoothed.append(value)
            continue
        average = factor * average + (1 - factor) * value
        seen += 1
        smoothed.append(average / (1 - factor**seen))
    return smoothed


@dataclass
class RunSeries:
    """(epoch, step, time, value) per figure."""

    points_by_name: dict[str, list[tuple[int, int, float, float]]] = field(default_factory=dict)

    def _add(self, name: str, epoch: int, step: int, time: float, value: float | None) -> None:
        if value is not None:
            self.points_by_name.setdefault(name, []).append((epoch, step, float(time), float(value)))

    def add_step(self, event: StepMetrics) -> None:
        for name in STEP_SERIES:
            self._add(name, event.epoch, event.step, event.time, getattr(event, name))

    def add_epoch(self, event: EpochSummary) -> None:
        for name in EPOCH_SERIES:
            self._add(name, event.epoch, event.step, event.time, getattr(event, name))

    def add_record(self, record: dict) -> None:
        """One metrics.jsonl line."""
        names = STEP_SERIES if record.get("event") == "step" else EPOCH_SERIES if record.get("event") == "epoch" else ()
        time = record.get("time", 0.0)
        time = float(time) if isinstance(time, (int, float)) else 0.0
        for name in names:
            value = record.get(name)
            if isinstance(value, (int, float)):
                self._add(name, int(record.get("epoch", 0)), int(record.get("step", 0)), time, value)

    @classmethod
    def from_metrics_file(cls, path: Path, up_to_step: int | None = None) -> RunSeries:
        """The curves recorded in a metrics.jsonl; `up_to_step` leaves out later lines (a resumed run's own)."""
        series = cls()
        try:
            records = read_json_lines(path)
        except UnicodeDecodeError:
            records = []  # the runs screen lists such a run as unreadable
        for record in records:
            if isinstance(record, dict) and isinstance(record.get("epoch", 0), int) and isinstance(record.get("step", 0), int):
                if up_to_step is None or record.get("step", 0) <= up_to_step:
                    series.add_record(record)
        return series

    def extend(self, other: RunSeries) -> None:
        """Append `other`'s points (a resumed run's history goes first, then its new events)."""
        for name, points in other.points_by_name.items():
            self.points_by_name.setdefault(name, []).extend(points)

    def prepend(self, earlier: RunSeries) -> None:
        """Put `earlier`'s points before this series' own."""
        for name, points in earlier.points_by_name.items():
            self.points_by_name[name] = list(points) + self.points_by_name.get(name, [])

    def has(self, name: str) -> bool:
        return bool(self.points_by_name.get(name))

    def points(self, name: str, x_axis: str = "step", smoothing: float = 0.0) -> tuple[list[float], list[float]]:
        """x and y of a figure; on the epoch axis step figures are averaged per epoch."""
        triples = self.points_by_name.get(name, [])
        if x_axis == "epoch" and name in STEP_SERIES:
            by_epoch: dict[int, list[float]] = {}
            for epoch, _, _, value in triples:
                by_epoch.setdefault(epoch, []).append(value)
            xs = [float(epoch) for epoch in sorted(by_epoch)]
            ys = [sum(by_epoch[int(x)]) / len(by_epoch[int(x)]) for x in xs]
        else:
            column = {"epoch": 0, "step": 1, "time": 2}.get(x_axis, 1)
            xs = [float(point[column]) for point in triples]
            ys = [point[3] for point in triples]
        return xs, smooth(ys, smoothing) if name in STEP_SERIES else ys
