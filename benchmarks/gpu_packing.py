"""Several GAT runs packed onto one device: total training images per second of 1, 2, 4, 8 runs at once.

Why
---
A run of the paper's All-Conv network at batch 128 is far too small to fill an H100, so
`gat-tui sweep --executor local --jobs N` can put N runs on one GPU. This script measures what
that buys, to choose `--jobs`' default on a GPU (today: one job per GPU).

What is measured
----------------
For each N in `--jobs`, N worker processes start at once (as `--executor local` starts its jobs:
separate processes, each with its own CUDA context). Each builds the engine's GAT step on synthetic
32x32 data exactly as `benchmarks/throughput.py` does (`EngineLoop`: data resident on the device,
channels_last where preferred, no host sync inside the step), takes `--warmup` untimed steps, then
waits at a barrier, so start-up (importing torch, building the data, cuDNN's autotuning) is not
timed. All then run `--steps` steps; each timed region starts and ends with a device sync. The
total is every worker's images over the wall time from the first worker's start to the last one's
end; "per run" is the mean of each worker's own images per second. The peak device memory per
run is `torch.cuda.max_memory_allocated` (CUDA only).

Processes on one GPU share it by time-slicing unless NVIDIA's Multi-Process Service (MPS) runs;
the script measures whichever the machine has and says so (CUDA_MPS_PIPE_DIRECTORY set or not).
On a CPU the workers split the cores (`torch.set_num_threads(cores // N)`): a check that the
script runs, not a figure to act on.

Run: `python benchmarks/gpu_packing.py [--device auto|cuda|cpu] [--jobs 1 2 4 8] [--steps 200]
[--json results.json]`. On an H100 the default run takes about 2 minutes. No assertion: this
prints the figures and the smallest N that reaches 90 % of the best total.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import torch
from throughput import EngineLoop, device_name, row_config, synchronize, synthetic_data

from gat_tui.device import configure_backends, select_device

ROW = "gat"
ENOUGH_OF_BEST = 0.9  # the suggested --jobs is the smallest N within 10 % of the best total


def worker(index: int, jobs: int, args: argparse.Namespace, barrier: Barrier, results: Any) -> None:
    """One run: build, warm up, wait for the others, time `args.steps` GAT steps, report."""
    device = torch.device(args.device)
    configure_backends(device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // jobs))
    config = row_config(ROW, args.batch_size, seed=args.seed + index)
    images, labels = synthetic_data(args.images, seed=args.seed + index)
    loop = EngineLoop(config, images, labels, device)
    for _ in range(args.warmup):
        loop.step()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    barrier.wait()
    start = time.monotonic()  # CLOCK_MONOTONIC: comparable between processes on one machine
    for _ in range(args.steps):
        loop.step()
    synchronize(device)
    end = time.monotonic()
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    results.put({"index": index, "start": start, "end": end, "images": args.steps * args.batch_size, "peak_bytes": peak})


def measure(jobs: int, args: argparse.Namespace) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")  # a forked CUDA context would be unusable
    barrier = context.Barrier(jobs)
    results = context.Queue()
    processes = [context.Process(target=worker, args=(i, jobs, args, barrier, results)) for i in range(jobs)]
    for process in processes:
        process.start()
    reports = [results.get(timeout=args.timeout) for _ in processes]
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise SystemExit(f"a worker of the {jobs}-run measurement exited with code {process.exitcode}")
    wall = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    return {
        "jobs": jobs,
        "total_images_per_second": sum(r["images"] for r in reports) / wall,
        "per_run_images_per_second": sum(r["images"] / (r["end"] - r["start"]) for r in reports) / jobs,
        "peak_memory_per_run_gib": max(r["peak_bytes"] for r in reports) / 2**30,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu", "mps"])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4, 8], help="runs at once, one measurement each")
    parser.add_argument("--steps", type=int, default=None, help="timed GAT steps per run (default: 200 on a GPU, 3 on a CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per run (default: 20 on a GPU, 1 on a CPU)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--images", type=int, default=4096, help="synthetic training images per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for a worker's figures")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    args.device = str(select_device(args.device))
    on_gpu = args.device != "cpu"
    args.steps = args.steps if args.steps is not None else (200 if on_gpu else 3)
    args.warmup = args.warmup if args.warmup is not None else (20 if on_gpu else 1)
    if min(args.jobs) < 1:
        parser.error(f"--jobs: every count must be at least 1, got {args.jobs}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    mps_daemon = "CUDA_MPS_PIPE_DIRECTORY" in os.environ
    print(f"device: {device_name(device)}; GAT on All-Conv, batch {args.batch_size}, {args.steps} timed steps per run")
    if device.type == "cuda":
        print(f"NVIDIA MPS: {'in use (CUDA_MPS_PIPE_DIRECTORY set)' if mps_daemon else 'not set up: the runs time-slice the GPU'}")
    rows = []
    for jobs in args.jobs:
        row = measure(jobs, args)
        rows.append(row)
        print(f"  {jobs} at once: {row['total_images_per_second']:.0f} img/s in all", flush=True)
    single = next((r["total_images_per_second"] for r in rows if r["jobs"] == 1), rows[0]["total_images_per_second"])
    best = max(r["total_images_per_second"] for r in rows)
    print(f"\n{'runs':>4}  {'total img/s':>11}  {'per run':>8}  {'vs 1 run':>8}  {'peak GiB/run':>12}")
    for r in rows:
        print(f"{r['jobs']:>4}  {r['total_images_per_second']:>11.0f}  {r['per_run_images_per_second']:>8.0f}  "
              f"{r['total_images_per_second'] / single:>7.2f}x  {r['peak_memory_per_run_gib']:>12.2f}")
    suggested = min(r["jobs"] for r in rows if r["total_images_per_second"] >= ENOUGH_OF_BEST * best)
    print(f"\nsmallest N within {100 * (1 - ENOUGH_OF_BEST):.0f}% of the best total: --jobs {suggested} per device")
    if args.json is not None:
        args.json.write_text(json.dumps({"device": device_name(device), "mps": mps_daemon, "rows": rows, "suggested_jobs": suggested}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
