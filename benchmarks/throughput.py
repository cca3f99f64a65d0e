"""Training throughput of every method: the gat_tui engine against a plain PyTorch loop.

What is measured
----------------
Training images per second of one training step (one classifier update on a minibatch of
`--batch-size` images; for GAT that step also includes its k generator updates, each on a fresh
minibatch, but only the classifier's minibatch is counted as trained images) for the methods
baseline, dropout, random, fg_linf, fg_l2, gat and dropout_gat, two ways in the same run:

- engine: the package's own path. The synthetic data sits on the device as uint8 and is drawn
  by `gat_tui.training.batches.ShuffledBatches`; the networks come from `gat_tui.methods.build_method`
  (channels_last where `prefers_channels_last` says so) and each step is
  `method.train_step(images, labels, draw_batch)` with no host sync inside the timed region.
- plain: the loop a researcher would write by hand, defined below in `PlainLoop`: a float32
  `TensorDataset` on the CPU behind a shuffling `DataLoader`, `.to(device)` per batch, the same
  networks and `torch.optim.Adam`, the algorithm written out inline, and `loss.item()` every step.

Both paths get the same seed, configuration and backend settings (`configure_backends`). All
(method, path) runners are built and warmed up with `--warmup` steps first; then every repeat
times `--steps` steps of each, all runners taking turns so machine noise hits them alike: on the
CPU a turn is `--chunk` steps (default 1; small VMs throttle for seconds at a time), on a GPU a
turn is the whole repeat (a sync per step would stall the queue the engine keeps full). The turn
order flips every round, keeping each method's engine and plain runs adjacent. Every timed region
starts and ends with a device sync. The table shows medians over repeats: img/s of each path, and
the engine/plain ratio as the median of the per-repeat ratios (each from interleaved runs). As
gat and fg_linf are interleaved too, the GAT/FGSM figure is also measured under the same noise.

Targets (from the issue; reported, never asserted)
--------------------------------------------------
- CPU: every method's engine at >= 0.95x the plain loop's images per second;
- H100-class GPU: every method's engine at >= 1.5x the plain loop.
The paper reports GAT training 3-4x slower than fast-gradient training; the GAT/FGSM line gives
this implementation's figure (engine time per image of `gat` over that of `fg_linf`).

Run: `python benchmarks/throughput.py [--device auto|cpu|cuda|mps] [--methods gat fg_linf ...]
[--json results.json]`. The default CPU run takes about 4-5 minutes on two cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader, TensorDataset

from gat_tui.config import RunConfig
from gat_tui.device import configure_backends, prefers_channels_last, select_device
from gat_tui.methods import TrainingMethod, build_method
from gat_tui.models import AllConvClassifier, PerturbationGenerator
from gat_tui.training.batches import ShuffledBatches

# ---------------------------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------------------------

METHODS = ("baseline", "dropout", "random", "fg_linf", "fg_l2", "gat", "dropout_gat")
NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)

# the cifar presets' values: eps is an L-inf bound (8/255) for fg_linf and an L2 norm otherwise
EPS = {"random": 1.5, "fg_linf": 0.0314, "fg_l2": 1.5}
DROPOUT_METHODS = ("dropout", "dropout_gat")
TARGETS = {"cpu": 0.95, "cuda": 1.5}  # engine/plain ratio the issue asks for, per device type

console = Console(soft_wrap=True)  # progress lines stay one line each in logs and pipes


def method_config(method: str, batch_size: int, seed: int) -> RunConfig:
    """The preset-like configuration both paths read their settings from."""
    base = RunConfig()
    return dataclasses.replace(
        base,
        name=f"throughput_{method}",
        method=method,
        seed=seed,
        data=dataclasses.replace(base.data, dataset="synthetic", batch_size=batch_size, num_classes=NUM_CLASSES),
        model=dataclasses.replace(base.model, dropout=0.5 if method in DROPOUT_METHODS else 0.0),
        train=dataclasses.replace(base.train, lr_f=1e-3, alpha=0.5),
        perturbation=dataclasses.replace(base.perturbation, eps=EPS.get(method, 1.0), clip=True),
        gat=dataclasses.replace(base.gat, c_g=0.01, k=1, lr_g=1e-6),
    )


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so a timed region holds exactly its own steps."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    model = ""
    try:  # platform.processor() is often empty on Linux; /proc/cpuinfo names the CPU
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {model or platform.processor() or platform.machine()}"


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def synthetic_data(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random uint8 images [N, 3, 32, 32] and labels in [0, 10), on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, *IMAGE_SHAPE), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (count,), generator=generator)
    return images, labels


# ---------------------------------------------------------------------------------------------
# Plain loop
# ---------------------------------------------------------------------------------------------


def endless(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Epoch after epoch of a DataLoader, as `for epoch ...: for x, y in loader` would give."""
    while True:
        yield from loader


class PlainLoop:
    """The reference: how one would write these methods in a plain PyTorch training script.

    Deliberately ordinary: DataLoader on CPU float32 data, `.to(device)` per batch, two separate
    forward passes for the clean and perturbed halves, input gradients through `loss.backward()`
    on a `requires_grad` input, and `loss.item()` each step for the log.
    """

    def __init__(
        self, config: RunConfig, images: torch.Tensor, labels: torch.Tensor, device: torch.device
    ) -> None:
        self.method = config.method
        self.device = device
        self.alpha = config.train.alpha
        self.eps = config.perturbation.eps
        self.c_g = config.gat.c_g
        self.k = config.gat.k
        self.losses: list[float] = []

        torch.manual_seed(config.seed)
        self.model = AllConvClassifier(NUM_CLASSES, 3, config.model.dropout).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.train.lr_f)
        self.generator: PerturbationGenerator | None = None
        if self.method in ("gat", "dropout_gat"):
            self.generator = PerturbationGenerator(3).to(device)
            self.optimizer_g = torch.optim.Adam(self.generator.parameters(), lr=config.gat.lr_g)
        self.model.train()

        dataset = TensorDataset(images.float() / 255.0, labels)
        batch_size = config.data.batch_size
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
            generator=torch.Generator().manual_seed(config.seed),
        )
        # GAT's generator steps take their batches from a second, independently shuffled loader
        generator_loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
            generator=torch.Generator().manual_seed(config.seed + 1),
        )
        self.batches = endless(loader)
        self.generator_batches = endless(generator_loader)

    def step(self) -> None:
        """One training iteration, written out the way a tutorial would."""
        x, y = next(self.batches)
        x, y = x.to(self.device), y.to(self.device)
        model, optimizer, alpha = self.model, self.optimizer, self.alpha

        if self.method in ("baseline", "dropout"):
            loss = F.cross_entropy(model(x), y)

        elif self.method == "random":
            r = torch.randn_like(x)
            r = r / r.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            x_adv = (x + self.eps * r).clamp(0, 1)
            loss = alpha * F.cross_entropy(model(x), y) + (1 - alpha) * F.cross_entropy(model(x_adv), y)

        elif self.method in ("fg_linf", "fg_l2"):
            x.requires_grad_(True)
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            grad = x.grad.detach()
            x = x.detach()
            if self.method == "fg_linf":
                x_adv = x + self.eps * grad.sign()  # Eq. 1
            else:
                x_adv = x + self.eps * grad / (grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-12)  # Eq. 3
            x_adv = x_adv.clamp(0, 1)
            loss = alpha * F.cross_entropy(model(x), y) + (1 - alpha) * F.cross_entropy(model(x_adv), y)

        else:  # gat, dropout_gat: Algorithm 1
            generator = self.generator
            assert generator is not None
            for _ in range(self.k):
                xg, yg = next(self.generator_batches)
                xg, yg = xg.to(self.device), yg.to(self.device)
                # delta = d softmax(F(x))_y / dx
                xg.requires_grad_(True)
                F.softmax(model(xg), dim=1).gather(1, yg.view(-1, 1)).sum().backward()
                delta = xg.grad.detach()
                xg = xg.detach()
                # L_G = mean F(x + G(delta))_y + c_g * mean ||G(delta)||^2   (Eq. 9)
                g = generator(delta)
                x_adv = (xg + g).clamp(0, 1)
                p_true = F.softmax(model(x_adv), dim=1).gather(1, yg.view(-1, 1))
                loss_g = p_true.mean() + self.c_g * g.flatten(1).pow(2).sum(dim=1).mean()
                self.optimizer_g.zero_grad()
                loss_g.backward()
                self.optimizer_g.step()
            # classifier step, Eq. 10, with the perturbation treated as data
            x.requires_grad_(True)
            F.softmax(model(x), dim=1).gather(1, y.view(-1, 1)).sum().backward()
            delta = x.grad.detach()
            x = x.detach()
            with torch.no_grad():
                x_adv = (x + generator(delta)).clamp(0, 1)
            loss = alpha * F.cross_entropy(model(x), y) + (1 - alpha) * F.cross_entropy(model(x_adv), y)

        optimizer.zero_grad()  # also clears what the input-gradient passes left in F's .grad
        loss.backward()
        optimizer.step()
        self.losses.append(loss.item())


# ---------------------------------------------------------------------------------------------
# Engine
# ---------------------------------------------------------------------------------------------


class EngineLoop:
    """The package's path, set up as `gat_tui.training.setup.prepare` does it."""

    def __init__(
        self, config: RunConfig, images: torch.Tensor, labels: torch.Tensor, device: torch.device
    ) -> None:
        channels_last = prefers_channels_last(device)
        images, labels = images.to(device), labels.to(device)  # uint8, resident on the device
        torch.manual_seed(config.seed)
        self.method: TrainingMethod = build_method(config, NUM_CLASSES, IMAGE_SHAPE, device)
        if channels_last:
            for network in self.method.networks().values():
                network.to(memory_format=torch.channels_last)
        self.method.train()
        batch_size = config.data.batch_size
        self.batches = ShuffledBatches(images, labels, batch_size, config.seed, channels_last).endless()
        generator_stream = ShuffledBatches(images, labels, batch_size, config.seed + 1, channels_last).endless()
        self.draw_batch: Callable[[], tuple[torch.Tensor, torch.Tensor]] = lambda: next(generator_stream)

    def step(self) -> None:
        images, labels = next(self.batches)
        # the result stays on the device: reading it here would add the host sync we avoid
        self.method.train_step(images, labels, self.draw_batch)


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


def warm_up(step: Callable[[], None], steps: int, device: torch.device) -> None:
    """Untimed steps: first-call allocations, cuDNN autotuning, lazy init of optimiser state."""
    for _ in range(steps):
        step()
    synchronize(device)


Runner = tuple[str, str]  # (method, path)


def timed_round_robin(
    steps_by_runner: dict[Runner, Callable[[], None]],
    steps: int,
    chunk: int,
    device: torch.device,
    first_reversed: bool,
    progress: Callable[[int], None],
) -> tuple[dict[Runner, float], dict[Runner, int]]:
    """Seconds each runner takes for `steps` steps, all runners taking turns `chunk` steps at a time.

    Also counts each runner's minor page faults: on the CPU, large tensors that the allocator
    maps afresh every step show up there (and in the time), so the JSON keeps them.

    Taking turns in small chunks means a slow spell of a shared machine (CPU throttling, a noisy
    neighbour: seconds long on small VMs) lands on every runner nearly equally, where timing one
    whole block and then the next would hand it to whichever ran at the time. The turn order
    flips every round, so each method's engine and plain runs stay adjacent and neither always
    goes first.
    """
    runners = list(steps_by_runner)
    seconds = {runner: 0.0 for runner in runners}
    faults = {runner: 0 for runner in runners}
    done, turn = 0, int(first_reversed)
    while done < steps:
        count = min(chunk, steps - done)
        for runner in reversed(runners) if turn % 2 else runners:
            step = steps_by_runner[runner]
            synchronize(device)
            faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            started = time.perf_counter()
            for _ in range(count):
                step()
            synchronize(device)
            seconds[runner] += time.perf_counter() - started
            faults[runner] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
        done += count
        turn += 1
        progress(done)
    return seconds, faults


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def report(
    results: dict[str, dict[str, Any]], device: torch.device, meta: dict[str, Any]
) -> dict[str, Any]:
    """Print the table and summary lines; return the summary figures for the JSON file."""
    target = TARGETS.get(device.type)
    table = Table(
        title=f"Training throughput, batch {meta['batch_size']}, {meta['steps']} steps x {meta['repeats']} repeats"
    )
    table.add_column("method")
    table.add_column("engine img/s", justify="right")
    table.add_column("plain img/s", justify="right")
    table.add_column("engine/plain", justify="right")
    for method, figures in results.items():
        ratio = figures["ratio"]
        style = "" if target is None else ("green" if ratio >= target else "red")
        table.add_row(
            method,
            f"{figures['engine_img_per_s']:.1f}",
            f"{figures['plain_img_per_s']:.1f}",
            f"[{style}]{ratio:.3f}x[/{style}]" if style else f"{ratio:.3f}x",
        )
    console.print(table)

    gat_over_fgsm: float | None = None
    if "gat" in results and "fg_linf" in results:
        # time per image is 1 / (img/s), so gat's time over fg_linf's is fg_linf's rate over gat's
        gat_over_fgsm = results["fg_linf"]["engine_img_per_s"] / results["gat"]["engine_img_per_s"]
        console.print(
            f"GAT/FGSM time per image (engine): {gat_over_fgsm:.2f}x  (paper: GAT 3-4x slower than fast-gradient)"
        )
    else:
        console.print("GAT/FGSM time per image: n/a (needs both gat and fg_linf in --methods)")
    if target is not None:
        met = all(figures["ratio"] >= target for figures in results.values())
        verdict = "met" if met else "NOT met"
        console.print(f"target on {device.type}: engine >= {target}x plain for every method: {verdict}")
    console.print(
        f"device: {meta['device_name']} ({meta['device']}), torch {meta['torch']}, "
        f"threads {meta['threads']} (interop {meta['interop_threads']})"
    )
    if meta["allocator_env"]:
        console.print(f"allocator settings: {meta['allocator_env']}")
    return {"gat_over_fgsm_time_per_image": gat_over_fgsm, "target_ratio": target}


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, metavar="METHOD",
                        help=f"subset of {', '.join(METHODS)} (default: all)")
    parser.add_argument("--images", type=int, default=2048, help="synthetic training images")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of each runner before timing")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per repeat (default: 10 on cpu, 100 on cuda/mps)")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats; the table shows their median")
    parser.add_argument("--chunk", type=int, default=None,
                        help="steps per turn before the next runner's (default: 1 on cpu, all --steps on gpu)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op CPU threads (default: torch's choice); 1 steadies numbers on a "
                        "throttled shared VM, where preempted threads stall every parallel region")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write every figure here")
    args = parser.parse_args(argv)
    if args.images < args.batch_size:
        parser.error("--images must be at least --batch-size")
    if min(args.batch_size, args.repeats) < 1 or args.warmup < 0 or any(
        value is not None and value < 1 for value in (args.steps, args.chunk, args.threads)
    ):
        parser.error("--batch-size, --repeats, --steps, --chunk and --threads must be positive, --warmup not negative")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    configure_backends(device)
    steps = args.steps if args.steps is not None else (10 if device.type == "cpu" else 100)
    # per-step turns cost nothing on the CPU (no sync to pay); on a GPU a sync per step would
    # stall the queue the engine keeps full, so there each runner's block is timed whole
    chunk = args.chunk if args.chunk is not None else (1 if device.type == "cpu" else steps)
    torch.manual_seed(args.seed)
    images, labels = synthetic_data(args.images, args.seed)
    meta: dict[str, Any] = {
        "device": str(device),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "channels_last_engine": prefers_channels_last(device),
        # glibc's malloc thresholds change CPU step times by up to 2x (large activations are
        # mmapped and page-faulted anew each step by default), so runs record them
        "allocator_env": {
            name: value
            for name, value in os.environ.items()
            if name.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD"))
        },
        "images": args.images,
        "batch_size": args.batch_size,
        "warmup": args.warmup,
        "steps": steps,
        "repeats": args.repeats,
        "chunk": chunk,
        "seed": args.seed,
        "methods": list(args.methods),
    }
    console.print(
        f"[bold]throughput[/bold]: {len(args.methods)} methods x 2 paths x {args.repeats} repeats of "
        f"{steps} steps (batch {args.batch_size}) on {meta['device_name']}"
    )

    # every (method, path) is built and warmed up first, then all take turns in the timed region
    steps_by_runner: dict[Runner, Callable[[], None]] = {}
    run_started = time.perf_counter()
    for method in args.methods:
        config = method_config(method, args.batch_size, args.seed)
        steps_by_runner[(method, "engine")] = EngineLoop(config, images, labels, device).step
        steps_by_runner[(method, "plain")] = PlainLoop(config, images, labels, device).step
        for path in ("engine", "plain"):
            warm_up(steps_by_runner[(method, path)], args.warmup, device)
        console.print(f"  built and warmed up {method} ({time.perf_counter() - run_started:.0f} s elapsed)")

    seconds: dict[Runner, list[float]] = {runner: [] for runner in steps_by_runner}
    faults: dict[Runner, list[float]] = {runner: [] for runner in steps_by_runner}
    for repeat in range(args.repeats):

        def progress(done: int, repeat: int = repeat) -> None:
            console.print(
                f"  repeat {repeat + 1}/{args.repeats}: {done}/{steps} steps of every method "
                f"({time.perf_counter() - run_started:.0f} s elapsed)"
            )

        timed, faulted = timed_round_robin(steps_by_runner, steps, chunk, device, repeat % 2 == 1, progress)
        for runner, value in timed.items():
            seconds[runner].append(value)
            faults[runner].append(faulted[runner] / steps)
        for method in args.methods:
            console.print(
                f"  repeat {repeat + 1}/{args.repeats} {method:<12} "
                f"engine {steps * args.batch_size / timed[(method, 'engine')]:8.1f} img/s, "
                f"plain {steps * args.batch_size / timed[(method, 'plain')]:8.1f} img/s"
            )

    results: dict[str, dict[str, Any]] = {}
    for method in args.methods:
        engine = [steps * args.batch_size / value for value in seconds[(method, "engine")]]
        plain = [steps * args.batch_size / value for value in seconds[(method, "plain")]]
        results[method] = {
            "engine_img_per_s": statistics.median(engine),
            "plain_img_per_s": statistics.median(plain),
            # each repeat's two paths ran interleaved, so their ratio is the figure least
            # disturbed by machine noise; the median is taken over these paired ratios
            "ratio": statistics.median([e / p for e, p in zip(engine, plain)]),
            "engine_img_per_s_repeats": engine,
            "plain_img_per_s_repeats": plain,
            "engine_seconds_repeats": seconds[(method, "engine")],
            "plain_seconds_repeats": seconds[(method, "plain")],
            "engine_minor_page_faults_per_step_repeats": faults[(method, "engine")],
            "plain_minor_page_faults_per_step_repeats": faults[(method, "plain")],
        }

    summary = report(results, device, meta)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "summary": summary, "methods": results}, indent=2) + "\n",
                             encoding="utf-8")
        console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
