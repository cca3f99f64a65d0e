"""Your own images: `config.path` holds train/ and test/, each with one sub-folder per class.

Every image is converted to RGB, resized to image_size x image_size (aspect ratio not kept) and
stacked in memory as uint8, so this suits folders of up to some hundred thousand small images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.datasets.folder import IMG_EXTENSIONS

from gat_tui.config import DataConfig
from gat_tui.data.splits import DataError, ImageSplits, split_train_val

_LAYOUT = "expected <path>/train/<class>/*.png and <path>/test/<class>/*.png (jpg, bmp, ... also work)"


@dataclass(frozen=True)
class _Listing:
    """Class names (sorted folder names) and (image path, class index) pairs; no image read yet."""

    classes: list[str]
    samples: list[tuple[str, int]]
    linked: tuple[str, ...] = ()  # class folders that are links, not followed (named when the classes differ)

    @property
    def targets(self) -> list[int]:
        return [label for _, label in self.samples]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (RuntimeError, OSError):  # RuntimeError: a link that loops (`ln -s a.png a.png`)
        raise DataError(f"{path}: a symbolic link that loops back on itself; remove it") from None


def _hidden(name: str) -> bool:
    """A hidden file or folder: `.ipynb_checkpoints/`, macOS's `._cat.png` (not an image), `.DS_Store`, ..."""
    return name.startswith(".")


def _scan(folder: Path) -> _Listing:
    """Class sub-folders and their image files, without reading any image.

    Images are found at any depth below their class folder, by extension in any case (`.PNG`,
    `.JpEg`); hidden files and folders (a leading dot) are skipped at every level. Links are not
    followed out of a class folder (nor back into the data set through another class), so no image
    is ever counted twice or under another class's label.
    """
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; {_LAYOUT}")
    entries = [entry for entry in folder.iterdir() if not _hidden(entry.name)]
    class_dirs = sorted(entry for entry in entries if entry.is_dir() and not entry.is_symlink())
    linked = tuple(sorted(entry.name for entry in entries if entry.is_symlink() and entry.is_dir()))
    if not class_dirs:
        raise DataError(f"{folder}: no class folders; {_LAYOUT}")
    samples: list[tuple[str, int]] = []
    for label, class_dir in enumerate(class_dirs):
        real_class_dir = class_dir.resolve()
        found = []
        for directory, subfolders, files in os.walk(class_dir, followlinks=False):
            subfolders[:] = sorted(name for name in subfolders if not _hidden(name))  # os.walk skips the removed ones
            for name in sorted(files):
                path = Path(directory) / name
                if not _hidden(name) and path.suffix.lower() in IMG_EXTENSIONS and _inside(_resolved(path), real_class_dir):
                    found.append((str(path), label))
        if not found:
            raise DataError(f"{class_dir}: class folder without images; {_LAYOUT}")
        samples += found
    return _Listing([entry.name for entry in class_dirs], samples, linked)


def _check_same_classes(train: _Listing, test: _Listing, root: Path) -> None:
    if train.classes == test.classes:
        return
    only_train = sorted(set(train.classes) - set(test.classes))
    only_test = sorted(set(test.classes) - set(train.classes))
    parts = []
    if only_train:
        parts.append(f"only in train/: {', '.join(only_train)}")
    if only_test:
        parts.append(f"only in test/: {', '.join(only_test)}")
    for split, listing in (("train", train), ("test", test)):
        if listing.linked:
            parts.append(f"{split}/{', '.join(listing.linked)}: links to folders, which are not followed (copy the folder in)")
    raise DataError(f"{root}: train/ and test/ must have the same class folders; {'; '.join(parts)}")


def _as_8_bit_rgb(image: Image.Image, path: str) -> Image.Image:
    """The image in 8-bit RGB; 16-bit grey levels scaled down (Pillow's own conversion clips them at 255: all white)."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        levels = np.asarray(image, dtype=np.int64)
        if levels.min() < 0 or levels.max() > 65535:
            raise DataError(f"{path}: a {image.mode} image with values outside 0..65535; save it as an 8- or 16-bit image")
        # 'I' is how some Pillow versions open a 16-bit PNG: its values are 16-bit levels as well
        return Image.fromarray((levels >> 8).astype(np.uint8), "L").convert("RGB")
    if image.mode == "F":
        raise DataError(f"{path}: a floating-point image (mode F); save it as an 8- or 16-bit image")
    return image.convert("RGB")


def _read_images(dataset: _Listing, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.empty(len(dataset.samples), 3, size, size, dtype=torch.uint8)
    for index, (path, _) in enumerate(dataset.samples):
        try:
            with Image.open(path) as image:
                resized = _as_8_bit_rgb(image, path).resize((size, size), Image.Resampling.BILINEAR)
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
    if len(train_set.classes) < 2:
        raise DataError(
            f"{root}: only one class folder ({train_set.classes[0]}); a classifier needs at least 2 classes; {_LAYOUT}"
        )
    train_images, train_labels = _read_images(train_set, config.image_size)
    test_images, test_labels = _read_images(test_set, config.image_size)
    train_x, train_y, val_x, val_y = split_train_val(train_images, train_labels, config.val_size, config.split_seed)
    return ImageSplits(train_x, train_y, val_x, val_y, test_images, test_labels, tuple(train_set.classes))
