"""What writing TensorBoard event files costs training.

Setup: the same GAT run on synthetic 32x32 images (`--image-size`) (one epoch of `--steps` steps of 64 images, a
step report every 5 steps so the writer sees many events, an 8-image preview panel) is trained
headless with `logging.tensorboard` off and on, alternating off/on/off/on... so machine noise
hits both alike. Two figures:

- time inside the TensorBoard subscriber (every call it gets: scalars, preview images, the
  flushes at checkpoints, the hyperparameters at the end) as a share of the training time
  (RunStarted to RunFinished) of that same run: the direct cost, little affected by noise;
- end-to-end training throughput, steps x batch / (last step report - RunStarted), with and
  without the writer (medians): includes the writer's own background thread, and the noise.

Target: under 2% of training throughput. No assertion: this prints the figures.

    python benchmarks/tensorboard_overhead.py [--repeats 3] [--steps 60] [--device cpu] [--image-size 32]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from gat_tui.config import DataConfig, EvalConfig, GatConfig, LoggingConfig, RunConfig, TrainConfig
from gat_tui.events import Event, RunFinished, RunStarted, StepMetrics
from gat_tui.runs import tensorboard
from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer

BATCH = 64


def benchmark_config(steps: int, device: str, on: bool, image_size: int = 32) -> RunConfig:
    return RunConfig(
        name="tensorboard_bench",
        method="gat",
        device=device,
        data=DataConfig(
            dataset="synthetic", image_size=image_size, num_classes=10, train_size=4096, val_size=256, test_size=256,
            batch_size=BATCH, eval_batch_size=256,
        ),
        train=TrainConfig(epochs=1, log_every=5, max_steps_per_epoch=steps),
        gat=GatConfig(lr_g=1e-4),
        eval=EvalConfig(panel_size=8),
        logging=LoggingConfig(tensorboard=on),
    )


class Clock:
    """Times the run (RunStarted to RunFinished, and to the last step report) from the subscriber list's end."""

    def __init__(self) -> None:
        self.started = self.last_step = self.finished = 0.0
        self.steps = 0

    def __call__(self, event: Event) -> None:
        now = time.perf_counter()
        if isinstance(event, RunStarted):
            self.started = now
        elif isinstance(event, StepMetrics):
            self.last_step, self.steps = now, event.step
        elif isinstance(event, RunFinished):
            self.finished = now


# time spent inside TensorBoardLog.__call__, summed over one run
_inside = [0.0]
_original_call = tensorboard.TensorBoardLog.__call__


def _timed_call(self: tensorboard.TensorBoardLog, event: Event) -> None:
    started = time.perf_counter()
    _original_call(self, event)
    _inside[0] += time.perf_counter() - started


tensorboard.TensorBoardLog.__call__ = _timed_call  # type: ignore[method-assign]


def run_once(config: RunConfig, run_dir: Path) -> tuple[float, float, float]:
    """(end-to-end images/s, training seconds, seconds inside the TensorBoard subscriber)."""
    _inside[0] = 0.0
    clock = Clock()
    finished = Trainer(TrainingRequest(config, run_dir), subscribers=[clock]).run()
    assert finished.status == "finished", finished.message
    return clock.steps * BATCH / (clock.last_step - clock.started), clock.finished - clock.started, _inside[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60, help="training steps per run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--image-size", type=int, default=32, help="side of the synthetic images (smaller: faster steps, a larger share)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gat-tui-tensorboard-bench-"))
    started = time.perf_counter()
    import tensorboardX  # noqa: F401  (imported once per process, at the first run; timed apart)

    import_seconds = time.perf_counter() - started
    off_config = benchmark_config(args.steps, args.device, on=False, image_size=args.image_size)
    on_config = replace(off_config, logging=LoggingConfig(tensorboard=True))
    run_once(off_config, root / "warm-up")  # first-run costs (allocator, kernels) hit neither side
    off, on, shares = [], [], []
    for repeat in range(args.repeats):
        rate_off, _, _ = run_once(off_config, root / f"off-{repeat}")
        rate_on, seconds, inside = run_once(on_config, root / f"on-{repeat}")
        off.append(rate_off)
        on.append(rate_on)
        shares.append(inside / seconds)
        print(
            f"repeat {repeat + 1}/{args.repeats}: off {rate_off:.1f} img/s, on {rate_on:.1f} img/s, "
            f"TensorBoard subscriber {1000 * inside:.1f} ms of {seconds:.2f} s ({100 * inside / seconds:.2f}%)",
            flush=True,
        )

    cost = 1 - statistics.median(on) / statistics.median(off)
    size = f"{args.image_size}x{args.image_size}"
    table = Table(title=f"TensorBoard overhead ({args.repeats} runs each, {args.steps} GAT steps of {BATCH} {size} images, {args.device})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("without TensorBoard, median img/s", f"{statistics.median(off):.1f}")
    table.add_row("with TensorBoard, median img/s", f"{statistics.median(on):.1f}")
    table.add_row("throughput cost, end to end", f"{100 * cost:.1f}%  (noisy; target < 2%)")
    table.add_row("time in the subscriber / training time", f"{100 * statistics.median(shares):.2f}%  (median; target < 2%)")
    table.add_row("tensorboardX import, once per process", f"{import_seconds:.2f} s")
    table.add_row("torch threads", str(torch.get_num_threads()))
    Console().print(table)


if __name__ == "__main__":
    main()
