"""Everything beyond the weights that resuming a run exactly needs, as tensors and JSON.

A checkpoint stores, besides `classifier.*` and `generator.*`:
- `optimizer.<network>.<parameter index>.<name>`: each Adam moment and step count;
- `rng.torch` (and `rng.cuda` / `rng.mps` where used): the global generators that drive
  dropout and random perturbations;
- `rng.batches.<cursor>`: the generator state that drew each data cursor's current order;
and in its metadata `training_state`, JSON with the counters, cursor positions, best value,
elapsed time and the optimisers' hyperparameters. No pickle anywhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from gat_tui.methods.base import TrainingMethod
from gat_tui.training.batches import ShuffledBatches


class StateError(ValueError):
    """A checkpoint's training state does not fit this run."""


@dataclass
class Progress:
    """The counters of a run; `epoch` is the epoch in progress (or the last one finished)."""

    epoch: int = 0
    epochs_done: int = 0
    step: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    epochs_without_improvement: int = 0
    elapsed: float = 0.0

    def record_epoch(self, value: float, lower_is_better: bool) -> bool:
        """Count the current epoch as done with selection figure `value`; True if it is the new best.

        Only a strictly better value replaces the best: on a tie the earlier epoch stays best.
        """
        better = self.best_value is None or (value < self.best_value if lower_is_better else value > self.best_value)
        self.epochs_done = self.epoch
        if better:
            self.best_value, self.best_epoch, self.epochs_without_improvement = value, self.epoch, 0
        else:
            self.epochs_without_improvement += 1
        return better

    def patience_over(self, patience: int | None) -> bool:
        return patience is not None and self.epochs_without_improvement >= patience


def _rng_tensors(device: torch.device) -> dict[str, torch.Tensor]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        tensors["rng.mps"] = torch.mps.get_rng_state()
    return tensors


def _restore_rng(tensors: Mapping[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    if device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    elif device.type == "mps" and "rng.mps" in tensors:
        torch.mps.set_rng_state(tensors["rng.mps"])


def capture(
    method: TrainingMethod, cursors: Mapping[str, ShuffledBatches], progress: Progress, device: torch.device
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The training state as checkpoint tensors and metadata (weights are saved separately)."""
    tensors: dict[str, torch.Tensor] = _rng_tensors(device)
    groups: dict[str, Any] = {}
    for name, optimizer in method.optimizers().items():
        state = optimizer.state_dict()
        for index, slots in state["state"].items():
            for slot, value in slots.items():
                tensors[f"optimizer.{name}.{index}.{slot}"] = torch.as_tensor(value)
        groups[name] = state["param_groups"]
    positions: dict[str, Any] = {}
    for name, cursor in cursors.items():
        order_state, position, has_order = cursor.state()
        tensors[f"rng.batches.{name}"] = order_state
        positions[name] = {"position": position, "has_order": has_order}
    record = {"progress": asdict(progress), "cursors": positions, "param_groups": groups}
    return tensors, {"training_state": json.dumps(record)}


def _check_optimizer_state(
    name: str, optimizer: torch.optim.Optimizer, state: Mapping[int, Mapping[str, torch.Tensor]], groups: Any
) -> None:
    """Refuse moments of the wrong shape, non-finite moments, and non-numeric hyperparameters."""
    if not isinstance(groups, list) or len(groups) != len(optimizer.param_groups):
        raise StateError(f"its {name} optimizer has {groups!r} as parameter groups; expected {len(optimizer.param_groups)}")
    parameters = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    for group, own in zip(groups, optimizer.state_dict()["param_groups"]):
        _check_group(name, group, own)
    for index, slots in state.items():
        if not 0 <= index < len(parameters):
            raise StateError(f"its {name} optimizer has a state for parameter {index}, which this network lacks")
        for slot, value in slots.items():
            if slot == "step":
                count = float(value) if value.numel() == 1 else math.nan
                if not (math.isfinite(count) and 0 <= count <= _STEP_COUNT_MAX and count == int(count)):
                    raise StateError(
                        f"its {name} optimizer's step count for parameter {index} is {value.tolist()!r}; "
                        f"expected a whole number in 0..{_STEP_COUNT_MAX}"
                    )
                continue
            if value.shape != parameters[index].shape:
                raise StateError(
                    f"its {name} optimizer's '{slot}' of parameter {index} has shape {tuple(value.shape)}; "
                    f"the parameter has {tuple(parameters[index].shape)}"
                )
            if not bool(torch.isfinite(value).all()):
                raise StateError(f"its {name} optimizer's '{slot}' of parameter {index} holds NaN or infinite values")


# an Adam step count beyond this is no training's (float32 counts whole numbers exactly up to 2**24,
# and a count of 1e30 overflows the bias correction): an edited or damaged state
_STEP_COUNT_MAX = 2**24
# the optimiser's own choices, fixed when it is built: a saved value must be the same
_FIXED_FLAGS = ("amsgrad", "maximize", "capturable", "differentiable", "fused", "decoupled_weight_decay")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_group(name: str, group: Any, own: Mapping[str, Any]) -> None:
    """One saved parameter group against the group this run's optimiser has: same parameters, sound hyperparameters."""
    group = group if isinstance(group, dict) else {}  # not a table: its first key is named missing
    for key in ("lr", "eps", "weight_decay"):
        value = group.get(key)
        if not _is_number(value) or value < 0:
            raise StateError(f"its {name} optimizer has {key} = {value!r}; expected a finite number >= 0")
    betas = group.get("betas")
    if not (isinstance(betas, (list, tuple)) and len(betas) == 2 and all(_is_number(b) and 0 <= b < 1 for b in betas)):
        raise StateError(f"its {name} optimizer has betas = {betas!r}; expected two numbers in [0, 1)")
    for key in _FIXED_FLAGS:
        if key in own and group.get(key, own[key]) != own[key]:
            raise StateError(f"its {name} optimizer has {key} = {group.get(key)!r}; this run's optimizer has {own[key]!r}")
    if group.get("params") != own["params"]:
        raise StateError(f"its {name} optimizer's parameter group lists parameters {group.get('params')!r}; expected {own['params']!r}")


def restore(
    tensors: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str],
    method: TrainingMethod,
    cursors: Mapping[str, ShuffledBatches],
    device: torch.device,
) -> Progress:
    """Load optimiser states, RNG streams and cursors saved by `capture`; returns the counters."""
    if "training_state" not in metadata:
        raise StateError("it holds weights only (no training state), so it cannot be resumed")
    record = json.loads(metadata["training_state"])
    for name, optimizer in method.optimizers().items():
        if name not in record["param_groups"]:
            raise StateError(f"it has no optimizer state for the {name}")
        prefix = f"optimizer.{name}."
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, slot = key[len(prefix) :].split(".", 1)
                state.setdefault(int(index), {})[slot] = value.to(device) if slot != "step" else value
        _check_optimizer_state(name, optimizer, state, record["param_groups"][name])
        optimizer.load_state_dict({"state": state, "param_groups": record["param_groups"][name]})
    for name, cursor in cursors.items():
        key = f"rng.batches.{name}"
        if key not in tensors or name not in record["cursors"]:
            raise StateError(f"it has no data order for '{name}'")
        saved = record["cursors"][name]
        if not isinstance(saved, dict):
            raise StateError(f"its data order for '{name}' is {saved!r}; expected a table")
        position, has_order = saved.get("position"), saved.get("has_order")
        if not isinstance(has_order, bool):
            raise StateError(f"its data order for '{name}' has has_order = {has_order!r}; expected true or false")
        if not (isinstance(position, int) and not isinstance(position, bool) and 0 <= position <= cursor.batches_per_epoch):
            raise StateError(
                f"its data order for '{name}' is at position {position!r}; expected a whole number of batches "
                f"in 0..{cursor.batches_per_epoch}"
            )
        cursor.load_state(tensors[key], position, has_order)
    _restore_rng(tensors, device)
    return checked_progress(record.get("progress"))


def checked_progress(saved: Any) -> Progress:
    """The saved counters, refused unless every one is present, of its type and in range."""
    if not isinstance(saved, dict):
        raise StateError("its training state has no progress counters")
    names = {f.name: f for f in fields(Progress)}
    unknown = sorted(set(saved) - set(names))
    missing = sorted(set(names) - set(saved))
    if unknown or missing:
        problem = f"unknown counter '{unknown[0]}'" if unknown else f"no counter '{missing[0]}'"
        raise StateError(f"its training state has {problem}")
    for name in ("epoch", "epochs_done", "step", "epochs_without_improvement"):
        value = saved[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise StateError(f"its training state has {name} = {value!r}; expected an integer >= 0")
    for name in ("best_value", "elapsed"):
        value = saved[name]
        allowed_none = name == "best_value"
        if (value is None and not allowed_none) or (
            value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value))
        ):
            raise StateError(f"its training state has {name} = {value!r}; expected a finite number")
    best_epoch = saved["best_epoch"]
    if best_epoch is not None and (not isinstance(best_epoch, int) or isinstance(best_epoch, bool) or not 1 <= best_epoch <= saved["epochs_done"]):
        raise StateError(f"its training state has best_epoch = {best_epoch!r}; expected an epoch in 1..{saved['epochs_done']}")
    if saved["epoch"] < saved["epochs_done"] or (saved["epochs_done"] > 0) != (best_epoch is not None):
        raise StateError(f"its training state's counters contradict each other: {saved}")
    return Progress(**saved)
