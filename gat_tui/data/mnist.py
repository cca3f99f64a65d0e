"""MNIST and Fashion-MNIST from their IDX files, through torchvision's file list and parsers.

torchvision's dataset classes are the source of truth for mirrors, file names and MD5 sums:
each missing file is downloaded (gzip, checked against its MD5, then extracted) into
DATA_DIR/<MNIST|FashionMNIST>/raw/, where torchvision itself keeps them, and read with
torchvision's IDX parsers. The classes themselves are not instantiated: they would also read a
legacy `processed/*.pt` file with torch.load, and this package never unpickles a data file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.datasets import MNIST, FashionMNIST
from torchvision.datasets.mnist import read_image_file, read_label_file
from torchvision.datasets.utils import download_and_extract_archive

from gat_tui.config import DataConfig
from gat_tui.data.splits import DataError, ImageSplits, split_train_val


@dataclass(frozen=True)
class _Spec:
    title: str
    source: type[MNIST]  # FashionMNIST subclasses MNIST


_SPECS = {"mnist": _Spec("MNIST", MNIST), "fashion_mnist": _Spec("Fashion-MNIST", FashionMNIST)}


def raw_folder(dataset: str, data_dir: Path) -> Path:
    """Where the extracted IDX files of `dataset` ('mnist' or 'fashion_mnist') live, as torchvision keeps them."""
    return data_dir / _SPECS[dataset].source.__name__ / "raw"


def _advice(spec: _Spec, folder: Path, archive: str) -> str:
    return (f"download {spec.source.mirrors[0]}{archive} on a machine with internet access and put it, "
            f"un-gzipped, in {folder}, or pass --data-dir / set GAT_TUI_DATA_DIR")


def _ensure_files(spec: _Spec, folder: Path, download: bool) -> None:
    """Every IDX file of the data set in `folder`, downloading the missing ones (MD5-checked) when allowed."""
    for archive, md5 in spec.source.resources:
        extracted = folder / archive.removesuffix(".gz")
        if extracted.is_file():
            continue
        if not download:
            raise DataError(f"{spec.title}: {extracted} is missing and downloading is off; {_advice(spec, folder, archive)}")
        errors = []
        for mirror in spec.source.mirrors:
            try:
                download_and_extract_archive(f"{mirror}{archive}", str(folder), filename=archive, md5=md5)
                break
            except Exception as error:  # URLError, HTTP errors, a checksum mismatch, a bad gzip, ...
                (folder / archive).unlink(missing_ok=True)  # a partial archive would pass for a whole one
                errors.append(f"{mirror}: {type(error).__name__}: {error}")
        else:
            raise DataError(f"could not download {spec.title}'s {archive} into {folder} ({'; '.join(errors)}); "
                            f"{_advice(spec, folder, archive)}")


def _read(folder: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    images_path, labels_path = folder / f"{prefix}-images-idx3-ubyte", folder / f"{prefix}-labels-idx1-ubyte"
    try:
        images = read_image_file(str(images_path))
    except Exception as error:  # torchvision asserts the magic number and the dimensions
        raise DataError(f"{images_path}: not an IDX image file of uint8 [N, H, W] ({type(error).__name__}: {error}); "
                        "delete it to download it again") from None
    try:
        labels = read_label_file(str(labels_path))
    except Exception as error:
        raise DataError(f"{labels_path}: not an IDX label file of uint8 [N] ({type(error).__name__}: {error}); "
                        "delete it to download it again") from None
    if labels.shape != (images.shape[0],):
        raise DataError(f"{labels_path}: {labels.shape[0]} labels for the {images.shape[0]} images of {images_path}")
    return images.unsqueeze(1).contiguous(), labels.long()


def load_mnist(config: DataConfig, data_dir: Path, download: bool = True) -> ImageSplits:
    """MNIST or Fashion-MNIST: the 60k training images split by `config.val_size`/`split_seed`, and the 10k test images,
    as one-channel uint8 [N, 1, 28, 28]."""
    spec = _SPECS[config.dataset]
    folder = raw_folder(config.dataset, data_dir)
    _ensure_files(spec, folder, download)
    train_images, train_labels = _read(folder, "train")
    test_images, test_labels = _read(folder, "t10k")
    classes = tuple(spec.source.classes)
    for path, labels in ((folder / "train-labels-idx1-ubyte", train_labels), (folder / "t10k-labels-idx1-ubyte", test_labels)):
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= len(classes)):
            raise DataError(f"{path}: labels outside 0..{len(classes) - 1}, the classes of {spec.title}")
    train_x, train_y, val_x, val_y = split_train_val(train_images, train_labels, config.val_size, config.split_seed)
    return ImageSplits(train_x, train_y, val_x, val_y, test_images, test_labels, classes)
