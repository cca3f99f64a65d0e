"""CIFAR-10 and CIFAR-100 from the python-version archives, read without trusting their pickles.

torchvision's dataset classes are the source of truth for URLs, file names and checksums, but the
batch files are read here with an unpickler that can build numpy arrays and nothing else: a
tampered archive in a shared cache folder must not be able to run code.
"""

from __future__ import annotations

import hashlib
import pickle
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.datasets import CIFAR10, CIFAR100
from torchvision.datasets.utils import download_and_extract_archive

from gat_tui.config import DataConfig
from gat_tui.data.splits import DataError, ImageSplits, split_train_val

_IMAGE_SHAPE = (3, 32, 32)


@dataclass(frozen=True)
class _Spec:
    title: str
    source: type[CIFAR10]  # CIFAR100 subclasses CIFAR10
    label_key: str

    @property
    def files(self) -> list[str]:
        return [name for name, _ in self.source.train_list + self.source.test_list] + [self.source.meta["filename"]]


_SPECS = {
    "cifar10": _Spec("CIFAR-10", CIFAR10, "labels"),
    "cifar100": _Spec("CIFAR-100", CIFAR100, "fine_labels"),
}


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The globals an ndarray pickle names, under numpy 1.x (`numpy.core`) and 2.x (`numpy._core`) spellings."""
    try:
        from numpy._core import multiarray, numeric  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar  # numpy scalars, e.g. np.int64 labels
        if hasattr(numeric, "_frombuffer"):  # what protocol-5 pickles of arrays name
            allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves only the numpy globals an array needs; anything else (os.system, ...) is refused."""

    _allowed = _numpy_globals()

    def __init__(self, file: Any, path: Path) -> None:
        # encoding="bytes": the archives are Python 2 pickles whose str objects hold the raw pixel buffers.
        super().__init__(file, encoding="bytes")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        found = self._allowed.get((module, name))
        if found is None:
            raise DataError(
                f"{self._path}: refusing to load, the pickle references {module}.{name}, which a CIFAR batch "
                f"never contains; the file is corrupt or tampered with, delete it and the archive and re-download"
            )
        return found


def _unpickle(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            loaded = _NumpyOnlyUnpickler(handle, path).load()
    except DataError:
        raise
    except Exception as error:  # truncated/garbled pickles raise anything from EOFError to ValueError
        raise DataError(f"{path}: cannot read the CIFAR batch ({type(error).__name__}: {error}); "
                        f"delete the folder {path.parent} and the archive next to it, then load again") from None
    if not isinstance(loaded, dict):
        raise DataError(f"{path}: expected a pickled dict, found {type(loaded).__name__}")
    # Python 2 pickles read with encoding="bytes" have bytes keys; Python 3 ones have str keys.
    return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in loaded.items()}


def _read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    for key in ("data", label_key):
        if key not in batch:
            raise DataError(f"{path}: key '{key}' is missing (found {', '.join(map(str, batch))})")
    data, raw_labels = batch["data"], batch[label_key]
    size = int(np.prod(_IMAGE_SHAPE))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != size:
        found = f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: 'data' should be uint8 [N, {size}], found {found}")
    try:
        labels = np.asarray(raw_labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: '{label_key}' is not a list of integers") from None
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path}: {data.shape[0]} images but '{label_key}' has shape {list(labels.shape)}")
    return data.reshape(-1, *_IMAGE_SHAPE), labels


def _read_names(path: Path, key: str) -> tuple[str, ...]:
    meta = _unpickle(path)
    names = meta.get(key)
    if not isinstance(names, (list, tuple)) or not names:
        raise DataError(f"{path}: key '{key}' is missing or empty")
    return tuple(name.decode("utf-8") if isinstance(name, bytes) else str(name) for name in names)


def _advice(spec: _Spec, data_dir: Path) -> str:
    return (f"download {spec.source.url} on a machine with internet access and put the file at "
            f"{data_dir / spec.source.filename}, or pass --data-dir / set GAT_TUI_DATA_DIR")


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _extract(spec: _Spec, archive: Path, data_dir: Path) -> None:
    if _md5(archive) != spec.source.tgz_md5:
        # Not fatal: the contents are validated file by file, and custom or test archives differ.
        warnings.warn(f"{archive}: MD5 differs from the official {spec.title} archive", stacklevel=2)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(data_dir, filter="data")  # refuses members escaping data_dir
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"{archive}: cannot extract the {spec.title} archive ({error}); delete it and "
                        f"{_advice(spec, data_dir)}") from None


def _ensure_extracted(spec: _Spec, data_dir: Path, download: bool) -> Path:
    """The folder holding the batch files, extracting or downloading the archive when needed."""
    folder = data_dir / spec.source.base_folder
    archive = data_dir / spec.source.filename
    if all((folder / name).is_file() for name in spec.files):
        return folder
    if archive.is_file():
        _extract(spec, archive, data_dir)
    elif not download:
        raise DataError(f"{spec.title} is not in {data_dir} and downloading is off; {_advice(spec, data_dir)}")
    else:
        try:
            download_and_extract_archive(spec.source.url, str(data_dir), filename=spec.source.filename,
                                         md5=spec.source.tgz_md5)
        except Exception as error:  # URLError, HTTP errors, disk full, checksum mismatch, bad gzip, ...
            # A partial archive would be mistaken for a complete one on the next run.
            archive.unlink(missing_ok=True)
            raise DataError(f"could not download {spec.title} into {data_dir} ({type(error).__name__}: {error}); "
                            f"{_advice(spec, data_dir)}") from None
    missing = [name for name in spec.files if not (folder / name).is_file()]
    if missing:
        raise DataError(f"{archive}: the archive lacks {spec.source.base_folder}/{missing[0]}; "
                        f"delete it and {_advice(spec, data_dir)}")
    return folder


def load_cifar(config: DataConfig, data_dir: Path, download: bool = True) -> ImageSplits:
    """CIFAR-10/100: the 50k training images split by `config.val_size`/`split_seed`, and the 10k test images."""
    spec = _SPECS[config.dataset]
    folder = _ensure_extracted(spec, data_dir, download)
    meta_path = folder / spec.source.meta["filename"]
    class_names = _read_names(meta_path, spec.source.meta["key"])
    splits: list[tuple[torch.Tensor, torch.Tensor]] = []
    for file_list in (spec.source.train_list, spec.source.test_list):
        batches = [_read_batch(folder / name, spec.label_key) for name, _ in file_list]
        labels = np.concatenate([labels for _, labels in batches])
        if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
            raise DataError(f"{folder}: labels outside 0..{len(class_names) - 1}, the classes {meta_path} names")
        images = np.concatenate([images for images, _ in batches])
        splits.append((torch.from_numpy(images), torch.from_numpy(labels)))
    (train_images, train_labels), (test_images, test_labels) = splits
    train_x, train_y, val_x, val_y = split_train_val(train_images, train_labels, config.val_size, config.split_seed)
    return ImageSplits(train_x, train_y, val_x, val_y, test_images, test_labels, class_names)
