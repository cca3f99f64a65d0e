"""Step figures summed on the device between reports, so training never waits on the host."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from gat_tui.events import STEP_FIGURES
from gat_tui.methods.base import StepResult

# how a stop checkpoint carries the steps since the last report (see `to_checkpoint`)
_TENSOR_PREFIX = "metrics.pending."
STEPS_KEY = "metrics_pending_steps"


class PendingMetricsError(ValueError):
    """A checkpoint's pending step figures do not fit this run."""


@dataclass
class StepAccumulator:
    """Sums of step figures on the device; `read` is the only place they reach the host."""

    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    steps: int = 0
    carried: int = 0  # of `steps`, those taken before a resume (not timed in this process)

    def add(self, result: StepResult) -> None:
        for name in STEP_FIGURES:
            value = getattr(result, name)
            if value is not None:
                self.sums[name] = self.sums[name] + value if name in self.sums else value.clone()
        self.steps += 1

    def read(self) -> dict[str, float]:
        """Means since the last read, then starts again; one host sync for all figures."""
        names = list(self.sums)
        values = torch.stack([self.sums[name] for name in names]).tolist() if names else []
        means = {name: value / self.steps for name, value in zip(names, values)}
        self.sums, self.steps, self.carried = {}, 0, 0
        return means

    def to_checkpoint(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """The sums so far as checkpoint tensors and metadata: a run stopped between reports resumes them, so its
        next step line is the one an uninterrupted run writes (no partial line at the stop)."""
        if self.steps == 0:
            return {}, {}
        return {f"{_TENSOR_PREFIX}{name}": value for name, value in self.sums.items()}, {STEPS_KEY: str(self.steps)}

    @classmethod
    def from_checkpoint(
        cls, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str], log_every: int, device: torch.device
    ) -> StepAccumulator:
        """What `to_checkpoint` wrote (an empty accumulator for a checkpoint without it), checked."""
        text = metadata.get(STEPS_KEY)
        if text is None:
            return cls()
        steps = int(text) if text.isdigit() else -1
        if not 1 <= steps < log_every:
            raise PendingMetricsError(f"its pending step count is {text!r}; expected a whole number in 1..{log_every - 1}")
        sums = {}
        for key, value in tensors.items():
            if not key.startswith(_TENSOR_PREFIX):
                continue
            name = key[len(_TENSOR_PREFIX) :]
            if name not in STEP_FIGURES or value.numel() != 1 or not math.isfinite(float(value)):
                raise PendingMetricsError(f"its pending step figure '{key}' is not a finite figure of {', '.join(STEP_FIGURES)}")
            sums[name] = value.reshape(()).to(device)
        return cls(sums, steps, carried=steps)
