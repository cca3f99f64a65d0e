"""The run folder: its layout, its default place, its lifecycle and the metrics log.

    <runs>/<preset>-<timestamp>/
        config.toml                   the resolved configuration
        metrics.jsonl                 one JSON object per line (see MetricsLog)
        checkpoints/last.safetensors  the latest weights
        checkpoints/best.safetensors  the weights best on validation
        summary.json                  test accuracies, best epoch, wall time (at the end)
        gat-tui-run.json              marks the folder as a gat-tui run, with the run's id (see runs/identity.py)
        tensorboard/                  TensorBoard event files (see runs/tensorboard.py), unless logging.tensorboard = false
        evals/<time>-<ckpt>-<attacks>.json  each direct `gat-tui eval` of its checkpoints (the --json record)
        evals/.autoattack-<hash>.json  an interrupted AutoAttack evaluation's state (see robustness/resume.py)
        panels/epoch_NNN.safetensors  each epoch's validation panel (see runs/panels.py)
        .lock                         held by the one process training it (see runs/lock.py)

`RunFolder` is the only writer of these files besides the checkpoints: it locks the folder for
a training's whole life, decides whether the folder may take a new run, and writes the
config, the metrics (metrics.jsonl and the TensorBoard events), the panels and the summary.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from gat_tui.atomic import write_text_atomically
from gat_tui.events import EpochSummary, Event, RunFinished, StepMetrics
from gat_tui.runs.identity import MARKER_NAME, RunFolderError, RunMarker, check_checkpoint_belongs, read_marker, write_marker
from gat_tui.runs.lock import LOCK_NAME, RunLock, lock_holder
from gat_tui.runs.panels import PanelStore, remove_panels_after

if TYPE_CHECKING:
    from gat_tui.config import RunConfig
    from gat_tui.runs.tensorboard import TensorBoardLog

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
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def evals(self) -> Path:
        """`gat-tui eval`'s records of this run's checkpoints, one JSON each (what `export --robustbench` reads)."""
        return self.root / "evals"

    @property
    def panels(self) -> Path:
        return self.root / "panels"

    @property
    def lock(self) -> Path:
        """Locked by the process training this run while it runs (how `gat-tui runs` tells 'running')."""
        return self.root / LOCK_NAME


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


def read_json_lines(path: Path) -> list[Any]:
    """The records of a JSON-lines file; a line cut short by a crash is skipped.

    A file that is not UTF-8 raises UnicodeDecodeError, for the caller to name.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
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
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        if not isinstance(record, dict) or not all(isinstance(record.get(key, 0), int) for key in ("step", "epoch")):
            continue  # not a line this log writes
        late_step = record.get("event") == "step" and record.get("step", 0) > step
        late_epoch = record.get("event") == "epoch" and record.get("epoch", 0) > epochs_done
        if not (late_step or late_epoch):
            kept.append(line + "\n")
    write_text_atomically(path, "".join(kept))


def write_summary(path: Path, finished: RunFinished, extra: dict[str, Any]) -> None:
    record = {**asdict(finished), **extra}
    write_text_atomically(path, json.dumps({k: _finite_or_none(v) for k, v in record.items()}, indent=2) + "\n")


def check_new_run_dir(root: Path) -> None:
    """Refuse a folder that a new run must not write into; a missing or empty one is fine.

    Only a folder that its marker calls a gat-tui run may hold files already, and then only if it
    has nothing to resume (it failed or was killed before its first checkpoint): its old
    metrics, panels and summary are discarded when the new run starts.
    """
    if root.exists() and not root.is_dir():
        raise RunFolderError(f"{root}: is a file, not a folder; choose a folder for the run")
    # the lock file is this run's own (or a dead run's): it does not make the folder taken
    if not root.is_dir() or not any(entry.name != LOCK_NAME for entry in root.iterdir()):
        return
    paths = RunPaths(root)
    if read_marker(root) is None:
        if paths.last_checkpoint.exists():  # a run of a gat-tui from before the marker
            raise RunFolderError(
                f"{root} already holds a run (checkpoints/last.safetensors); continue it with `gat-tui resume {root}`, "
                "or choose another folder"
            )
        names = sorted(entry.name for entry in root.iterdir() if entry.name != LOCK_NAME)
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise RunFolderError(
            f"{root}: is not empty ({shown}) and holds no run: it is not a gat-tui run folder (no {MARKER_NAME}); "
            "nothing was written; choose an empty or new folder for the run"
        )
    if paths.last_checkpoint.exists():
        raise RunFolderError(
            f"{root} already holds a run (checkpoints/last.safetensors); continue it with `gat-tui resume {root}`, "
            "or choose another folder"
        )


class RunFolder:
    """One training's hold on its run folder: `claim` before any expensive work, `start`, then `close`."""

    def __init__(self, root: Path, resuming: bool) -> None:
        self.paths = RunPaths(root)
        self.resuming = resuming
        # the id every checkpoint of this run records: the marker's, or the resumed checkpoint's
        self.run_id: str | None = None
        self._lock = RunLock(root)
        self._created = not root.exists()
        self._metrics: MetricsLog | None = None
        self._tensorboard: TensorBoardLog | None = None

    def claim(self, resume_from: Path | None = None) -> None:
        """Lock the folder (RunLocked if another writer has it) and check it may take this run.

        A resumed run also checks that `resume_from` is this folder's run's checkpoint (see runs/identity.py).
        """
        if self.paths.root.exists() and not self.paths.root.is_dir():
            raise RunFolderError(f"{self.paths.root}: is a file, not a folder; choose a folder for the run")
        self._lock.acquire()
        try:
            if not self.resuming:
                check_new_run_dir(self.paths.root)
            elif resume_from is not None:
                self.run_id = check_checkpoint_belongs(self.paths.root, resume_from)
        except BaseException:
            self.abandon()
            raise

    def start(self, config_toml: str, step: int, epochs_done: int) -> MetricsLog:
        """Mark the folder as this run's and write the config; keep the metrics up to the checkpoint
        when resuming, else start them afresh."""
        marker = read_marker(self.paths.root)
        if self.resuming and marker is not None:
            self.run_id = marker.run_id
        else:
            # a new run, or one resumed in a folder from before the marker: it keeps its checkpoint's id
            marker = RunMarker.new(self.run_id)
            write_marker(self.paths.root, marker)
            self.run_id = marker.run_id
        write_text_atomically(self.paths.config, config_toml)
        if self.resuming:
            # lines written after the checkpoint would otherwise appear twice
            truncate_metrics(self.paths.metrics, step, epochs_done)
            remove_panels_after(self.paths.root, epochs_done)
        else:
            # a run that failed or was killed before its first checkpoint starts again from nothing
            self.paths.metrics.unlink(missing_ok=True)
            self.paths.summary.unlink(missing_ok=True)
            for stale in (self.paths.best_checkpoint, *self.paths.checkpoints.glob("epoch-*.safetensors")):
                stale.unlink(missing_ok=True)
            remove_panels_after(self.paths.root, 0)
        self._metrics = MetricsLog(self.paths.metrics)
        return self._metrics

    def panel_store(self) -> PanelStore:
        """After `start`: the subscriber that keeps each epoch's validation panel in panels/."""
        return PanelStore(self.paths.root)

    def start_tensorboard(self, config: RunConfig, step: int) -> TensorBoardLog | None:
        """After `start`: the TensorBoard subscriber, None if `logging.tensorboard` is off.

        A resumed run purges what was written after its checkpoint (steps > `step`); one with
        no event files yet (made before they existed) first gets the metrics kept so far.
        A new run discards a killed earlier attempt's files, as `start` does its metrics.
        """
        from gat_tui.runs.tensorboard import TensorBoardLog, event_files, walltime_base

        folder = self.paths.tensorboard
        history = self.resuming and not event_files(folder)
        if not self.resuming:
            for stale in event_files(folder):
                stale.unlink()
        if not config.logging.tensorboard:
            return None
        self._tensorboard = TensorBoardLog(folder, config, purge_step=step + 1 if self.resuming else None)
        if history:
            records = read_json_lines(self.paths.metrics)
            self._tensorboard.write_history(records, walltime_base(self.paths.metrics, records))
        return self._tensorboard

    def abandon(self) -> None:
        """Give the folder up before `start`: unlock it and leave it as it was (removed if this run made it)."""
        root = self.paths.root
        untouched = root.is_dir() and not any(entry.name != LOCK_NAME for entry in root.iterdir())
        if untouched:
            self.paths.lock.unlink(missing_ok=True)  # still held: no other writer can be waiting on it
        self._lock.release()
        if untouched and self._created:
            root.rmdir()

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        self._lock.release()


def remove_if_empty(run_dir: Path) -> bool:
    """Remove a run folder that a failed start left empty (an unheld, empty lock file counts as empty)."""
    try:
        entries = list(run_dir.iterdir())
    except OSError:
        return False
    if any(entry.name != LOCK_NAME or not entry.is_file() or entry.stat().st_size for entry in entries):
        return False
    if lock_holder(run_dir) is not None:
        return False
    try:
        for entry in entries:
            entry.unlink()
        run_dir.rmdir()
    except OSError:
        return False
    return True
