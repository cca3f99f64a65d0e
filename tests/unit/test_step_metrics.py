"""`StepAccumulator`: the step figures summed on the device, read back as means once per report."""

from __future__ import annotations

import torch

from gat_tui.events import STEP_FIGURES
from gat_tui.methods.base import StepResult
from gat_tui.training.step_metrics import StepAccumulator


def figures(scale: float, with_generator: bool) -> StepResult:
    """A step's figures, each a distinct multiple of `scale` (exact in binary), the generator's only when asked."""
    values = {name: torch.tensor(scale * (index + 1)) for index, name in enumerate(STEP_FIGURES)}
    if not with_generator:
        values["loss_g"] = None
    return StepResult(**values)


def test_read_gives_the_mean_of_each_figure_since_the_last_read() -> None:
    accumulator = StepAccumulator()
    for scale in (0.5, 0.25, 2.0):
        accumulator.add(figures(scale, with_generator=True))
    assert accumulator.steps == 3
    expected = {name: (0.5 + 0.25 + 2.0) * (index + 1) / 3 for index, name in enumerate(STEP_FIGURES)}
    assert accumulator.read() == expected
    assert (accumulator.sums, accumulator.steps) == ({}, 0)  # starts again
    accumulator.add(figures(4.0, with_generator=True))
    assert accumulator.read() == {name: 4.0 * (index + 1) for index, name in enumerate(STEP_FIGURES)}


def test_figures_a_method_does_not_report_are_left_out() -> None:
    accumulator = StepAccumulator()
    accumulator.add(figures(1.0, with_generator=False))
    accumulator.add(figures(3.0, with_generator=False))
    means = accumulator.read()
    assert list(means) == [name for name in STEP_FIGURES if name != "loss_g"]
    assert means == {name: 2.0 * (index + 1) for index, name in enumerate(STEP_FIGURES) if name != "loss_g"}
    assert StepAccumulator().read() == {}


def test_the_first_step_is_copied_not_aliased() -> None:
    # methods may reuse a figure's tensor (`loss_g_sum += ...`): the sums must not follow it
    accumulator = StepAccumulator()
    first = figures(1.0, with_generator=True)
    accumulator.add(first)
    assert first.loss_f is not None
    first.loss_f += 100.0
    accumulator.add(figures(1.0, with_generator=True))
    assert accumulator.read()["loss_f"] == 1.0
