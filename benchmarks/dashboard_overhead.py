"""What the dashboard costs training, and how fast it answers keys while training runs.

Setup: the same GAT run on synthetic 32x32 images is trained three ways, in turns (a, b, c, then
b, c, a, then c, a, b, ...) so machine noise hits all alike:
  (a) headless, with the Rich progress printer writing to a throw-away console;
  (b) inside the Textual dashboard (run headlessly by Textual's test driver at 120x36), watched:
      no keys pressed, the way a user follows a run;
  (c) inside the dashboard with a key pressed every `--key-interval` seconds (x: switch the chart
      axis, which redraws every chart), the time until the screen has handled each one recorded.
Throughput is the mean of the engine's reported images per second over each run, leaving out its
first report (warm-up). The dashboard's cost is 1 - median(b) / median(a), and below it the
median and range of the per-repeat costs 1 - b / a; (c)'s cost is printed beside it, as the
price of constant interaction (four full redraws a second at the default).
A further figure is little affected by other load on the machine: the CPU time of the dashboard's
thread (Textual's event loop, which draws; in (c) it also runs this script's key presses) as a
share of the whole process's CPU time, from the 10th step to the end of training.

Targets (issue 4): the dashboard costs training under 3% of its headless throughput, and keys
are answered within 100 ms. No assertion: this prints the figures.

    python benchmarks/dashboard_overhead.py [--repeats 3] [--steps 60] [--key-interval 0.25]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from gat_tui.config import DataConfig, EvalConfig, GatConfig, RunConfig, TrainConfig
from gat_tui.console.headless import HeadlessPrinter
from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer

# -- Setup -------------------------------------------------------------------------------------


def benchmark_config(steps: int) -> RunConfig:
    return RunConfig(
        name="dashboard_bench",
        method="gat",
        device="cpu",
        data=DataConfig(
            dataset="synthetic", image_size=32, num_classes=10, train_size=4096, val_size=256, test_size=256,
            batch_size=64, eval_batch_size=256,
        ),
        train=TrainConfig(epochs=1, log_every=5, max_steps_per_epoch=steps),  # frequent events stress the UI
        gat=GatConfig(lr_g=1e-4),
        eval=EvalConfig(panel_size=8),
    )


def throughput(run_dir: Path) -> float:
    """Mean images/s over the run's step reports, the first (warm-up) left out."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = [line["images_per_second"] for line in lines if line["event"] == "step"][1:]
    return statistics.mean(rates)


# -- Headless ----------------------------------------------------------------------------------


def run_headless(config: RunConfig, run_dir: Path) -> float:
    printer = HeadlessPrinter(Console(file=io.StringIO(), force_terminal=True, width=120))
    Trainer(TrainingRequest(config, run_dir), subscribers=[printer]).run()
    printer.close()
    return throughput(run_dir)


# -- Dashboard ---------------------------------------------------------------------------------


async def run_dashboard(config: RunConfig, run_dir: Path, key_interval: float | None) -> tuple[float, list[float], float]:
    """Train in the dashboard; with `key_interval`, press x that often and time each answer."""
    from gat_tui.dashboard.app import GatTuiApp
    from gat_tui.dashboard.training_screen import TrainingScreen
    from gat_tui.training.request import TrainingRequest

    app = GatTuiApp(TrainingRequest(config, run_dir), color=True, runs_dir=run_dir.parent)
    latencies: list[float] = []
    async with app.run_test(size=(120, 36)) as pilot:
        # The harness waits with asyncio.sleep, not pilot.pause: each pause posts a callback to
        # every widget to see it idle (~1,500 messages a second at 50 pauses a second), work of
        # the test driver that would be charged to the dashboard.
        while not isinstance(app.screen, TrainingScreen):
            await asyncio.sleep(0.05)
        screen = app.screen
        while screen.query_one("#run-header").state.step < 10 and screen.finished is None:  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
        ui_cpu, process_cpu = time.thread_time(), time.process_time()
        while screen.finished is None:
            if key_interval is None:
                await asyncio.sleep(0.2)  # the harness only looks whether training has finished
                continue
            before = screen.x_axis
            # pilot.press also waits for the app to go idle, which a training run streaming
            # events never quite is; so time from sending the key to the moment its action ran
            started = time.perf_counter()
            press = asyncio.create_task(pilot.press("x"))
            while screen.x_axis == before:
                await asyncio.sleep(0.001)
            latencies.append(time.perf_counter() - started)
            await press
            await asyncio.sleep(key_interval)
        ui_share = (time.thread_time() - ui_cpu) / max(time.process_time() - process_cpu, 1e-9)
        await pilot.pause(0.1)
    return throughput(run_dir), latencies, ui_share


# -- Report ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60, help="training steps per run")
    parser.add_argument("--key-interval", type=float, default=0.25, help="seconds between key presses in the (c) runs")
    args = parser.parse_args()
    config = benchmark_config(args.steps)
    root = Path(tempfile.mkdtemp(prefix="gat-tui-dashboard-bench-"))
    headless: list[float] = []
    watched: list[float] = []
    pressed: list[float] = []
    latencies: list[float] = []
    watched_shares: list[float] = []
    pressed_shares: list[float] = []

    def headless_run(repeat: int) -> None:
        headless.append(run_headless(config, root / f"headless-{repeat}"))

    def watched_run(repeat: int) -> None:
        rate, _, share = asyncio.run(run_dashboard(config, root / f"watched-{repeat}", key_interval=None))
        watched.append(rate)
        watched_shares.append(share)

    def pressed_run(repeat: int) -> None:
        rate, keys, share = asyncio.run(run_dashboard(config, root / f"keys-{repeat}", key_interval=args.key_interval))
        pressed.append(rate)
        pressed_shares.append(share)
        latencies.extend(keys)

    kinds = [headless_run, watched_run, pressed_run]
    for repeat in range(args.repeats):
        # the order turns each repeat, so a drift of the machine (or a run's after-effects on the
        # next, in one process) does not always land on the same kind
        for run in kinds[repeat % 3 :] + kinds[: repeat % 3]:
            run(repeat)
        share = pressed_shares[-1]
        print(
            f"repeat {repeat + 1}/{args.repeats}: headless {headless[-1]:.1f} img/s, dashboard watched {watched[-1]:.1f} "
            f"(thread {100 * watched_shares[-1]:.1f}% of CPU), with keys {pressed[-1]:.1f} (thread {100 * share:.1f}%)",
            flush=True,
        )

    def cost(rates: list[float]) -> float:
        return 1 - statistics.median(rates) / statistics.median(headless)

    def paired(rates: list[float]) -> str:
        """The cost within each repeat (its runs ran back to back): median, and the range over repeats."""
        costs = sorted(1 - rate / base for rate, base in zip(rates, headless, strict=True))
        return f"{100 * statistics.median(costs):.1f}%  ({100 * costs[0]:.1f} to {100 * costs[-1]:.1f}%)"

    table = Table(title=f"dashboard overhead ({args.repeats} runs each, {args.steps} GAT steps of 64 images, CPU)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("headless, median img/s", f"{statistics.median(headless):.1f}")
    table.add_row("dashboard watched (no keys), median img/s", f"{statistics.median(watched):.1f}")
    table.add_row("throughput cost of the dashboard", f"{100 * cost(watched):.1f}%  (target < 3%)")
    table.add_row("  per repeat: median (range)", paired(watched))
    table.add_row("dashboard thread's share of the process's CPU, median", f"{100 * statistics.median(watched_shares):.1f}%")
    table.add_row(f"dashboard with a key every {args.key_interval:g} s, median img/s", f"{statistics.median(pressed):.1f}")
    table.add_row("throughput cost with keys", f"{100 * cost(pressed):.1f}%")
    table.add_row("  per repeat: median (range)", paired(pressed))
    table.add_row("dashboard thread's share with keys, median", f"{100 * statistics.median(pressed_shares):.1f}%")
    if latencies:
        ordered = sorted(latencies)
        table.add_row("key latency, median", f"{1000 * statistics.median(ordered):.0f} ms")
        table.add_row("key latency, 95th percentile", f"{1000 * ordered[int(0.95 * (len(ordered) - 1))]:.0f} ms")
        table.add_row("key latency, max", f"{1000 * ordered[-1]:.0f} ms  (target < 100 ms)")
        table.add_row("keys pressed", str(len(latencies)))
    table.add_row("torch threads", str(torch.get_num_threads()))
    Console().print(table)

if __name__ == "__main__":
    main()
