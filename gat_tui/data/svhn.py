"""SVHN (cropped digits, 32x32) from its MATLAB files, as torchvision reads them.

torchvision's `SVHN` class is the source of truth for the URLs, file names and MD5 sums; a
missing file is downloaded into the data folder and checked against its MD5. The files are read
here with `scipy.io.loadmat` (which builds arrays only) and turned round as torchvision does:
'X' is [H, W, C, N] uint8, 'y' holds the labels 1..10 with 10 for the digit 0 (mapped to 0).
The 531k 'extra' images are not used. A file whose MD5 differs from the official one is read
all the same after a warning: the contents are validated, and test files differ by design.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import SVHN
from torchvision.datasets.utils import calculate_md5, download_url

from gat_tui.config import DataConfig
from gat_tui.data.splits import DataError, ImageSplits, split_train_val

CLASSES = tuple(str(digit) for digit in range(10))


def _advice(url: str, path: Path) -> str:
    return f"download {url} on a machine with internet access and put it at {path}, or pass --data-dir / set GAT_TUI_DATA_DIR"


def _ensure_file(split: str, data_dir: Path, download: bool) -> Path:
    url, filename, md5 = SVHN.split_list[split]
    path = data_dir / filename
    if path.is_file():
        if calculate_md5(path) != md5:
            warnings.warn(f"{path}: MD5 differs from the official SVHN {split} file", stacklevel=2)
        return path
    if not download:
        raise DataError(f"SVHN: {path} is missing and downloading is off; {_advice(url, path)}")
    try:
        download_url(url, str(data_dir), filename=filename, md5=md5)
    except Exception as error:  # URLError, HTTP errors, disk full, ...
        path.unlink(missing_ok=True)
        raise DataError(f"could not download SVHN's {filename} into {data_dir} ({type(error).__name__}: {error}); "
                        f"{_advice(url, path)}") from None
    if not path.is_file() or calculate_md5(path) != md5:  # download_url leaves a file whose MD5 does not match
        path.unlink(missing_ok=True)
        raise DataError(f"SVHN: the download of {url} did not match its MD5; {_advice(url, path)}")
    return path


def _read(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        import scipy.io
    except ImportError:
        raise DataError("SVHN's .mat files are read with scipy: pip install scipy") from None
    try:
        loaded = scipy.io.loadmat(str(path))
    except Exception as error:  # truncated or not a MATLAB file: anything from ValueError to OSError
        raise DataError(f"{path}: cannot read the SVHN file ({type(error).__name__}: {error}); delete it to download it again") from None
    images, labels = loaded.get("X"), loaded.get("y")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[2] != 3:
        found = f"{images.dtype} {list(images.shape)}" if isinstance(images, np.ndarray) else repr(type(images).__name__)
        raise DataError(f"{path}: 'X' should be uint8 [H, W, 3, N], found {found}")
    if not isinstance(labels, np.ndarray) or labels.size != images.shape[3]:
        raise DataError(f"{path}: 'y' should hold one label per image ({images.shape[3]})")
    labels = labels.astype(np.int64).reshape(-1)
    if labels.size and (labels.min() < 1 or labels.max() > 10):
        raise DataError(f"{path}: labels outside 1..10 (SVHN's 10 is the digit 0)")
    labels[labels == 10] = 0
    return torch.from_numpy(np.ascontiguousarray(images.transpose(3, 2, 0, 1))), torch.from_numpy(labels)


def load_svhn(config: DataConfig, data_dir: Path, download: bool = True) -> ImageSplits:
    """SVHN: the 73,257 training images split by `config.val_size`/`split_seed`, and the 26,032 test images."""
    train_images, train_labels = _read(_ensure_file("train", data_dir, download))
    test_images, test_labels = _read(_ensure_file("test", data_dir, download))
    train_x, train_y, val_x, val_y = split_train_val(train_images, train_labels, config.val_size, config.split_seed)
    return ImageSplits(train_x, train_y, val_x, val_y, test_images, test_labels, CLASSES)
