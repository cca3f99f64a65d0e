"""One line under the run header: the process's CPU and memory, and on CUDA the GPU's memory (and use).

CPU is the process's CPU time over wall time since the last sample (100% is one core busy), from
psutil or else `os.times()`; memory is the resident set, from psutil or else /proc/self/status.
On CUDA, torch.cuda's allocated and reserved memory against the card's total, and its use in
percent where nvidia-ml-py (`pynvml`) is installed. Sampled at most once a second on the UI's
timer, never in the training thread; every sample is cheap and never blocks.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from textual.widgets import Static

GIB = 1024**3


@dataclass(frozen=True)
class GpuSample:
    allocated: int  # bytes held by tensors
    reserved: int  # bytes held by torch's caching allocator
    total: int  # the card's memory
    utilisation: float | None = None  # percent, from NVML where installed


@dataclass(frozen=True)
class ResourceSample:
    cpu_percent: float | None
    rss: int | None  # bytes
    gpu: GpuSample | None = None


def _size(count: int) -> str:
    return f"{count / GIB:.1f} GiB" if count >= GIB else f"{count / 1024**2:.0f} MiB"


def format_resources(sample: ResourceSample) -> str:
    """e.g. `CPU 153%  mem 1.2 GiB  GPU mem 2.1 GiB (res 3.0) / 79.1 GiB  GPU 87%`; `-` where unknown."""
    parts = [
        f"CPU {'-' if sample.cpu_percent is None else f'{sample.cpu_percent:.0f}%'}",
        f"mem {'-' if sample.rss is None else _size(sample.rss)}",
    ]
    gpu = sample.gpu
    if gpu is not None:
        parts.append(f"GPU mem {_size(gpu.allocated)} (res {gpu.reserved / GIB:.1f}) / {_size(gpu.total)}")
        if gpu.utilisation is not None:
            parts.append(f"GPU {gpu.utilisation:.0f}%")
    return "  ".join(parts)


def _rss_from_proc() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class ResourceSampler:
    """Samples this process (and a CUDA device); the first CPU figure is None (no interval yet)."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._process: Any = None
        try:
            import psutil

            self._process = psutil.Process()
            self._process.cpu_percent(None)  # starts psutil's interval
        except Exception:  # psutil missing, or no access: os.times and /proc instead
            self._process = None
        self._last_cpu = self._cpu_seconds()
        self._last_wall = time.monotonic()
        self._nvml: Any = None
        self._nvml_handle: Any = None

    @staticmethod
    def _cpu_seconds() -> float:
        times = os.times()
        return times.user + times.system

    def cpu_percent(self) -> float | None:
        if self._process is not None:
            try:
                return float(self._process.cpu_percent(None))
            except Exception:
                self._process = None
        now, cpu = time.monotonic(), self._cpu_seconds()
        wall = now - self._last_wall
        used = cpu - self._last_cpu
        self._last_wall, self._last_cpu = now, cpu
        return 100 * used / wall if wall > 0 else None

    def rss(self) -> int | None:
        if self._process is not None:
            try:
                return int(self._process.memory_info().rss)
            except Exception:
                pass
        return _rss_from_proc()

    def gpu(self) -> GpuSample | None:
        if not self.device.startswith("cuda"):
            return None
        try:
            import torch

            if not torch.cuda.is_available():
                return None
            index = torch.device(self.device).index
            index = torch.cuda.current_device() if index is None else index
            sample = GpuSample(
                torch.cuda.memory_allocated(index),
                torch.cuda.memory_reserved(index),
                torch.cuda.get_device_properties(index).total_memory,
                self._utilisation(index),
            )
        except Exception:  # a CUDA error is the trainer's to report, not the strip's
            return None
        return sample

    def _utilisation(self, index: int) -> float | None:
        if self._nvml is False:  # tried once: no NVML here
            return None
        try:
            if self._nvml is None:
                import pynvml

                pynvml.nvmlInit()
                self._nvml = pynvml
                self._nvml_handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            return float(self._nvml.nvmlDeviceGetUtilizationRates(self._nvml_handle).gpu)
        except Exception:  # nvidia-ml-py not installed, or no NVML: memory only
            self._nvml = False
            return None

    def sample(self) -> ResourceSample:
        return ResourceSample(self.cpu_percent(), self.rss(), self.gpu())


class ResourceStrip(Static):
    """The sampled line, refreshed once a second; `device` is set once the run has started (RunStarted)."""

    DEFAULT_CSS = "ResourceStrip { height: 1; padding: 0 1; background: $panel; color: $text-muted; }"

    def __init__(self, *, id: str | None = None, interval: float | None = 1.0) -> None:
        """`interval` None: the screen calls `sample` from a timer of its own."""
        super().__init__("CPU -  mem -", id=id)
        self.interval = interval
        self.sampler = ResourceSampler()
        self.text = ""

    def on_mount(self) -> None:
        if self.interval is not None:
            self.set_interval(self.interval, self.sample)

    def set_device(self, device: str) -> None:
        self.sampler.device = device

    def sample(self) -> None:
        text = format_resources(self.sampler.sample())
        if text != self.text:
            self.text = text
            self.update(text, layout=False)  # one row, whatever it says: no layout of the screen
