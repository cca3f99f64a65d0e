"""The run folder: its layout, its default place, and the metrics log that subscribes to events.

    <runs>/<preset>-<timestamp>/
        config.toml                   the resolved configuration
        metrics.jsonl                 one JSON object per line (see MetricsLog)
        checkpoints/last.safetensors  the latest weights
        checkpoints/best.safetensors  the weights best on validation
        summary.json                  test accuracies, best epoch, wall time (at the end)
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from gat_tui.atomic import write_text_atomically
from gat_tui.events import EpochSummary, Event, RunFinished, StepMetrics

RUNS_DIR_ENV = "GAT_TUI_RUNS_DIR"


def default_runs_dir() -> Path:
    """$GAT_TUI_RUNS_DIR, else the platform's user data dir (e.g. ~/.local/share/gat-tui/runs)."""
    if os.environ.get(RUNS_DIR_ENV):
        return Path(os.environ[RUNS_DIR_ENV]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("gat-tui", appauthor=False)) / "runs"


def new_run_dir(runs_dir: Path, preset_name: str) -> Path:
    """A fresh `<preset>-<timestamp>` folder; a suffix keeps two runs started in one second apart."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = runs_dir / f"{preset_name}-{stamp}"
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = runs_dir / f"{preset_name}-{stamp}-{suffix}"
    candidate.mkdir(parents=True)
    return candidate


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.safetensors"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.safetensors"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def pid(self) -> Path:
        """Holds the training process's id while it runs (how `gat-tui runs` tells 'running')."""
        return self.root / "run.pid"


def _finite_or_none(value: Any) -> Any:
    # JSON has no NaN or Infinity: such values are written as null
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLog:
    """Appends step and epoch events to metrics.jsonl, one flushed line each.

    Every line has `event` ("step" or "epoch"), `epoch`, `step` and `time` (seconds since the
    run started); step lines add the training figures, epoch lines the validation figures.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: TextIO = path.open("a", encoding="utf-8")

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepMetrics):
            record: dict[str, Any] = {"event": "step", **asdict(event)}
        elif isinstance(event, EpochSummary):
            record = {"event": "epoch", **asdict(event)}
        else:
            return
        clean = {key: _finite_or_none(value) for key, value in record.items() if value is not None or key in _KEEP_NULL}
        self._handle.write(json.dumps(clean) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


# the epoch fields every line carries, null where a method has no such figure
_KEEP_NULL = {"val_acc_adv"}


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; a line cut short by a crash is skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_metrics(path: Path, step: int, epochs_done: int) -> None:
    """Drop lines written after a checkpoint (step > `step`, or epochs after `epochs_done`)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        late_step = record.get("event") == "step" and record.get("step", 0) > step
        late_epoch = record.get("event") == "epoch" and record.get("epoch", 0) > epochs_done
        if not (late_step or late_epoch):
            kept.append(line + "\n")
    write_text_atomically(path, "".join(kept))


def write_summary(path: Path, finished: RunFinished, extra: dict[str, Any]) -> None:
    record = {**asdict(finished), **extra}
    write_text_atomically(path, json.dumps({k: _finite_or_none(v) for k, v in record.items()}, indent=2) + "\n")
