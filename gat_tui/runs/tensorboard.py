"""TensorBoard event files of a run: its metrics, its preview panel and its hyperparameters.

    RUN_DIR/tensorboard/events.out.tfevents.*   TensorBoard's format (via tensorboardX), read by `tensorboard --logdir`

`TensorBoardLog` is a subscriber like the metrics log: each step and epoch line of
metrics.jsonl becomes scalars at its classifier step under the tags of `SCALAR_TAGS` (one
mapping from the event field names, used by the live log and by `export_tensorboard` alike);
each epoch's preview panel becomes three images (clean, perturbation rescaled around mid-grey,
adversarial), so TensorBoard's step slider shows the perturbations evolve; a finished run adds
the resolved configuration as hyperparameters with its test figures as their metrics.

A resumed run writes a purge marker at the step after its checkpoint: TensorBoard drops what a
killed run wrote after that checkpoint, as `RunFolder.start` drops those metrics lines.

Writing: the events are built with tensorboardX's summary functions (imported only when a log
is opened) and handed to one daemon thread through an unbounded queue, so adding an event never
waits on the disk. At each checkpoint `EventWriter.flush` waits until every event added before it
is in the file and flushed (fsynced): the files hold at least what the checkpoint holds, so the
purge marker of a resume never hides a step it will not write again. The wait is bounded
(`FLUSH_WAIT_SECONDS`): a writer that cannot write (a full disk) stops writing and never holds
training up, and one stuck on a slow disk is waited for once, not at every checkpoint.
"""

from __future__ import annotations

import atexit
import dataclasses
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
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
# how long a checkpoint waits for the events before it to reach the file; a writer stuck longer
# is left behind (TensorBoard lags; metrics.jsonl, and `export`, still hold everything)
FLUSH_WAIT_SECONDS = 5.0
# how often the writer thread flushes the file between checkpoints, for a live `tensorboard`
FLUSH_EVERY_SECONDS = 30.0

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
    "val_acc_pgd": "accuracy/val_pgd",
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


class _Stop:
    """The writer thread's last item: close the file and end."""


class EventWriter:
    """Event files of one run in `folder`: a new file beside any earlier ones (a resumed run's).

    `record`, `panel` and `results` only queue events; the writer thread writes them in order
    (see the module's docstring). Not for use from several threads at once.
    """

    def __init__(self, folder: Path, purge_step: int | None = None) -> None:
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event as TensorBoardEvent
        from tensorboardX.proto.event_pb2 import SessionLog

        folder.mkdir(parents=True, exist_ok=True)
        # files are read in name order: the sequence number orders two writers of one second
        suffix = f".{len(event_files(folder)):04d}"
        # opening writes the file's header (its version) here, so the file exists once this returns
        self._file = EventsWriter(str(folder / "events"), suffix)
        self._event_type = TensorBoardEvent
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._unflushed = 0  # events added since the last flush that reached the file
        self._behind: threading.Event | None = None  # a flush that timed out, until the writer gets to it
        self._done = 0  # items the writer thread has taken: close waits while this moves
        self._closed = False
        self.failed = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_events, name=f"tensorboard writer {folder}", daemon=True)
        self._thread.start()
        atexit.register(self.close)  # a process that ends without closing still gets its events
        if purge_step is not None:
            # what tensorboardX's SummaryWriter(purge_step=) writes: TensorBoard drops the steps
            # from purge_step on that earlier files hold
            self._add(TensorBoardEvent(file_version="brain.Event:2"), purge_step)
            self._add(TensorBoardEvent(session_log=SessionLog(status=SessionLog.START)), purge_step)

    # -- the training thread's side -------------------------------------------------------------

    def _writing(self) -> bool:
        """False once the writer thread has failed (e.g. a full disk) or ended: the event files
        stop there; metrics.jsonl goes on (and `export` can rebuild them)."""
        if self._closed:
            return False
        if not self.failed and not self._thread.is_alive():
            self.failed = True
        return not self.failed

    def _add(self, event: Any, step: int | None, walltime: float | None = None) -> None:
        event.wall_time = time.time() if walltime is None else walltime
        if step is not None:
            event.step = int(step)
        self._queue.put(event)
        self._unflushed += 1

    def _add_summary(self, summary: Any, step: int, walltime: float | None = None) -> None:
        self._add(self._event_type(summary=summary), step, walltime)

    def record(self, record: Mapping[str, Any], step: int, walltime: float | None = None) -> None:
        from tensorboardX.summary import scalar

        if not self._writing():
            return
        for tag, value in scalars_of(record):
            self._add_summary(scalar(tag, value), step, walltime)

    def scalar(self, tag: str, value: float, step: int) -> None:
        """One scalar under its own tag (a sweep's evaluation curves: `gat_tui.sweep.tensorboard_curves`)."""
        from tensorboardX.summary import scalar

        if self._writing():
            self._add_summary(scalar(tag, value), step)

    def panel(self, panel: PreviewPanel, step: int) -> None:
        from tensorboardX.summary import image

        if not self._writing():
            return
        shown = {"images": panel.images, "perturbations": visible_perturbation(panel.perturbations), "adversarial": panel.adversarial}
        for name, tag in PREVIEW_TAGS.items():
            self._add_summary(image(tag, shown[name], dataformats="NCHW"), step)

    def results(self, hparams: Mapping[str, bool | int | float | str], figures: Mapping[str, Any], step: int) -> None:
        """The test figures as scalars and the hyperparameters' session, whose metrics they are."""
        from tensorboardX.summary import hparams as hparams_summaries
        from tensorboardX.summary import scalar

        if not self._writing():
            return
        metrics = dict(scalars_of(figures, TEST_TAGS))
        for tag, value in metrics.items():
            self._add_summary(scalar(tag, value), step)
        # the session's start and end only: with no experiment summary, TensorBoard builds the
        # HParams table from all runs' sessions (one per run folder), metrics from their scalars
        _, session_start, session_end = hparams_summaries(dict(hparams), metrics)
        self._add_summary(session_start, step)
        self._add_summary(session_end, step)

    def flush(self) -> bool:
        """Wait until every event added so far is in the file and flushed; True once it is.

        Waits `FLUSH_WAIT_SECONDS` at most; False if the writer has failed or did not get there
        in time. A writer still behind an earlier flush that timed out is not waited for again.
        """
        if not self._writing():
            return False
        if self._unflushed == 0:
            return True
        done = threading.Event()
        self._queue.put(done)
        if self._behind is not None and not self._behind.is_set():
            return False
        self._behind = None
        if not done.wait(FLUSH_WAIT_SECONDS):
            self._behind = done
            return False
        if self.failed:
            return False
        self._unflushed = 0
        return True

    def close(self) -> None:
        """Write what is queued and close the file; waits while the writer makes progress, not for a stuck one."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._queue.put(_Stop())
        while self._thread.is_alive():
            done = self._done
            self._thread.join(FLUSH_WAIT_SECONDS)
            if self._done == done:
                break  # nothing written for FLUSH_WAIT_SECONDS: leave the daemon thread behind

    # -- the writer thread ------------------------------------------------------------------------

    def _write_events(self) -> None:
        next_flush = 0.0  # the first event is flushed at once, as tensorboardX does
        pending = False  # events written since the file was last flushed
        while True:
            timeout = max(next_flush - time.monotonic(), 0.0) if pending else None
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            self._done += 1
            if isinstance(item, _Stop):
                self._close_file()
                return
            if isinstance(item, threading.Event):  # a flush marker: every earlier event is written
                if pending:
                    self._guarded(self._file.flush)
                    pending, next_flush = False, time.monotonic() + FLUSH_EVERY_SECONDS
                item.set()
                continue
            if item is not None:
                self._guarded(self._file.write_event, item)
                pending = True
            if pending and time.monotonic() >= next_flush:
                self._guarded(self._file.flush)
                pending, next_flush = False, time.monotonic() + FLUSH_EVERY_SECONDS

    def _close_file(self) -> None:
        try:
            self._file.close()  # flushes first
        except Exception as error:  # a full disk: the file keeps what reached it
            if not self.failed:
                self.error, self.failed = error, True

    def _guarded(self, write: Callable[..., Any], *args: Any) -> None:
        """Run a write unless an earlier one failed. A failure (an OSError such as a full disk, or
        any other) ends writing: later events are taken from the queue and dropped, and flush
        markers still set, so nothing waits on a writer that has given up."""
        if self.failed:
            return
        try:
            write(*args)
        except Exception as error:  # whatever stops the event files must not stop training
            self.error = error
            self.failed = True


class TensorBoardLog:
    """The subscriber writing a run's TensorBoard events (see the module's docstring)."""

    def __init__(self, folder: Path, config: RunConfig, purge_step: int | None = None) -> None:
        self._folder = folder
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

    def failure(self) -> str | None:
        """Why the event files stopped (a full disk, say), once they have; None while they are written."""
        if not self._events.failed:
            return None
        cause = f" ({self._events.error})" if self._events.error is not None else ""
        return (
            f"TensorBoard event files in {self._folder} stopped{cause}; training goes on, metrics.jsonl holds "
            "every figure, and `gat-tui export RUN_DIR --tensorboard OUT` rebuilds the files from it"
        )

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
