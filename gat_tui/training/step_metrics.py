"""Step figures summed on the device between reports, so training never waits on the host."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from gat_tui.events import STEP_FIGURES
from gat_tui.methods.base import StepResult


@dataclass
class StepAccumulator:
    """Sums of step figures on the device; `read` is the only place they reach the host."""

    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    steps: int = 0

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
        self.sums, self.steps = {}, 0
        return means
