"""Training throughput of every method: the gat_tui engine against a plain PyTorch loop.

What is measured
----------------
Training images per second of one training step (one classifier update on a minibatch of
`--batch-size` images; for GAT that step also includes its k generator updates, each on a fresh
minibatch, but only the classifier's minibatch is counted as trained images) for the methods
baseline, dropout, random, fg_linf, fg_l2, gat and dropout_gat, and the field's baselines pgd_at
(7 steps, Madry et al.'s CIFAR setting) and trades (10 steps), on Table 1's All-Conv network, and
for GAT on ResNet-18 (`model.classifier = "torchvision:resnet18"`, as presets/cifar10_resnet18_gat),
two ways:

- engine: the package's own path. The synthetic data sits on the device as uint8 and is drawn
  by `gat_tui.training.batches.ShuffledBatches`; the networks come from `gat_tui.methods.build_method`
  (channels_last where `prefers_channels_last` says so) and each step is
  `method.train_step(images, labels, draw_batch)` with no host sync inside the timed region.
- plain: the loop a researcher would write by hand, defined below in `PlainLoop`: a float32
  `TensorDataset` on the CPU behind a shuffling `DataLoader`, `.to(device)` per batch, the same
  networks and `torch.optim.Adam`, the algorithm written out inline, and `loss.item()` every step.

Each path runs in the process it would run in: the engine in a process set up as `gat-tui` sets
itself up (`gat_tui.allocator.tune_allocator`: glibc's malloc thresholds raised), the plain loop
in an ordinary Python process (the C library's default allocator). As the allocator setting is
process-global, the script starts one worker process per allocator setting (`--engine-allocator`,
`--plain-allocator`) and drives them from here; with `--plain-both-allocators` the plain loop also
runs in the engine's process, which separates the engine's own gain from the allocator's.

Both paths get the same seed, configuration and backend settings (`configure_backends`). All
(row, path) runners are built and warmed up with `--warmup` steps first; then every repeat times
`--steps` steps of each (`--resnet-steps` for the ResNet-18 row), the runners taking turns so
machine noise hits them alike: on the CPU a turn is `--chunk` steps (default 1; small VMs throttle
for seconds at a time), on a GPU a turn is the whole repeat (a sync per step would stall the queue
the engine keeps full). Only one worker computes at a time: the others wait for their next turn.
The turn order flips every round, keeping each row's runners adjacent. Every timed region starts
and ends with a device sync, inside the worker (the messages between processes are not timed).
The table shows medians over repeats: img/s of each path, and the engine/plain ratio as the median
of the per-repeat ratios (each from interleaved runs), and each path's minor page faults per step
(glibc's default maps large activations afresh every step; the tuned process should show ~0).

Targets (from the issues; reported, never asserted)
---------------------------------------------------
- CPU: every row's engine at >= 1.3x the plain loop's images per second;
- H100-class GPU: every row's engine at >= 1.5x the plain loop.
The paper reports GAT training 3-4x slower than fast-gradient training; the GAT/FGSM line gives
this implementation's figure (engine time per image of `gat` over that of `fg_linf`), and the
same ratio is printed for pgd_at and trades.

Run: `python benchmarks/throughput.py [--device auto|cpu|cuda|mps] [--methods gat fg_linf ...]
[--json results.json]`. The default CPU run takes about 5 minutes on two quiet cores (estimated;
about an hour at a load average of 11), the ResNet-18 row kept short there: batch 16, 2 steps per
repeat, 1 warm-up step (`--resnet-batch-size`, `--resnet-steps`, `--resnet-warmup`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import resource
import statistics
import time
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader, TensorDataset

from gat_tui.allocator import ENV_VAR, tune_allocator
from gat_tui.architectures import Architecture, build_classifier, build_generator
from gat_tui.config import NormalizeConfig, RunConfig
from gat_tui.device import configure_backends, prefers_channels_last, select_device
from gat_tui.methods import TrainingMethod, build_method
from gat_tui.training.batches import ShuffledBatches

# ---------------------------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------------------------

METHODS = ("baseline", "dropout", "random", "fg_linf", "fg_l2", "gat", "dropout_gat", "pgd_at", "trades")
RESNET_ROW = "gat_resnet18"  # GAT with torchvision's ResNet-18 (CIFAR stem) as the classifier
ROWS = (*METHODS, RESNET_ROW)
NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)

# the cifar presets' values: eps is an L-inf bound (8/255) for fg_linf and an L2 norm otherwise
EPS = {"random": 1.5, "fg_linf": 0.0314, "fg_l2": 1.5, "pgd_at": 8 / 255, "trades": 8 / 255}
# presets/cifar10_pgd_at.toml and cifar10_trades.toml: PGD iterations and step (L-inf)
PGD_STEPS = {"pgd_at": 7, "trades": 10}
PGD_STEP_SIZE = 2 / 255
DROPOUT_METHODS = ("dropout", "dropout_gat")
# presets/cifar10_resnet18_gat.toml: CIFAR-10's per-channel mean and std inside the model
CIFAR10_NORMALIZE = NormalizeConfig(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))
TARGETS = {"cpu": 1.3, "cuda": 1.5}  # engine/plain ratio the issues ask for, per device type
ALLOCATORS = ("tuned", "default")  # gat-tui's start-up setting, and the C library's own
# glibc settings inherited from this shell would make the "default" worker not the default
GLIBC_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
                    "MALLOC_ARENA_MAX", "GLIBC_TUNABLES")

console = Console(soft_wrap=True)  # progress lines stay one line each in logs and pipes
# the table's eight columns fit when piped to a log too (rich assumes 80 columns there)
table_console = Console(width=max(150, console.width))


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
        train=dataclasses.replace(base.train, lr_f=1e-3, alpha=0.0 if method == "pgd_at" else 0.5),
        perturbation=dataclasses.replace(
            base.perturbation, eps=EPS.get(method, 1.0), clip=True, norm="linf", steps=PGD_STEPS.get(method, 10), step_size=PGD_STEP_SIZE,
        ),
        gat=dataclasses.replace(base.gat, c_g=0.01, k=1, lr_g=1e-6),
    )


def row_config(row: str, batch_size: int, seed: int) -> RunConfig:
    """A row's configuration: a method on All-Conv, or GAT on ResNet-18 as its preset sets it."""
    if row != RESNET_ROW:
        return method_config(row, batch_size, seed)
    config = method_config("gat", batch_size, seed)
    model = dataclasses.replace(config.model, classifier="torchvision:resnet18", normalize=CIFAR10_NORMALIZE)
    return dataclasses.replace(config, name=f"throughput_{row}", model=model)


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
    on a `requires_grad` input, and `loss.item()` each step for the log. The networks are the
    engine's (Table 1's, or torchvision's ResNet-18 with the CIFAR stem): only the loop differs.
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
        self.steps, self.step_size, self.beta = config.perturbation.steps, config.perturbation.step_size, config.trades.beta
        self.losses: list[float] = []

        torch.manual_seed(config.seed)
        architecture = Architecture.from_config(config.model)
        self.model = build_classifier(architecture, NUM_CLASSES, IMAGE_SHAPE, config.model.dropout).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.train.lr_f)
        self.generator: torch.nn.Module | None = None
        if self.method in ("gat", "dropout_gat"):
            self.generator = build_generator(architecture, IMAGE_SHAPE).to(device)
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

        elif self.method == "pgd_at":  # Madry et al.: L-inf PGD from a uniform random start, alpha = 0
            x_adv = (x + torch.empty_like(x).uniform_(-self.eps, self.eps)).clamp(0, 1)
            for _ in range(self.steps):
                x_adv.requires_grad_(True)
                grad, = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
                x_adv = torch.min(torch.max(x_adv.detach() + self.step_size * grad.sign(), x - self.eps), x + self.eps).clamp(0, 1)
            loss = alpha * F.cross_entropy(model(x), y) + (1 - alpha) * F.cross_entropy(model(x_adv), y)

        elif self.method == "trades":  # Zhang et al.'s train_trades_cifar10.py, written out
            model.eval()
            with torch.no_grad():
                p_clean = F.softmax(model(x), dim=1)
            x_adv = x + 0.001 * torch.randn_like(x)
            for _ in range(self.steps):
                x_adv.requires_grad_(True)
                kl = F.kl_div(F.log_softmax(model(x_adv), dim=1), p_clean, reduction="sum")
                grad, = torch.autograd.grad(kl, x_adv)
                x_adv = torch.min(torch.max(x_adv.detach() + self.step_size * grad.sign(), x - self.eps), x + self.eps).clamp(0, 1)
            model.train()
            logits = model(x)
            kl = F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(logits, dim=1), reduction="batchmean")
            loss = F.cross_entropy(logits, y) + self.beta * kl

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
# Worker processes: one per allocator setting
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WorkerSpec:
    allocator: str  # "tuned" (as `gat-tui` starts) or "default" (an ordinary Python process)
    device: str
    threads: int | None
    images: int
    seed: int


def warm_up(step: Callable[[], None], steps: int, device: torch.device) -> None:
    """Untimed steps: first-call allocations, cuDNN autotuning, lazy init of optimiser state."""
    for _ in range(steps):
        step()
    synchronize(device)


def worker_main(connection: Connection, spec: WorkerSpec) -> None:
    """Serve build/run requests in a process whose allocator is `spec.allocator`.

    The allocator is set first, before the data and networks exist, exactly as `gat-tui`'s
    start-up does (`tune_allocator` is the function the command line calls).
    """
    try:
        if spec.allocator == "tuned":
            setting = tune_allocator({ENV_VAR: "tuned"})
            status = {"applied": setting.applied, "reason": setting.reason}
        else:
            status = {"applied": False, "reason": "the C library's default allocator"}
        if spec.threads is not None:
            torch.set_num_threads(spec.threads)
        device = select_device(spec.device)
        configure_backends(device)
        images, labels = synthetic_data(spec.images, spec.seed)
        status.update(pid=os.getpid(), threads=torch.get_num_threads(), interop_threads=torch.get_num_interop_threads())
        connection.send(("ready", status))
        steps: dict[str, Callable[[], None]] = {}
        while True:
            request = connection.recv()
            if request[0] == "build":
                _, key, row, path, batch_size, warmup = request
                loop_class = EngineLoop if path == "engine" else PlainLoop
                steps[key] = loop_class(row_config(row, batch_size, spec.seed), images, labels, device).step
                warm_up(steps[key], warmup, device)
                connection.send(("built", None))
            elif request[0] == "run":
                _, key, count = request
                step = steps[key]
                synchronize(device)
                # this process runs nothing else meanwhile, so its fault count is this runner's
                faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                started = time.perf_counter()
                for _ in range(count):
                    step()
                synchronize(device)
                seconds = time.perf_counter() - started
                connection.send(("ran", (seconds, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before)))
            else:
                connection.send(("stopped", None))
                return
    except BaseException:  # handed to the driver, which stops the run and prints it
        connection.send(("error", traceback.format_exc()))


class Worker:
    """The driver's handle on one worker process: requests and their answers, in order."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked heap state
        self.connection, child = context.Pipe()
        self.process = context.Process(target=worker_main, args=(child, spec), daemon=True)
        # glibc reads its MALLOC_* settings at process start: inherited ones would make the
        # "default" worker not the default, so neither worker gets them
        saved = {name: os.environ.pop(name) for name in GLIBC_MALLOC_ENV if name in os.environ}
        try:
            self.process.start()
        finally:
            os.environ.update(saved)
        child.close()
        self.status: dict[str, Any] = self._answer("ready")

    def request(self, *message: Any) -> Any:
        self.connection.send(message)
        return self._answer({"build": "built", "run": "ran"}[message[0]])

    def _answer(self, expected: str) -> Any:
        try:
            kind, payload = self.connection.recv()
        except EOFError:
            raise SystemExit(f"the {self.spec.allocator}-allocator worker died (exit code {self.process.exitcode})") from None
        if kind == "error":
            raise SystemExit(f"the {self.spec.allocator}-allocator worker failed:\n{payload}")
        assert kind == expected, f"worker answered {kind!r} to a request expecting {expected!r}"
        return payload

    def close(self) -> None:
        try:
            if self.process.is_alive():
                self.connection.send(("stop",))
                self.process.join(timeout=30)
        except OSError:  # it has gone already (after an error it reported)
            pass


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Runner:
    row: str
    column: str  # "engine", "plain", or "plain_same" (the plain loop in the engine's process)
    allocator: str
    steps: int  # timed steps per repeat

    @property
    def key(self) -> str:
        return f"{self.row}/{self.column}"

    @property
    def path(self) -> str:
        return "engine" if self.column == "engine" else "plain"


def timed_round_robin(
    runners: list[Runner],
    workers: dict[str, Worker],
    chunk: int,
    first_reversed: bool,
    progress: Callable[[int], None],
) -> tuple[dict[Runner, float], dict[Runner, int]]:
    """Seconds and minor page faults of each runner over its `steps` steps, runners taking turns.

    Taking turns in small chunks means a slow spell of a shared machine (CPU throttling, a noisy
    neighbour: seconds long on small VMs) lands on every runner nearly equally, where timing one
    whole block and then the next would hand it to whichever ran at the time. The turn order
    flips every round, so each row's runners stay adjacent and none always goes first. A runner
    with fewer steps (the ResNet-18 row) takes part in the first rounds only.
    """
    seconds = {runner: 0.0 for runner in runners}
    faults = {runner: 0 for runner in runners}
    done, turn = 0, int(first_reversed)
    while done < max(runner.steps for runner in runners):
        for runner in reversed(runners) if turn % 2 else runners:
            count = min(chunk, runner.steps - done)
            if count <= 0:
                continue
            taken, faulted = workers[runner.allocator].request("run", runner.key, count)
            seconds[runner] += taken
            faults[runner] += faulted
        done += chunk
        turn += 1
        progress(min(done, max(runner.steps for runner in runners)))
    return seconds, faults


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def report(results: dict[str, dict[str, Any]], device: torch.device, meta: dict[str, Any]) -> dict[str, Any]:
    """Print the table and summary lines; return the summary figures for the JSON file."""
    target = TARGETS.get(device.type)
    engine_allocator, plain_allocator = meta["engine_allocator"], meta["plain_allocator"]
    both = meta["plain_both_allocators"]
    table = Table(
        title=f"Training throughput, {meta['steps']} steps x {meta['repeats']} repeats "
        f"(engine: {engine_allocator} allocator, plain loop: {plain_allocator})"
    )
    table.add_column("row")
    table.add_column("batch", justify="right")
    table.add_column(f"engine img/s ({engine_allocator})", justify="right")
    table.add_column(f"plain img/s ({plain_allocator})", justify="right")
    table.add_column("engine/plain", justify="right")
    if both:
        table.add_column(f"plain img/s ({engine_allocator})", justify="right")
        table.add_column("engine/plain same allocator", justify="right")
    table.add_column("faults/step engine | plain", justify="right")
    for row, figures in results.items():
        ratio = figures["ratio"]
        style = "" if target is None else ("green" if ratio >= target else "red")
        cells = [
            row,
            str(figures["batch_size"]),
            f"{figures['engine_img_per_s']:.1f}",
            f"{figures['plain_img_per_s']:.1f}",
            f"[{style}]{ratio:.3f}x[/{style}]" if style else f"{ratio:.3f}x",
        ]
        if both:
            cells += [f"{figures['plain_same_img_per_s']:.1f}", f"{figures['ratio_same_allocator']:.3f}x"]
        cells.append(f"{figures['engine_faults_per_step']:.0f} | {figures['plain_faults_per_step']:.0f}")
        table.add_row(*cells)
    table_console.print(table)

    gat_over_fgsm: float | None = None
    if "gat" in results and "fg_linf" in results:
        # time per image is 1 / (img/s), so gat's time over fg_linf's is fg_linf's rate over gat's
        gat_over_fgsm = results["fg_linf"]["engine_img_per_s"] / results["gat"]["engine_img_per_s"]
        console.print(
            f"GAT/FGSM time per image (engine): {gat_over_fgsm:.2f}x  (paper: GAT 3-4x slower than fast-gradient)"
        )
    else:
        console.print("GAT/FGSM time per image: n/a (needs both gat and fg_linf in --methods)")
    over_fgsm: dict[str, float] = {}
    for row in ("pgd_at", "trades"):
        if row in results and "fg_linf" in results:
            over_fgsm[row] = results["fg_linf"]["engine_img_per_s"] / results[row]["engine_img_per_s"]
            console.print(f"{row}/FGSM time per image (engine): {over_fgsm[row]:.2f}x")
    missed: list[str] = []
    if target is not None:
        missed = [row for row, figures in results.items() if figures["ratio"] < target]
        verdict = "met" if not missed else f"NOT met for {', '.join(missed)}"
        console.print(f"target on {device.type}: engine >= {target}x plain for every row: {verdict}")
    console.print(
        f"device: {meta['device_name']} ({meta['device']}), torch {meta['torch']}, "
        f"threads {meta['threads']} (interop {meta['interop_threads']})"
    )
    for allocator, status in meta["workers"].items():
        console.print(f"{allocator}-allocator worker: {status['reason']}")
    if meta["allocator_env"]:
        console.print(f"inherited allocator settings (MALLOC_*/GLIBC_TUNABLES withheld from the workers): {meta['allocator_env']}")
    load = meta.get("load_average")
    if load is not None:
        console.print(f"load average at the start {load[0]}, at the end {meta.get('load_average_end')} "
                      f"on {os.cpu_count()} CPUs (ratios are measured pairwise under the same load)")
    return {
        "gat_over_fgsm_time_per_image": gat_over_fgsm, "over_fgsm_time_per_image": over_fgsm,
        "target_ratio": target, "target_missed_by": missed,
    }


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--methods", nargs="+", default=list(ROWS), choices=ROWS, metavar="ROW",
                        help=f"subset of {', '.join(ROWS)} (default: all)")
    parser.add_argument("--images", type=int, default=2048, help="synthetic training images")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of each runner before timing")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per repeat (default: 10 on cpu, 100 on cuda/mps)")
    parser.add_argument("--resnet-steps", type=int, default=None,
                        help=f"timed steps per repeat of the {RESNET_ROW} row (default: 2 on cpu, --steps on cuda/mps)")
    parser.add_argument("--resnet-warmup", type=int, default=1,
                        help=f"untimed steps of each {RESNET_ROW} runner before timing (its first step is the warm-up)")
    parser.add_argument("--resnet-batch-size", type=int, default=None,
                        help=f"minibatch of the {RESNET_ROW} row (default: 16 on cpu, --batch-size on cuda/mps)")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats; the table shows their median")
    parser.add_argument("--chunk", type=int, default=None,
                        help="steps per turn before the next runner's (default: 1 on cpu, all --steps on gpu)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op CPU threads (default: torch's choice); 1 steadies numbers on a "
                        "throttled shared VM, where preempted threads stall every parallel region")
    parser.add_argument("--engine-allocator", default="tuned", choices=ALLOCATORS,
                        help="the engine's process: 'tuned' as `gat-tui` starts (default), or 'default'")
    parser.add_argument("--plain-allocator", default="default", choices=ALLOCATORS,
                        help="the plain loop's process: 'default', an ordinary Python process (default), or 'tuned'")
    parser.add_argument("--plain-both-allocators", action="store_true",
                        help="also run the plain loop in the engine's process: the engine's gain without the allocator's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write every figure here")
    args = parser.parse_args(argv)
    if max(args.batch_size, args.resnet_batch_size or 0) > args.images:
        parser.error("--images must be at least --batch-size and --resnet-batch-size")
    if min(args.batch_size, args.repeats) < 1 or min(args.warmup, args.resnet_warmup) < 0 or any(
        value is not None and value < 1
        for value in (args.steps, args.chunk, args.threads, args.resnet_steps, args.resnet_batch_size)
    ):
        parser.error("--batch-size, --repeats, --steps, --resnet-steps, --resnet-batch-size, --chunk and --threads "
                     "must be positive, --warmup and --resnet-warmup not negative")
    return args


def build_runners(args: argparse.Namespace, on_cpu: bool, steps: int) -> list[Runner]:
    """Each row's engine and plain runners (and the plain loop in the engine's process, if asked)."""
    resnet_steps = args.resnet_steps if args.resnet_steps is not None else (2 if on_cpu else steps)
    runners: list[Runner] = []
    for row in args.methods:
        row_steps = resnet_steps if row == RESNET_ROW else steps
        runners.append(Runner(row, "engine", args.engine_allocator, row_steps))
        runners.append(Runner(row, "plain", args.plain_allocator, row_steps))
        if args.plain_both_allocators:
            runners.append(Runner(row, "plain_same", args.engine_allocator, row_steps))
    return runners


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.plain_both_allocators and args.engine_allocator == args.plain_allocator:
        args.plain_both_allocators = False  # the plain column already runs in the engine's setting
    device = select_device(args.device)  # here only to name it and pick defaults: the workers compute
    on_cpu = device.type == "cpu"
    steps = args.steps if args.steps is not None else (10 if on_cpu else 100)
    # per-step turns cost nothing on the CPU (no sync to pay); on a GPU a sync per step would
    # stall the queue the engine keeps full, so there each runner's block is timed whole
    chunk = args.chunk if args.chunk is not None else (1 if on_cpu else steps)
    resnet_batch = args.resnet_batch_size if args.resnet_batch_size is not None else (16 if on_cpu else args.batch_size)
    runners = build_runners(args, on_cpu, steps)
    batch_of = {row: resnet_batch if row == RESNET_ROW else args.batch_size for row in args.methods}
    meta: dict[str, Any] = {
        "device": str(device),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "channels_last_engine": prefers_channels_last(device),
        "engine_allocator": args.engine_allocator,
        "plain_allocator": args.plain_allocator,
        "plain_both_allocators": args.plain_both_allocators,
        # what this shell sets; the MALLOC_*/GLIBC_TUNABLES ones are withheld from the workers
        "allocator_env": {
            name: value
            for name, value in os.environ.items()
            if name.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD", ENV_VAR))
        },
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "images": args.images,
        "batch_size": args.batch_size,
        "resnet_batch_size": resnet_batch,
        "warmup": args.warmup,
        "resnet_warmup": args.resnet_warmup,
        "steps": steps,
        "resnet_steps": next((runner.steps for runner in runners if runner.row == RESNET_ROW), None),
        "repeats": args.repeats,
        "chunk": chunk,
        "seed": args.seed,
        "methods": list(args.methods),
    }
    if "LD_PRELOAD" in os.environ:
        console.print(f"[yellow]LD_PRELOAD={os.environ['LD_PRELOAD']} reaches both workers: 'default' is not glibc's[/yellow]")
    console.print(
        f"[bold]throughput[/bold]: {len(args.methods)} rows x {len(runners) // len(args.methods)} runners x "
        f"{args.repeats} repeats of {steps} steps (batch {args.batch_size}; {RESNET_ROW}: "
        f"{meta['resnet_steps']} steps, batch {resnet_batch}) on {meta['device_name']}"
    )

    run_started = time.perf_counter()
    workers: dict[str, Worker] = {}
    try:
        for allocator in dict.fromkeys(runner.allocator for runner in runners):
            workers[allocator] = Worker(WorkerSpec(allocator, args.device, args.threads, args.images, args.seed))
        first = next(iter(workers.values())).status
        meta.update(threads=first["threads"], interop_threads=first["interop_threads"],
                    workers={allocator: worker.status for allocator, worker in workers.items()})
        if args.engine_allocator == "tuned" and not workers["tuned"].status["applied"]:
            console.print(f"[yellow]the tuned worker could not tune: {workers['tuned'].status['reason']}[/yellow]")
        # every runner is built and warmed up first, then all take turns in the timed region
        for row in args.methods:
            for runner in (runner for runner in runners if runner.row == row):
                warmup = args.resnet_warmup if row == RESNET_ROW else args.warmup
                workers[runner.allocator].request("build", runner.key, row, runner.path, batch_of[row], warmup)
            console.print(f"  built and warmed up {row} ({time.perf_counter() - run_started:.0f} s elapsed)")

        seconds: dict[Runner, list[float]] = {runner: [] for runner in runners}
        faults: dict[Runner, list[float]] = {runner: [] for runner in runners}
        for repeat in range(args.repeats):

            def progress(done: int, repeat: int = repeat) -> None:
                console.print(f"  repeat {repeat + 1}/{args.repeats}: {done}/{steps} rounds "
                              f"({time.perf_counter() - run_started:.0f} s elapsed)")

            timed, faulted = timed_round_robin(runners, workers, chunk, repeat % 2 == 1, progress)
            for runner in runners:
                seconds[runner].append(timed[runner])
                faults[runner].append(faulted[runner] / runner.steps)
                console.print(
                    f"  repeat {repeat + 1}/{args.repeats} {runner.row:<12} {runner.column:<10} ({runner.allocator}) "
                    f"{runner.steps * batch_of[runner.row] / timed[runner]:8.1f} img/s"
                )
    finally:
        for worker in workers.values():
            worker.close()
    meta["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    meta["seconds"] = time.perf_counter() - run_started

    results: dict[str, dict[str, Any]] = {}
    for row in args.methods:
        by_column = {runner.column: runner for runner in runners if runner.row == row}
        rate = {column: [runner.steps * batch_of[row] / value for value in seconds[runner]]
                for column, runner in by_column.items()}
        engine, plain = rate["engine"], rate["plain"]
        figures: dict[str, Any] = {
            "batch_size": batch_of[row],
            "steps": by_column["engine"].steps,
            "engine_img_per_s": statistics.median(engine),
            "plain_img_per_s": statistics.median(plain),
            # each repeat's paths ran interleaved, so their ratio is the figure least disturbed
            # by machine noise; the median is taken over these paired ratios
            "ratio": statistics.median([e / p for e, p in zip(engine, plain)]),
            "engine_faults_per_step": statistics.median(faults[by_column["engine"]]),
            "plain_faults_per_step": statistics.median(faults[by_column["plain"]]),
        }
        if "plain_same" in rate:
            figures["plain_same_img_per_s"] = statistics.median(rate["plain_same"])
            figures["ratio_same_allocator"] = statistics.median([e / p for e, p in zip(engine, rate["plain_same"])])
        for column, runner in by_column.items():
            figures[f"{column}_img_per_s_repeats"] = rate[column]
            figures[f"{column}_seconds_repeats"] = seconds[runner]
            figures[f"{column}_minor_page_faults_per_step_repeats"] = faults[runner]
        results[row] = figures

    summary = report(results, device, meta)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "summary": summary, "methods": results}, indent=2) + "\n",
                             encoding="utf-8")
        console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
