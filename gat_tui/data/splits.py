"""The in-memory train/validation/test splits every dataset loader returns, and the dispatch to them.

Images stay uint8 in [0, 255] on the CPU: a CIFAR training set is 150 MB that way instead of 600 MB
as float32, and the trainer scales each batch to [0, 1] after moving it to the device.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import torch

DATA_DIR_ENV = "GAT_TUI_DATA_DIR"


class DataError(RuntimeError):
    """A dataset that cannot be found, downloaded or read; the message names the file and the fix."""


@dataclass(frozen=True)
class ImageSplits:
    """Three labelled image sets: uint8 images [N, C, H, W] in [0, 255] and int64 labels [N]."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        # Loaders are the only producers; catching a shape/dtype slip here beats a confusing error mid-training.
        shape = tuple(self.train_images.shape[1:])
        for split in ("train", "val", "test"):
            images: torch.Tensor = getattr(self, f"{split}_images")
            labels: torch.Tensor = getattr(self, f"{split}_labels")
            if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != shape:
                raise ValueError(f"{split}_images: expected uint8 [N, {', '.join(map(str, shape))}], "
                                 f"got {images.dtype} {list(images.shape)}")
            if labels.dtype != torch.int64 or labels.shape != (images.shape[0],):
                raise ValueError(f"{split}_labels: expected int64 [{images.shape[0]}], "
                                 f"got {labels.dtype} {list(labels.shape)}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def fingerprint(self) -> str:
        """SHA-256 of every split's images and labels and the class names: a resume tells by it that the data changed."""
        parts = [data_fingerprint(getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")) for split in ("train", "val", "test")]
        return hashlib.sha256("\n".join([*parts, *self.class_names]).encode("utf-8")).hexdigest()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of every image."""
        channels, height, width = self.train_images.shape[1:]
        return int(channels), int(height), int(width)

    def to(self, device: torch.device | str) -> ImageSplits:
        """A copy with every tensor on `device` (e.g. to keep a small dataset resident on the GPU)."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return dataclasses.replace(self, **moved)


def split_train_val(
    images: torch.Tensor, labels: torch.Tensor, val_size: int, split_seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hold out `val_size` images for validation by a permutation fixed by `split_seed`.

    The split depends only on the seed and the set size, never on the run's own seed, so every
    method of an experiment is validated on the same images.
    """
    total = int(images.shape[0])
    if labels.shape[0] != total:
        raise DataError(f"{total} images but {labels.shape[0]} labels; the dataset files disagree")
    if val_size < 1 or val_size >= total:
        raise DataError(
            f"data.val_size = {val_size} must be at least 1 and smaller than the {total} training images; "
            f"set data.val_size (e.g. --set data.val_size={max(1, total // 10)})"
        )
    generator = torch.Generator().manual_seed(split_seed)
    order = torch.randperm(total, generator=generator)
    val_index, train_index = order[:val_size], order[val_size:]
    return images[train_index], labels[train_index], images[val_index], labels[val_index]


def default_data_dir() -> Path:
    """Where datasets are downloaded: $GAT_TUI_DATA_DIR, else the user cache folder."""
    override = os.environ.get(DATA_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("gat-tui")) / "datasets"


def to_model_input(images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float32 in [0, 1], in the memory layout the networks use."""
    if images.dtype != torch.uint8:
        # a float input would be divided by 255 a second time, and in place: the caller's tensor
        raise TypeError(f"to_model_input expects uint8 images (0..255), got {images.dtype}")
    pixels = images.float().div_(255.0)
    return pixels.contiguous(memory_format=torch.channels_last) if channels_last else pixels


def data_fingerprint(images: torch.Tensor, labels: torch.Tensor) -> str:
    """SHA-256 of the evaluated images and labels: a dataset changed under the same folder name
    (or split, or limit) must not continue another one's sums. One copy to the host per evaluation."""
    digest = hashlib.sha256()
    for tensor in (images, labels):
        host = tensor.detach().to("cpu").contiguous()
        digest.update(f"{host.dtype}{tuple(host.shape)}".encode())
        digest.update(host.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
