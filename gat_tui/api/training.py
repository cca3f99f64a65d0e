"""`train`: a run of a preset, as `gat-tui run --headless` trains it, from Python."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gat_tui.events import Event, RunFinished
from gat_tui.presets import load_named_preset
from gat_tui.runs.folder import RunPaths, check_new_run_dir, default_runs_dir, new_run_dir, remove_if_empty
from gat_tui.toml_schema import toml_value
from gat_tui.training.control import TrainingControl
from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer

__all__ = ["RunFailed", "TrainedRun", "train"]


class RunFailed(RuntimeError):
    """The run ended as failed; the message says why, and the run folder keeps its last checkpoint."""

    def __init__(self, run_dir: Path, finished: RunFinished) -> None:
        super().__init__(f"{run_dir}: {finished.message or 'the run failed'}")
        self.run_dir = run_dir
        self.finished = finished


@dataclass(frozen=True)
class TrainedRun:
    """How a run ended, and where its files are.

    Attributes:
        run_dir: the run folder (config.toml, metrics.jsonl, checkpoints/, summary.json).
        finished: the engine's last event: status ('finished' or 'stopped'), epochs, best epoch
            and validation figure, and for a finished run the test accuracies of its best
            checkpoint (fractions in [0, 1]).
    """

    run_dir: Path
    finished: RunFinished

    @property
    def status(self) -> str:
        return self.finished.status

    @property
    def best_checkpoint(self) -> Path:
        return RunPaths(self.run_dir).best_checkpoint

    @property
    def last_checkpoint(self) -> Path:
        return RunPaths(self.run_dir).last_checkpoint


def train(
    preset: str | Path,
    overrides: Mapping[str, Any] | None = None,
    *,
    on_event: Callable[[Event], None] | None = None,
    out: str | Path | None = None,
    data_dir: str | Path | None = None,
    stop: threading.Event | None = None,
) -> TrainedRun:
    """Train a preset, as `gat-tui run PRESET --headless` does, and return how the run ended.

    Args:
        preset: a shipped preset's name (`gat-tui presets` lists them) or a preset file.
        overrides: preset keys, dotted, with their values, e.g. `{"gat.c_g": 0.01, "train.epochs": 5}`;
            validated as `--set` is (a `gat_tui.config.ConfigError` names the key and what it takes).
        on_event: called in this thread with each of the engine's events (`gat_tui.events`):
            run started, step metrics every `train.log_every` steps, epoch summaries, checkpoints,
            log messages and the run's end.
        out: the run folder (new or empty); default `<runs dir>/<preset>-<timestamp>`, the runs dir
            being `$GAT_TUI_RUNS_DIR` or the user data dir.
        data_dir: where data sets are stored (default `$GAT_TUI_DATA_DIR` or the user cache dir).
        stop: set it (from another thread) to stop after the current step with a checkpoint;
            the run then ends 'stopped' and `gat-tui resume RUN_DIR` continues it.

    Raises:
        RunFailed: the run failed (bad data, a diverged loss, ...); its message says why.
    """
    texts = [f"{key}={toml_value(value)}" for key, value in (overrides or {}).items()]
    _, config = load_named_preset(str(preset), texts)
    if out is not None:
        run_dir = Path(out).expanduser()
        check_new_run_dir(run_dir)
    else:
        run_dir = new_run_dir(default_runs_dir(), config.name)
    request = TrainingRequest(config, run_dir, Path(data_dir).expanduser() if data_dir is not None else None)
    trainer = Trainer(request, subscribers=[on_event] if on_event is not None else [], control=TrainingControl(stop=stop or threading.Event()))
    try:
        finished = trainer.run()
    finally:
        if out is None:  # the folder made above: a run that failed before writing anything leaves none behind
            remove_if_empty(run_dir)
    if finished.status == "failed":
        raise RunFailed(run_dir, finished)
    return TrainedRun(run_dir, finished)
