"""TensorBoard event files of a run: its metrics, its preview panel and its hyperparameters.

    RUN_DIR/tensorboard/events.out.tfevents.*   written by tensorboardX, read by `tensorboard --logdir`

`TensorBoardLog` is a subscriber like the metrics log: each step and epoch line of
metrics.jsonl becomes scalars at its classifier step under the tags of `SCALAR_TAGS` (one
mapping from the event field names, used by the live log and by `export_tensorboard` alike);
each epoch's preview panel becomes three images (clean, perturbation rescaled around mid-grey,
adversarial), so TensorBoard's step slider shows the perturbations evolve; a finished run adds
the resolved configuration as hyperparameters with its test figures as their metrics.

A resumed run writes a purge marker at the step after its checkpoint: TensorBoard drops what a
killed run wrote after that checkpoint, as `RunFolder.start` drops those metrics lines.

tensorboardX is imported only when a log is opened, and its own thread writes the files, so
the training step never waits on them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from gat_tui.config import ConfigError, RunConfig, config_from_toml
from gat_tui.events import (
    CheckpointSaved,
    EpochSummary,
    Event,
    PreviewPanel,
    RunFinished,
    StepMetrics,
)

TENSORBOARD_DIR = "tensorboard"
EVENT_FILE_PREFIX = "events.out.tfevents."

# every figure of a metrics.jsonl line, by its event field name, and its TensorBoard tag
SCALAR_TAGS: dict[str, str] = {
    "loss_f": "loss/classifier",
    "loss_g": "loss/generator",
    "pert_l2": "perturbation/l2",
    "pert_linf": "perturbation/linf",
    "train_acc_clean": "accuracy/train_clean",
    "train_acc_adv": "accuracy/train_adv",
    "images_per_second": "speed/images_per_second",
    "val_acc_clean": "accuracy/val_clean",
    "val_acc_adv": "accuracy/val_adv",
    "val_acc_fgm_l2": "accuracy/val_fgm_l2",
    "val_pert_l2": "perturbation/val_l2",
    "val_pert_linf": "perturbation/val_linf",
    "val_loss_g": "loss/val_generator",
    "epoch_seconds": "speed/epoch_seconds",
}
# the test figures of a finished run (summary.json), the metrics of its hyperparameters
TEST_TAGS: dict[str, str] = {
    "test_acc_clean": "test/acc_clean",
    "test_acc_adv": "test/acc_adv",
    "test_acc_fgm_l2": "test/acc_fgm_l2",
    "test_pert_l2": "test/pert_l2",
    "test_pert_linf": "test/pert_linf",
}
PREVIEW_TAGS = {"images": "preview/clean", "perturbations": "preview/perturbation", "adversarial": "preview/adversarial"}

def _finite_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def scalars_of(record: Mapping[str, Any], tags: Mapping[str, str] = SCALAR_TAGS) -> Iterator[tuple[str, float]]:
    """The (tag, value) pairs of a metrics record; absent, null and non-finite figures are left out, as in metrics.jsonl."""
    for name, tag in tags.items():
        value = record.get(name)
        if _finite_number(value):
            yield tag, float(value)


def hparams_of(config: RunConfig) -> dict[str, bool | int | float | str]:
    """The resolved configuration as flat dotted keys (`gat.c_g`), the values TensorBoard's HParams tab takes."""
    flat: dict[str, bool | int | float | str] = {}

    def walk(node: Any, prefix: str) -> None:
        for field in dataclasses.fields(node):
            value = getattr(node, field.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{field.name}.")
            elif isinstance(value, (bool, int, float, str)):
                flat[prefix + field.name] = value
            else:
                flat[prefix + field.name] = str(value)

    walk(config, "")
    return flat


def visible_perturbation(perturbation: np.ndarray) -> np.ndarray:
    """A signed perturbation mapped to [0, 1] around mid-grey, ±(largest |value|) black and white."""
    scale = float(np.abs(perturbation).max()) if perturbation.size else 0.0
    if scale == 0.0:
        return np.full_like(perturbation, 0.5)
    return np.clip(0.5 + perturbation / (2 * scale), 0.0, 1.0)


def event_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.name.startswith(EVENT_FILE_PREFIX))


class EventWriter:
    """One tensorboardX writer into `folder`; a new file beside any earlier ones (a resumed run's)."""

    def __init__(self, folder: Path, purge_step: int | None = None) -> None:
        from tensorboardX import SummaryWriter

        folder.mkdir(parents=True, exist_ok=True)
        # files are read in name order: the sequence number orders two writers of one second
        suffix = f".{len(event_files(folder)):04d}"
        self._writer = SummaryWriter(str(folder), purge_step=purge_step, filename_suffix=suffix, flush_secs=30)
        self.failed = False

    def _writing(self) -> bool:
        """False once tensorboardX's writer thread has died (e.g. a full disk): its queue would then
        fill and block training for good, so the event files stop there; metrics.jsonl goes on
        (and `export` can rebuild them)."""
        if not self.failed:
            worker = getattr(self._writer.file_writer.event_writer, "_worker", None)
            self.failed = worker is not None and not worker.is_alive()
        return not self.failed

    def record(self, record: Mapping[str, Any], step: int, walltime: float | None = None) -> None:
        if not self._writing():
            return
        for tag, value in scalars_of(record):
            self._writer.add_scalar(tag, value, step, walltime=walltime)

    def panel(self, panel: PreviewPanel, step: int) -> None:
        if not self._writing():
            return
        shown = {"images": panel.images, "perturbations": visible_perturbation(panel.perturbations), "adversarial": panel.adversarial}
        for name, tag in PREVIEW_TAGS.items():
            self._writer.add_images(tag, shown[name], step, dataformats="NCHW")

    def results(self, hparams: Mapping[str, bool | int | float | str], figures: Mapping[str, Any], step: int) -> None:
        """The test figures as scalars and the hyperparameters' session, whose metrics they are."""
        from tensorboardX.summary import hparams as hparams_summaries

        if not self._writing():
            return
        metrics = dict(scalars_of(figures, TEST_TAGS))
        for tag, value in metrics.items():
            self._writer.add_scalar(tag, value, step)
        # the session's start and end only: with no experiment summary, TensorBoard builds the
        # HParams table from all runs' sessions (one per run folder), metrics from their scalars
        _, session_start, session_end = hparams_summaries(dict(hparams), metrics)
        self._writer.file_writer.add_summary(session_start, step)
        self._writer.file_writer.add_summary(session_end, step)

    def flush(self) -> None:
        if self._writing():
            try:
                self._writer.flush()
            except OSError:
                self.failed = True

    def close(self) -> None:
        if self._writing():  # closing waits for the writer thread: not for a dead one
            self._writer.close()


class TensorBoardLog:
    """The subscriber writing a run's TensorBoard events (see the module's docstring)."""

    def __init__(self, folder: Path, config: RunConfig, purge_step: int | None = None) -> None:
        self._events = EventWriter(folder, purge_step)
        self._hparams = hparams_of(config)
        self._epoch_steps: dict[int, int] = {}
        self._step = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepMetrics):
            self._step = event.step
            self._events.record(dataclasses.asdict(event), event.step)
        elif isinstance(event, EpochSummary):
            self._step = event.step
            self._epoch_steps[event.epoch] = event.step
            self._events.record(dataclasses.asdict(event), event.step)
        elif isinstance(event, PreviewPanel):
            # the panel follows its epoch's summary: it is shown at that epoch's last step
            self._events.panel(event, self._epoch_steps.get(event.epoch, self._step))
        elif isinstance(event, CheckpointSaved):
            self._events.flush()  # the files hold at least what the checkpoint holds
        elif isinstance(event, RunFinished):
            if event.status == "finished":
                self._events.results(self._hparams, {**event.extra, **dataclasses.asdict(event)}, event.step)
            self._events.flush()

    def write_history(self, records: Iterable[Mapping[str, Any]], walltime_base: float | None = None) -> int:
        """Write metrics.jsonl records (a run resumed with no event files yet); returns how many."""
        return _write_records(self._events, records, walltime_base)

    def close(self) -> None:
        self._events.close()


def _metrics_records(records: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for record in records:
        if isinstance(record, dict) and record.get("event") in ("step", "epoch") and isinstance(record.get("step"), int):
            yield record


def _write_records(events: EventWriter, records: Iterable[Any], walltime_base: float | None) -> int:
    count = 0
    for record in _metrics_records(records):
        seconds = record.get("time")
        walltime = None
        if walltime_base is not None and _finite_number(seconds):
            walltime = walltime_base + float(seconds)
        events.record(record, record["step"], walltime)
        count += 1
    return count


def walltime_base(metrics_path: Path, records: list[Any]) -> float:
    """When the run started, as well as its files tell: the metrics file's last change less its last `time`."""
    times = [record["time"] for record in _metrics_records(records) if _finite_number(record.get("time"))]
    try:
        modified = metrics_path.stat().st_mtime
    except OSError:
        modified = time.time()
    return modified - (max(times) if times else 0.0)


# -- export: event files from existing run folders ----------------------------------------------


class ExportError(ValueError):
    """An export that cannot be done; the message names the folder and what would work."""


@dataclass(frozen=True)
class ExportedRun:
    run_dir: Path
    out_dir: Path
    records: int
    with_results: bool


def find_run_folders(source: Path) -> list[tuple[Path, Path]]:
    """(run folder, its subfolder name in the export) for a run folder, a sweep folder or a folder of runs.

    A run folder is one holding metrics.jsonl; a sweep's runs (`runs/<label>/seed-<k>`) are
    named `<label>/seed-<k>`.
    """
    if (source / "metrics.jsonl").is_file():
        return [(source, Path("."))]
    found = []
    for metrics in sorted(source.rglob("metrics.jsonl")):
        relative = metrics.parent.relative_to(source)
        if (source / "sweep.toml").is_file() and relative.parts[:1] == ("runs",):
            relative = Path(*relative.parts[1:])
        found.append((metrics.parent, relative))
    return found


def _read_json(path: Path) -> Any:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def export_run(run_dir: Path, out_dir: Path) -> ExportedRun:
    """Event files rebuilt from a run folder's metrics.jsonl (and, if it finished, config.toml and summary.json)."""
    from gat_tui.runs.folder import RunPaths, read_json_lines

    paths = RunPaths(run_dir)
    if event_files(out_dir):
        raise ExportError(f"{out_dir}: already holds TensorBoard event files; remove them or choose another --tensorboard folder")
    try:
        records = read_json_lines(paths.metrics)
    except UnicodeDecodeError as error:
        raise ExportError(f"{paths.metrics}: not UTF-8 text ({error})") from None
    events = EventWriter(out_dir)
    try:
        count = _write_records(events, records, walltime_base(paths.metrics, records))
        summary = _read_json(paths.summary)
        with_results = False
        if isinstance(summary, dict) and summary.get("status") == "finished" and isinstance(summary.get("step"), int):
            try:
                config = config_from_toml(paths.config.read_text(encoding="utf-8"), str(paths.config))
            except (OSError, UnicodeDecodeError, ConfigError):
                config = None  # a config of another version: the scalars are still worth having
            if config is not None:
                extra = summary.get("extra")
                figures = {**(extra if isinstance(extra, dict) else {}), **summary}
                events.results(hparams_of(config), figures, summary["step"])
                with_results = True
    finally:
        events.close()
    return ExportedRun(run_dir, out_dir, count, with_results)


def export_tensorboard(source: Path, out: Path) -> list[ExportedRun]:
    """Event files for every run folder in `source` (a run, a sweep, a folder of runs) under `out`."""
    if not source.is_dir():
        raise ExportError(f"{source}: no such folder; expected a run folder or a sweep folder")
    runs = find_run_folders(source)
    if not runs:
        raise ExportError(f"{source}: holds no run (no metrics.jsonl found in it or below it)")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: is a file; expected a folder for the event files")
    for _, relative in runs:
        if event_files(out / relative):
            raise ExportError(
                f"{out / relative}: already holds TensorBoard event files; remove them or choose another --tensorboard folder"
            )
    return [export_run(run_dir, out / relative) for run_dir, relative in runs]
