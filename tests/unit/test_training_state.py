"""training/state.py on its own: the best-epoch rule, the saved counters' checks, the optimiser checks, capture and restore.

The engine tests reach all of it through whole runs; these pin each rule and each refusal's
text directly, in milliseconds.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import torch
from torch import nn

from gat_tui.methods.standard import StandardTraining
from gat_tui.training.batches import ShuffledBatches
from gat_tui.training.state import Progress, StateError, _restore_rng, _rng_tensors, capture, checked_progress, restore
from gat_tui.training.state import _check_optimizer_state as check_optimizer_state

CPU = torch.device("cpu")


def _epochs(values: list[float], lower_is_better: bool) -> tuple[list[bool], Progress]:
    progress = Progress()
    news = []
    for epoch, value in enumerate(values, start=1):
        progress.epoch = epoch
        news.append(progress.record_epoch(value, lower_is_better))
    return news, progress


def test_the_best_epoch_is_the_strictly_best_value_and_a_tie_keeps_the_earlier() -> None:
    news, progress = _epochs([0.5, 0.7, 0.7, 0.6], lower_is_better=False)
    assert news == [True, True, False, False]
    assert (progress.best_epoch, progress.best_value, progress.epochs_done, progress.epochs_without_improvement) == (2, 0.7, 4, 2)
    news, progress = _epochs([0.9, 0.4, 0.4, 0.8, 0.3], lower_is_better=True)
    assert news == [True, True, False, False, True]
    assert (progress.best_epoch, progress.best_value, progress.epochs_done, progress.epochs_without_improvement) == (5, 0.3, 5, 0)


def test_patience_counts_epochs_without_improvement() -> None:
    _, progress = _epochs([0.5, 0.4, 0.3], lower_is_better=False)
    assert progress.epochs_without_improvement == 2
    assert progress.patience_over(2) and progress.patience_over(1) and not progress.patience_over(3)
    assert not progress.patience_over(None)
    assert Progress().patience_over(0)  # zero epochs without improvement already reach a patience of 0


def _saved(**change: Any) -> dict[str, Any]:
    return {
        "epoch": 3, "epochs_done": 3, "step": 30, "best_value": 0.5, "best_epoch": 2,
        "epochs_without_improvement": 1, "elapsed": 12.5, **change,
    }  # fmt: skip


def test_valid_counters_are_taken_as_saved_including_the_boundaries() -> None:
    assert checked_progress(_saved()) == Progress(3, 3, 30, 0.5, 2, 1, 12.5)
    assert checked_progress(_saved(best_epoch=3)) == Progress(3, 3, 30, 0.5, 3, 1, 12.5)  # the last epoch done
    assert checked_progress(_saved(best_epoch=1, epoch=4)) == Progress(4, 3, 30, 0.5, 1, 1, 12.5)  # an epoch in progress
    fresh = _saved(epoch=0, epochs_done=0, step=0, best_value=None, best_epoch=None, epochs_without_improvement=0, elapsed=0)
    assert checked_progress(fresh) == Progress()


@pytest.mark.parametrize(
    ("saved", "message"),
    [
        ([], "its training state has no progress counters"),
        (_saved(laps=3, zeta=1), "its training state has unknown counter 'laps'"),
        ({k: v for k, v in _saved().items() if k not in ("elapsed", "step")}, "its training state has no counter 'elapsed'"),
        (_saved(epoch=-1), "its training state has epoch = -1; expected an integer >= 0"),
        (_saved(epochs_done=True), "its training state has epochs_done = True; expected an integer >= 0"),
        (_saved(step=2.0), "its training state has step = 2.0; expected an integer >= 0"),
        (_saved(epochs_without_improvement="1"), "its training state has epochs_without_improvement = '1'; expected an integer >= 0"),
        (_saved(best_value=math.nan), "its training state has best_value = nan; expected a finite number"),
        (_saved(best_value=True), "its training state has best_value = True; expected a finite number"),
        (_saved(elapsed=None), "its training state has elapsed = None; expected a finite number"),
        (_saved(elapsed="12"), "its training state has elapsed = '12'; expected a finite number"),
        (_saved(best_epoch=0), "its training state has best_epoch = 0; expected an epoch in 1..3"),
        (_saved(best_epoch=4), "its training state has best_epoch = 4; expected an epoch in 1..3"),
        (_saved(best_epoch=True), "its training state has best_epoch = True; expected an epoch in 1..3"),
        (_saved(best_epoch=2.0), "its training state has best_epoch = 2.0; expected an epoch in 1..3"),
        (_saved(epoch=2), f"its training state's counters contradict each other: {_saved(epoch=2)}"),
        (_saved(best_epoch=None), f"its training state's counters contradict each other: {_saved(best_epoch=None)}"),
    ],
)
def test_counters_that_cannot_be_resumed_are_refused_by_name(saved: Any, message: str) -> None:
    with pytest.raises(StateError) as raised:
        checked_progress(saved)
    assert str(raised.value) == message


def _adam() -> torch.optim.Adam:
    torch.manual_seed(0)
    return torch.optim.Adam(nn.Linear(3, 2).parameters(), lr=0.01)  # parameters: weight [2, 3], bias [2]


def _groups(**change: Any) -> list[dict[str, Any]]:
    return [{**_adam().state_dict()["param_groups"][0], **change}]


def _moments(**change: torch.Tensor) -> dict[int, dict[str, torch.Tensor]]:
    slots = {"step": torch.tensor(4.0), "exp_avg": torch.zeros(2, 3), "exp_avg_sq": torch.zeros(2, 3), **change}
    return {0: slots, 1: {"step": torch.tensor(4.0), "exp_avg": torch.zeros(2), "exp_avg_sq": torch.zeros(2)}}


def test_sound_optimizer_state_passes_including_zero_hyperparameters_and_step() -> None:
    check_optimizer_state("classifier", _adam(), _moments(step=torch.tensor(0.0)), _groups(lr=0, eps=0.0, weight_decay=0))
    check_optimizer_state("classifier", _adam(), {}, _groups())  # no step taken yet: no moments


@pytest.mark.parametrize(
    ("state", "groups", "message"),
    [
        (_moments(), {"lr": 0.01}, "its classifier optimizer has {'lr': 0.01} as parameter groups; expected 1"),
        (_moments(), _groups() * 2, "as parameter groups; expected 1"),
        (_moments(), ["lr"], "its classifier optimizer has lr = None; expected a finite number >= 0"),
        (_moments(), _groups(lr="fast"), "its classifier optimizer has lr = 'fast'; expected a finite number >= 0"),
        (_moments(), _groups(lr=True), "its classifier optimizer has lr = True; expected a finite number >= 0"),
        (_moments(), _groups(eps=math.inf), "its classifier optimizer has eps = inf; expected a finite number >= 0"),
        (_moments(), _groups(weight_decay=-0.1), "its classifier optimizer has weight_decay = -0.1; expected a finite number >= 0"),
        ({2: {"step": torch.tensor(1.0)}}, _groups(), "its classifier optimizer has a state for parameter 2, which this network lacks"),
        ({-1: {"step": torch.tensor(1.0)}}, _groups(), "its classifier optimizer has a state for parameter -1, which this network lacks"),
        (_moments(step=torch.tensor([1.0, 2.0])), _groups(), "its classifier optimizer's step count for parameter 0 is [1.0, 2.0]"),
        (_moments(step=torch.tensor(math.nan)), _groups(), "its classifier optimizer's step count for parameter 0 is nan"),
        (_moments(step=torch.tensor(-1.0)), _groups(), "its classifier optimizer's step count for parameter 0 is -1.0"),
        (_moments(exp_avg=torch.zeros(3, 2)), _groups(), "its classifier optimizer's 'exp_avg' of parameter 0 has shape (3, 2); the parameter has (2, 3)"),
        (_moments(exp_avg_sq=torch.full((2, 3), math.inf)), _groups(), "its classifier optimizer's 'exp_avg_sq' of parameter 0 holds NaN or infinite values"),
        # hand-edited hyperparameters that failed mid-run with a traceback (issue 25)
        (_moments(), _groups(betas="fast"), "its classifier optimizer has betas = 'fast'; expected two numbers in [0, 1)"),
        (_moments(), _groups(betas=[1, 1]), "its classifier optimizer has betas = [1, 1]; expected two numbers in [0, 1)"),
        (_moments(), _groups(betas=[0.9]), "its classifier optimizer has betas = [0.9]; expected two numbers in [0, 1)"),
        (_moments(), _groups(betas=[0.9, -0.1]), "its classifier optimizer has betas = [0.9, -0.1]; expected two numbers in [0, 1)"),
        (_moments(), _groups(amsgrad=True), "its classifier optimizer has amsgrad = True; this run's optimizer has False"),
        (_moments(), _groups(maximize=True), "its classifier optimizer has maximize = True; this run's optimizer has False"),
        (_moments(), _groups(params=[0]), "its classifier optimizer's parameter group lists parameters [0]; expected [0, 1]"),
        (_moments(step=torch.tensor(1e30)), _groups(), "its classifier optimizer's step count for parameter 0 is 1.0000000150474662e+30"),
        (_moments(step=torch.tensor(2.5)), _groups(), "its classifier optimizer's step count for parameter 0 is 2.5"),
    ],
)
def test_optimizer_state_that_would_poison_training_is_refused_by_name(state: Any, groups: Any, message: str) -> None:
    with pytest.raises(StateError) as raised:
        check_optimizer_state("classifier", _adam(), state, groups)
    assert message in str(raised.value)
    assert str(raised.value).startswith("its classifier optimizer")


def _setup(seed: int, lr: float = 0.01) -> tuple[StandardTraining, dict[str, ShuffledBatches]]:
    torch.manual_seed(seed)
    method = StandardTraining(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), lr_f=lr)
    images = torch.randint(0, 256, (10, 3, 2, 2), dtype=torch.uint8, generator=torch.Generator().manual_seed(9))  # the same data
    labels = torch.arange(10) % 3
    return method, {"train": ShuffledBatches(images, labels, 4, seed, channels_last=False)}


def test_capture_then_restore_gives_back_the_moments_the_order_the_counters_and_the_rng() -> None:
    method, cursors = _setup(0)
    for _ in range(3):  # one epoch of 2 batches, then one batch into the next order
        method.train_step(*cursors["train"].next_batch(), lambda: cursors["train"].next_batch())
    progress = Progress(epoch=2, epochs_done=1, step=3, best_value=0.5, best_epoch=1, elapsed=1.5)
    tensors, metadata = capture(method, cursors, progress, CPU)
    record = json.loads(metadata["training_state"])
    assert record["cursors"] == {"train": {"position": 1, "has_order": True}}
    assert record["progress"] == {**progress.__dict__}
    expected_next = cursors["train"].next_batch()
    expected_draw = torch.rand(3)

    other, other_cursors = _setup(1, lr=0.5)
    torch.rand(7)  # the global stream elsewhere
    assert restore(tensors, metadata, other, other_cursors, CPU) == progress
    assert torch.rand(3).equal(expected_draw)
    images, labels = other_cursors["train"].next_batch()
    assert images.equal(expected_next[0]) and labels.equal(expected_next[1])
    saved_state, restored_state = method.classifier_optimizer.state_dict(), other.classifier_optimizer.state_dict()
    for index, slots in saved_state["state"].items():
        for slot, value in slots.items():
            assert torch.equal(restored_state["state"][index][slot], value), (index, slot)
    assert [group["lr"] for group in restored_state["param_groups"]] == [0.01]  # the saved hyperparameters, not the new run's


def test_restore_refuses_what_capture_did_not_write() -> None:
    method, cursors = _setup(0)
    tensors, metadata = capture(method, cursors, Progress(), CPU)
    with pytest.raises(StateError, match=r"^it holds weights only \(no training state\), so it cannot be resumed$"):
        restore(tensors, {}, method, cursors, CPU)
    record = json.loads(metadata["training_state"])
    without_optimizer = json.dumps({**record, "param_groups": {}})
    with pytest.raises(StateError, match=r"^it has no optimizer state for the classifier$"):
        restore(tensors, {"training_state": without_optimizer}, method, cursors, CPU)
    with pytest.raises(StateError, match=r"^it has no data order for 'train'$"):
        restore({k: v for k, v in tensors.items() if k != "rng.batches.train"}, metadata, method, cursors, CPU)
    method.train_step(*cursors["train"].next_batch(), lambda: cursors["train"].next_batch())
    tensors, metadata = capture(method, cursors, Progress(), CPU)
    bad_moment = {**tensors, "optimizer.classifier.0.exp_avg": torch.zeros(2, 2)}
    with pytest.raises(StateError, match=r"^its classifier optimizer's 'exp_avg' of parameter 0 has shape \(2, 2\); the parameter has \(3, 12\)$"):
        restore(bad_moment, metadata, method, cursors, CPU)
    record = json.loads(metadata["training_state"])
    without_cursor = json.dumps({**record, "cursors": {}})
    with pytest.raises(StateError, match=r"^it has no data order for 'train'$"):
        restore(tensors, {"training_state": without_cursor}, method, cursors, CPU)


@pytest.mark.parametrize(
    ("cursor", "message"),
    [
        ({"position": -5, "has_order": True}, "its data order for 'train' is at position -5; expected a whole number of batches in 0..2"),
        ({"position": 3, "has_order": True}, "is at position 3; expected a whole number of batches in 0..2"),
        ({"position": 1e9, "has_order": True}, "is at position 1000000000.0;"),
        ({"position": 2.5, "has_order": True}, "is at position 2.5;"),
        ({"position": "abc", "has_order": True}, "is at position 'abc';"),
        ({"position": True, "has_order": True}, "is at position True;"),
        ({"position": 1, "has_order": "yes"}, "its data order for 'train' has has_order = 'yes'; expected true or false"),
        ([1, True], "its data order for 'train' is [1, True]; expected a table"),
    ],
)
def test_a_hand_edited_data_cursor_is_refused_by_name(cursor: Any, message: str) -> None:
    method, cursors = _setup(0)
    tensors, metadata = capture(method, cursors, Progress(), CPU)
    record = json.loads(metadata["training_state"])
    edited = json.dumps({**record, "cursors": {"train": cursor}})
    with pytest.raises(StateError) as raised:
        restore(tensors, {"training_state": edited}, method, cursors, CPU)
    assert message in str(raised.value)
    for position in (0, 2):  # the bounds are allowed: a fresh order, and one used up
        sound = json.dumps({**record, "cursors": {"train": {"position": position, "has_order": True}}})
        restore(tensors, {"training_state": sound}, method, cursors, CPU)
        assert cursors["train"].position == position


def test_the_accelerators_rng_is_saved_and_restored_only_on_its_own_device(monkeypatch: pytest.MonkeyPatch) -> None:
    # the CUDA and MPS calls are stand-ins, so the branches run on any machine
    calls: list[tuple[str, list[int]]] = []
    asked: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: asked.append(device) or torch.tensor([1], dtype=torch.uint8))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: calls.append((f"cuda:{device}", state.tolist())))
    monkeypatch.setattr(torch.mps, "get_rng_state", lambda: torch.tensor([2], dtype=torch.uint8))
    monkeypatch.setattr(torch.mps, "set_rng_state", lambda state: calls.append(("mps", state.tolist())))
    cuda, mps = torch.device("cuda", 1), torch.device("mps")
    assert {name: sorted(_rng_tensors(device)) for name, device in (("cpu", CPU), ("cuda", cuda), ("mps", mps))} == {
        "cpu": ["rng.torch"], "cuda": ["rng.cuda", "rng.torch"], "mps": ["rng.mps", "rng.torch"],
    }  # fmt: skip
    assert asked == [cuda]  # the state of the run's own GPU
    on_cuda, on_mps = _rng_tensors(cuda), _rng_tensors(mps)
    assert on_cuda["rng.cuda"].tolist() == [1] and on_mps["rng.mps"].tolist() == [2]
    assert torch.equal(on_cuda["rng.torch"], torch.get_rng_state()) and torch.equal(on_mps["rng.torch"], torch.get_rng_state())
    saved = {"rng.torch": torch.get_rng_state(), "rng.cuda": torch.tensor([7], dtype=torch.uint8), "rng.mps": torch.tensor([8], dtype=torch.uint8)}
    for device in (CPU, cuda, mps):
        _restore_rng(saved, device)
    _restore_rng({"rng.torch": saved["rng.torch"]}, cuda)  # a checkpoint from a CPU run resumed on CUDA
    _restore_rng({"rng.torch": saved["rng.torch"]}, mps)
    assert calls == [("cuda:cuda:1", [7]), ("mps", [8])]


@pytest.mark.parametrize(
    ("tensors", "steps", "message"),
    [
        ({"metrics.pending.loss_f": torch.tensor(1.0)}, "abc", "its pending step count is 'abc'; expected a whole number in 1..3"),
        ({"metrics.pending.loss_f": torch.tensor(1.0)}, "0", "its pending step count is '0'"),
        ({"metrics.pending.loss_f": torch.tensor(1.0)}, "4", "its pending step count is '4'"),
        ({"metrics.pending.laps": torch.tensor(1.0)}, "2", "its pending step figure 'metrics.pending.laps' is not a finite figure"),
        ({"metrics.pending.loss_f": torch.tensor(math.nan)}, "2", "its pending step figure 'metrics.pending.loss_f' is not a finite figure"),
        ({"metrics.pending.loss_f": torch.ones(2)}, "2", "its pending step figure 'metrics.pending.loss_f' is not a finite figure"),
    ],
)
def test_pending_step_figures_of_a_checkpoint_are_checked(tensors: dict, steps: str, message: str) -> None:
    from gat_tui.training.step_metrics import STEPS_KEY, PendingMetricsError, StepAccumulator

    with pytest.raises(PendingMetricsError) as raised:
        StepAccumulator.from_checkpoint(tensors, {STEPS_KEY: steps}, 4, CPU)
    assert message in str(raised.value)


def test_pending_step_figures_go_through_a_checkpoint_and_come_back() -> None:
    from gat_tui.methods.base import StepResult
    from gat_tui.training.step_metrics import StepAccumulator

    accumulator = StepAccumulator()
    for loss in (1.0, 2.0):
        accumulator.add(StepResult(loss_f=torch.tensor(loss)))
    tensors, metadata = accumulator.to_checkpoint()
    back = StepAccumulator.from_checkpoint(tensors, metadata, 4, CPU)
    assert (back.steps, back.carried) == (2, 2)
    back.add(StepResult(loss_f=torch.tensor(6.0)))
    assert back.read() == {"loss_f": 3.0}  # (1 + 2 + 6) / 3: the figures from before the stop count
    assert StepAccumulator().to_checkpoint() == ({}, {})
    assert StepAccumulator.from_checkpoint({}, {}, 4, CPU).steps == 0  # a checkpoint without them
