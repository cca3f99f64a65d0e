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
from collections.abc import Mapping
from dataclasses import asdict, dataclass
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
        optimizer.load_state_dict({"state": state, "param_groups": record["param_groups"][name]})
    for name, cursor in cursors.items():
        key = f"rng.batches.{name}"
        if key not in tensors or name not in record["cursors"]:
            raise StateError(f"it has no data order for '{name}'")
        saved = record["cursors"][name]
        cursor.load_state(tensors[key], saved["position"], saved["has_order"])
    _restore_rng(tensors, device)
    return Progress(**record["progress"])
