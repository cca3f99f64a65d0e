"""Everything a training needs before its first step: device, data, networks, data cursors.

Built before any file of the run folder is written, so a run that cannot start (no data, no
device, a checkpoint that does not fit) leaves the folder as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gat_tui.checkpoints import NetworkShape
from gat_tui.config import RunConfig
from gat_tui.data import ImageSplits, load_splits
from gat_tui.device import configure_backends, prefers_channels_last, select_device
from gat_tui.methods import TrainingMethod, build_method
from gat_tui.training.batches import ShuffledBatches


@dataclass
class TrainingSetup:
    device: torch.device
    splits: ImageSplits
    method: TrainingMethod
    shape: NetworkShape
    channels_last: bool
    cursors: dict[str, ShuffledBatches]
    steps_per_epoch: int
    layout_note: str | None = None  # why the networks train in the default memory layout, where they must
    data_fingerprint: str = ""  # SHA-256 of the splits (ImageSplits.fingerprint), recorded in each checkpoint

    def rng_devices(self) -> list[torch.device]:
        """The devices whose random streams `torch.random.fork_rng` must fork besides the CPU's."""
        return [self.device] if self.device.type == "cuda" else []


def prepare(config: RunConfig, data_dir: Path | None) -> TrainingSetup:
    """Seed, pick the device, load the data onto it, build the method's networks (Xavier init)."""
    device = select_device(config.device)
    configure_backends(device)
    torch.manual_seed(config.seed)
    loaded = load_splits(config.data, data_dir)
    data_fingerprint = loaded.fingerprint()  # on the host, once: a resume compares it with its checkpoint's
    splits = loaded.to(device)
    channels_last = prefers_channels_last(device)
    method = build_method(config, splits.num_classes, splits.image_shape, device)
    layout_note = None
    if channels_last:
        for network in method.networks().values():
            network.to(memory_format=torch.channels_last)
        failure = _forward_failure(method, splits.image_shape, device, torch.channels_last)
        if failure is not None:
            channels_last = False
            for network in method.networks().values():
                network.to(memory_format=torch.contiguous_format)
        # a network that fails in either layout fails for another reason, which its first step reports
        if failure is not None and _forward_failure(method, splits.image_shape, device, torch.contiguous_format) is None:
            layout_note = (
                f"training in the default memory layout: the {failure} on a channels-last batch "
                "(channels-last is faster on CPUs and CUDA GPUs; a network that reshapes with "
                ".reshape() or .flatten() rather than .view() can use it)"
            )
    method.train()
    batch_size = config.data.batch_size
    cursors = {
        "train": ShuffledBatches(splits.train_images, splits.train_labels, batch_size, config.seed, channels_last),
        # GAT's generator steps take fresh minibatches from an independent shuffle (Algorithm 1)
        "generator": ShuffledBatches(splits.train_images, splits.train_labels, batch_size, config.seed + 1, channels_last),
    }
    steps_per_epoch = cursors["train"].batches_per_epoch
    if config.train.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, config.train.max_steps_per_epoch)
    return TrainingSetup(
        device=device,
        splits=splits,
        method=method,
        shape=NetworkShape(splits.num_classes, *splits.image_shape, dropout=method.dropout),
        channels_last=channels_last,
        cursors=cursors,
        steps_per_epoch=steps_per_epoch,
        layout_note=layout_note,
        data_fingerprint=data_fingerprint,
    )


def _forward_failure(
    method: TrainingMethod, image_shape: tuple[int, int, int], device: torch.device, layout: torch.memory_format
) -> str | None:
    """None if every network runs a forward pass on a batch in `layout`, else which one fails and how.

    A user's network may `.view()` its activations, which needs the default layout. The probe runs
    in eval mode without gradients and on a forked random stream, so it changes no weight, no
    running statistic and no random number of the run.
    """
    probe = torch.zeros(2, *image_shape, device=device).contiguous(memory_format=layout)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
        for name, network in method.networks().items():
            network.eval()
            try:
                network(probe)
            except RuntimeError as error:
                first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                return f"{name} network raised {first_line!r}"
    return None
