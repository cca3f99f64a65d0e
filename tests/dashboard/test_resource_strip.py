"""The training screen's resource strip: its text, its fallbacks without psutil, and that it shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import wait_for
from textual.app import App, ComposeResult

from gat_tui.config import RunConfig
from gat_tui.dashboard.app import GatTuiApp
from gat_tui.dashboard.training_screen import TrainingScreen
from gat_tui.dashboard.widgets.resource_strip import (
    GIB,
    GpuSample,
    ResourceSample,
    ResourceSampler,
    ResourceStrip,
    format_resources,
)
from gat_tui.training.request import TrainingRequest


def test_the_strip_text() -> None:
    assert format_resources(ResourceSample(153.4, int(1.25 * GIB))) == "CPU 153%  mem 1.2 GiB"
    assert format_resources(ResourceSample(None, None)) == "CPU -  mem -"
    gpu = GpuSample(allocated=512 * 1024**2, reserved=3 * GIB, total=80 * GIB, utilisation=87.0)
    assert format_resources(ResourceSample(99.0, 300 * 1024**2, gpu)) == "CPU 99%  mem 300 MiB  GPU mem 512 MiB (res 3.0) / 80.0 GiB  GPU 87%"
    assert format_resources(ResourceSample(1.0, GIB, GpuSample(GIB, GIB, 2 * GIB))).endswith("GPU mem 1.0 GiB (res 1.0) / 2.0 GiB")


def test_the_sampler_without_psutil_and_on_the_cpu() -> None:
    sampler = ResourceSampler("cpu")
    sampler._process = None  # as where psutil is missing
    sum(i * i for i in range(20_000))
    sample = sampler.sample()
    assert sample.cpu_percent is not None and sample.cpu_percent >= 0
    assert sample.rss is None or sample.rss > 1024**2  # /proc/self/status where there is one
    assert sample.gpu is None


def test_no_gpu_figures_without_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        sample = ResourceSampler("cuda").sample()
        assert sample.gpu is not None and 0 <= sample.gpu.allocated <= sample.gpu.reserved <= sample.gpu.total
    else:
        assert ResourceSampler("cuda").sample().gpu is None


class StripApp(App[None]):
    def compose(self) -> ComposeResult:
        yield ResourceStrip(interval=0.05)


@pytest.mark.asyncio
async def test_the_strip_shows_cpu_and_memory() -> None:
    app = StripApp()
    async with app.run_test(size=(80, 3)) as pilot:
        strip = app.query_one(ResourceStrip)
        await wait_for(pilot, lambda: strip.text.startswith("CPU ") and " mem " in strip.text, timeout=10)
        assert "CPU" in str(strip.render())


@pytest.mark.asyncio
async def test_the_training_screen_shows_the_strip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the training screen, under the header (the training itself left out: only the strip matters here)."""
    monkeypatch.setattr(TrainingScreen, "train", lambda self: None)
    request = TrainingRequest(RunConfig(name="strip", device="cpu"), tmp_path / "runs" / "strip")
    app = GatTuiApp(request, color=False, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, TrainingScreen), timeout=10)
        strip = app.screen.query_one(ResourceStrip)
        await wait_for(pilot, lambda: strip.text.startswith("CPU ") and " mem " in strip.text, timeout=10)
        assert strip.region.y == 2 and strip.region.height == 1  # the row under the two-line header
