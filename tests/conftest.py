"""Shared test settings and helpers: small, seeded, CPU only, never the network or the user's folders.

The groups: `unit/` (one module each, no App, no subprocess), `engine/` (training and resume on
tiny synthetic data), `cli/` (the installed `gat-tui` script in a subprocess), `dashboard/`
(the real App driven by Textual's pilot). Tests marked `slow` (a training of several seconds,
a subprocess or the App) are skipped by `pytest -m "not slow"`, the quick loop and mutmut's.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest
import torch

import gat_tui.data.cifar  # noqa: F401  (torchvision, ~1 s; imported once here, not in each forked mutmut run's first fixture)
from gat_tui.config import DataConfig, EvalConfig, GatConfig, RunConfig, TrainConfig, config_to_toml

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "gat-tui"
_MUTMUT_TEMP = Path(tempfile.gettempdir()) / "gat-tui-mutmut"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # datasets and runs go to the test's own folder, never the user's cache or data dir
    monkeypatch.setenv("GAT_TUI_DATA_DIR", str(tmp_path / "datasets"))
    monkeypatch.setenv("GAT_TUI_RUNS_DIR", str(tmp_path / "runs"))
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never touch the network: any connection attempt fails at once, as offline."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr("gat_tui.data.cifar.download_and_extract_archive", refuse)


@pytest.fixture
def pyautoattack() -> object:
    """The pyautoattack package (an optional extra), or the test skipped with how to install it."""
    return pytest.importorskip("pyautoattack", reason='pyautoattack is not installed: pip install -e ".[autoattack]" (the test extra has it)')


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def presets_dir() -> Path:
    """The shipped presets' one home, package data (`./presets` in the checkout links to it)."""
    return REPO_ROOT / "gat_tui" / "preset_files"


class Cli(Protocol):
    def __call__(self, *args: str, cwd: Path = ..., env: dict[str, str] | None = ...) -> subprocess.CompletedProcess[str]: ...


def run_cli(*args: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed `gat-tui` script (or `python -m gat_tui`) as a user runs it."""
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "gat_tui"]
    return subprocess.run(
        command + list(args), cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


@pytest.fixture(scope="session")
def cli() -> Cli:
    return run_cli


async def wait_for(pilot: Any, condition: Callable[[], bool], timeout: float = 90.0) -> None:
    """Let a Textual app run until `condition()` holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting for the dashboard")
        await pilot.pause(0.05)


def tiny_gat_config(name: str, *, epochs: int = 2, panel_size: int, data: dict[str, int], **sections: Any) -> RunConfig:
    """A GAT run of Table 1's networks on 8x8 synthetic images of 3 classes, batches of 16, on the CPU:
    seconds to train. `data` sets the split sizes (and eval_batch_size); `sections` other config
    sections whole (checkpoint=CheckpointConfig(...), logging=...)."""
    return RunConfig(
        name=name,
        method="gat",
        device="cpu",
        data=DataConfig(dataset="synthetic", image_size=8, num_classes=3, batch_size=16, **data),
        train=TrainConfig(epochs=epochs, log_every=2),
        gat=GatConfig(lr_g=1e-3),
        eval=EvalConfig(panel_size=panel_size),
        **sections,
    )


TINY_RUNS = (("baseline", 'set = ["method=baseline"]'), ("gat", ""))
FGM_EVALUATION = '''
[[evaluations]]
name = "fgm"
attack = "fgm-l2"
eps = [0.5, 1.0]
'''


class TinySweep(Protocol):
    def __call__(
        self, folder: Path, *, file: str = ..., name: str = ..., seeds: int = ..., runs: Sequence[tuple[str, str]] = ..., tail: str = ...
    ) -> Path: ...


def write_tiny_sweep(
    folder: Path,
    *,
    file: str = "sweep.toml",
    name: str = "tiny_sweep",
    seeds: int = 2,
    runs: Sequence[tuple[str, str]] = TINY_RUNS,
    tail: str = FGM_EVALUATION,
) -> Path:
    """A sweep file (`folder/file`) of runs of a tiny synthetic preset, written beside it as tiny.toml.

    By default two runs (baseline, gat) with one FGM-L2 evaluation. Each of `runs` is a label and
    the further TOML lines of its [[runs]] entry (set, tune, ...); `tail` follows the runs
    ([[evaluations]], [paper]).
    """
    preset = folder / "tiny.toml"
    preset.write_text(config_to_toml(tiny_gat_config("tiny", panel_size=0, data={"train_size": 96, "val_size": 32, "test_size": 48})))
    entries = "".join(f'[[runs]]\npreset = "{preset}"\nlabel = "{label}"\n{lines}\n' for label, lines in runs)
    path = folder / file
    path.write_text(f'name = "{name}"\nseeds = {seeds}\n{entries}{tail}')
    return path


@pytest.fixture(scope="session")
def tiny_sweep() -> TinySweep:
    return write_tiny_sweep


@pytest.hookimpl(tryfirst=True)  # before pytest's tmp_path plugin reads --basetemp
def pytest_configure(config: pytest.Config) -> None:
    _share_the_cores_between_workers()
    # under mutmut, each forked mutant run gets a temporary folder of its own, removed at its end
    # (`pytest_sessionfinish`): pytest's own numbered folders were never swept in forked runs, and
    # thousands of them (36 GB) filled the disk during a long run
    if "MUTANT_UNDER_TEST" in os.environ and config.option.basetemp is None:
        _MUTMUT_TEMP.mkdir(parents=True, exist_ok=True)
        config.option.basetemp = str(_MUTMUT_TEMP / str(os.getpid()))


def _share_the_cores_between_workers() -> None:
    """Under pytest-xdist (`pytest -n auto`), each worker's torch and the scripts its tests start get an
    equal share of the cores, not all of them each (oversubscribed, the suite ran slower than alone).

    The scripts inherit OMP_NUM_THREADS, so a test comparing a script's run with one in this process
    compares runs at one thread count (CPU results are bit-identical only at equal counts).
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers <= 1 or "OMP_NUM_THREADS" in os.environ:
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    basetemp = session.config.option.basetemp
    if basetemp and Path(basetemp).parent == _MUTMUT_TEMP:  # ours (above), not a --basetemp given by hand
        shutil.rmtree(basetemp, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # everything that runs the installed script or the App is slow by nature
    for item in items:
        if {"cli", "dashboard"} & set(Path(str(item.fspath)).parts[-2:-1]):
            item.add_marker(pytest.mark.slow)
    _order_fastest_first_under_mutmut(items)


def _order_fastest_first_under_mutmut(items: list[pytest.Item]) -> None:
    """Under mutmut, run the tests of a mutant from the fastest (as mutmut timed them) to the slowest.

    mutmut hands its tests over as a set (any order) and stops at the first failure (-x), so a
    mutant that a 0.01 s unit test kills used to wait behind a 5 s training run. Same tests, same
    verdicts; only the time to the first failure changes.
    """
    stats = Path("mutmut-stats.json")  # mutmut runs pytest inside mutants/, where it keeps its timings
    if "MUTANT_UNDER_TEST" not in os.environ or not stats.is_file():
        return
    try:
        durations: dict[str, float] = json.loads(stats.read_text())["duration_by_test"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    items.sort(key=lambda item: durations.get(item.nodeid, float("inf")))
