"""A training's checkpoints: its whole state written to and read back from safetensors.

`save` refuses a state with NaN or infinite values, so no checkpoint ever holds a diverged
run; `restore` loads weights, optimiser moments, random streams and data order, checked.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gat_tui.checkpoints import Checkpoint, CheckpointError, read_checkpoint_metadata, save_checkpoint
from gat_tui.runs.identity import RUN_ID_KEY
from gat_tui.training.setup import TrainingSetup
from gat_tui.training.state import Progress, StateError, capture, restore
from gat_tui.training.step_metrics import StepAccumulator

# the checkpoint metadata key of the training data's SHA-256 (ImageSplits.fingerprint)
DATA_FINGERPRINT_KEY = "data_fingerprint"


class TrainingDiverged(RuntimeError):
    """A loss, or the state about to be saved, became NaN or infinite."""


def first_non_finite(tensors: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating tensor holding a NaN or an infinity, or None.

    One host sync per device: this runs only when a checkpoint is written.
    """
    by_device: dict[torch.device, list[tuple[str, torch.Tensor]]] = {}
    for name, value in tensors.items():
        if value.is_floating_point():
            by_device.setdefault(value.device, []).append((name, value))
    for items in by_device.values():
        finite = torch.stack([torch.isfinite(value).all() for _, value in items]).tolist()
        if not all(finite):
            return items[finite.index(False)][0]
    return None


def save(
    path: Path,
    setup: TrainingSetup,
    progress: Progress,
    config_toml: str,
    run_id: str | None = None,
    pending: StepAccumulator | None = None,
) -> None:
    """The networks and the training state to `path`, atomically; TrainingDiverged if any is not finite.

    `run_id` (the run folder's, see runs/identity.py) lets a resume tell this run's checkpoints from another's;
    `pending` holds the step figures since the last report of a run stopped between reports.
    """
    state_tensors, state_metadata = capture(setup.method, setup.cursors, progress, setup.device)
    if pending is not None:  # a stop between reports: the figures of its steps so far
        pending_tensors, pending_metadata = pending.to_checkpoint()
        state_tensors.update(pending_tensors)
        state_metadata.update(pending_metadata)
    if run_id is not None:
        state_metadata[RUN_ID_KEY] = run_id
    state_metadata[DATA_FINGERPRINT_KEY] = setup.data_fingerprint
    networks = setup.method.networks()
    weights = {f"{name}.{key}": value for name, network in networks.items() for key, value in network.state_dict().items()}
    culprit = first_non_finite({**state_tensors, **weights})
    if culprit is not None:  # e.g. inf in Adam's moments after a too large learning rate
        raise TrainingDiverged(f"'{culprit}' became NaN or infinite by epoch {progress.epoch}, step {progress.step}")
    save_checkpoint(
        path,
        networks,
        setup.shape,
        config_toml,
        progress.epoch,
        progress.step,
        extra_tensors=state_tensors,
        # CPU results are bit-exact only at an equal thread count: a resume compares (`thread_count_warning`)
        extra_metadata={**state_metadata, THREADS_KEY: str(torch.get_num_threads())},
        architecture=setup.method.architecture,
    )


def restore_from(path: Path, setup: TrainingSetup) -> tuple[Checkpoint, Progress]:
    """Load the checkpoint at `path` into `setup`; its counters; CheckpointError naming the file otherwise."""
    checkpoint = Checkpoint.open(path)
    if checkpoint.architecture != setup.method.architecture:
        raise CheckpointError(
            f"{path}: its networks are {checkpoint.architecture}; this run builds {setup.method.architecture}"
        )
    for name, network in setup.method.networks().items():
        checkpoint.load_into(name, network)
    try:
        progress = restore(checkpoint.tensors, checkpoint.metadata, setup.method, setup.cursors, setup.device)
    except StateError as error:
        raise CheckpointError(f"{path}: {error}") from None
    except (KeyError, ValueError, TypeError, AttributeError, RuntimeError) as error:
        raise CheckpointError(f"{path}: training state does not fit this run ({error})") from None
    return checkpoint, progress


THREADS_KEY = "torch_threads"


def thread_count_warning(checkpoint: Checkpoint) -> str | None:
    """A warning when this process's torch thread count differs from the one the checkpoint was trained with."""
    saved = checkpoint.metadata.get(THREADS_KEY)
    now = torch.get_num_threads()
    if saved is None or saved == str(now):
        return None
    return (
        f"this checkpoint was trained with {saved} torch threads, this process has {now}: on a CPU the resumed run "
        f"will not be bit-identical to one left alone (set OMP_NUM_THREADS={saved} for that)"
    )


def best_file_epoch(path: Path) -> int | None:
    """The epoch the `best` checkpoint at `path` was written at, or None if it is missing or unreadable."""
    try:
        return int(read_checkpoint_metadata(path).get("epoch", "-1"))  # the header only: no weights loaded
    except (CheckpointError, ValueError):
        return None

