"""Your own images: `config.path` holds train/ and test/, each with one sub-folder per class.

Every image is converted to RGB, resized to image_size x image_size (aspect ratio not kept) and
stacked in memory as uint8, so this suits folders of up to some hundred thousand small images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.datasets import ImageFolder

from gat_tui.config import DataConfig
from gat_tui.data.splits import DataError, ImageSplits, split_train_val

_LAYOUT = "expected <path>/train/<class>/*.png and <path>/test/<class>/*.png (jpg, bmp, ... also work)"


def _scan(folder: Path) -> ImageFolder:
    """torchvision's listing of class sub-folders and image files, without reading any image."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; {_LAYOUT}")
    try:
        return ImageFolder(str(folder))
    except FileNotFoundError as error:  # no class folders, or a class folder without images
        raise DataError(f"{folder}: {error}; {_LAYOUT}") from None


def _check_same_classes(train: ImageFolder, test: ImageFolder, root: Path) -> None:
    if train.classes == test.classes:
        return
    only_train = sorted(set(train.classes) - set(test.classes))
    only_test = sorted(set(test.classes) - set(train.classes))
    parts = []
    if only_train:
        parts.append(f"only in train/: {', '.join(only_train)}")
    if only_test:
        parts.append(f"only in test/: {', '.join(only_test)}")
    raise DataError(f"{root}: train/ and test/ must have the same class folders; {'; '.join(parts)}")


def _read_images(dataset: ImageFolder, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.empty(len(dataset.samples), 3, size, size, dtype=torch.uint8)
    for index, (path, _) in enumerate(dataset.samples):
        try:
            with Image.open(path) as image:
                resized = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as error:
            raise DataError(f"{path}: cannot read the image ({error}); fix or remove the file") from None
        images[index] = torch.from_numpy(np.array(resized, dtype=np.uint8)).permute(2, 0, 1)
    labels = torch.tensor(dataset.targets, dtype=torch.int64)
    return images, labels


def load_imagefolder(config: DataConfig) -> ImageSplits:
    """train/ split into train and validation by `val_size`/`split_seed`; test/ as the test set."""
    if not config.path:
        raise DataError(f"data.path is empty; imagefolder needs the folder holding train/ and test/; {_LAYOUT}")
    root = Path(config.path).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: folder not found (data.path); {_LAYOUT}")
    train_set, test_set = _scan(root / "train"), _scan(root / "test")
    _check_same_classes(train_set, test_set, root)
    train_images, train_labels = _read_images(train_set, config.image_size)
    test_images, test_labels = _read_images(test_set, config.image_size)
    train_x, train_y, val_x, val_y = split_train_val(train_images, train_labels, config.val_size, config.split_seed)
    return ImageSplits(train_x, train_y, val_x, val_y, test_images, test_labels, tuple(train_set.classes))
