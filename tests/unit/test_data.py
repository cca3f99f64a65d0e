"""Dataset loading, offline: tiny CIFAR archives in the real format, synthetic data, image folders."""

from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gat_tui.config import DataConfig
from gat_tui.data import DataError, ImageSplits, default_data_dir, load_splits

# The tiny archives are not the official ones; the loader's MD5 warning is checked once, below.
pytestmark = pytest.mark.filterwarnings("ignore:.*MD5 differs")

PIXELS = 3 * 32 * 32


# the network is refused for every test by tests/conftest.py


def _image(index: int) -> np.ndarray:
    """A flat CIFAR row whose first byte is its index, so every image is recognisable after shuffling."""
    row = (np.arange(PIXELS) * 3 + index * 7) % 256
    row[0] = index
    return row.astype(np.uint8)


def _batch(indices: range, label_key: str, num_classes: int) -> dict[str, Any]:
    return {"data": np.stack([_image(i) for i in indices]), label_key: [i % num_classes for i in indices]}


def _write_tar(files: dict[str, bytes], archive: Path) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


def _cifar10_files(dumps: Any = pickle.dumps) -> dict[str, bytes]:
    files = {f"cifar-10-batches-py/data_batch_{b + 1}": dumps(_batch(range(20 * b, 20 * b + 20), "labels", 10))
             for b in range(5)}
    files["cifar-10-batches-py/test_batch"] = dumps(_batch(range(100, 120), "labels", 10))
    files["cifar-10-batches-py/batches.meta"] = dumps({"label_names": [f"name{k}" for k in range(10)]})
    return files


def _make_cifar10(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    _write_tar(_cifar10_files(), data_dir / "cifar-10-python.tar.gz")
    return data_dir


def _cifar(dataset: str, seed: int = 0) -> DataConfig:
    return DataConfig(dataset=dataset, val_size=10, split_seed=seed)


def _check_round_trip(splits: ImageSplits, train_total: int, num_classes: int) -> None:
    """Every training image comes back exactly, once, with its label, across train and validation."""
    images = torch.cat([splits.train_images, splits.val_images])
    labels = torch.cat([splits.train_labels, splits.val_labels])
    indices = images[:, 0, 0, 0].long()
    assert sorted(indices.tolist()) == list(range(train_total))
    for image, label, index in zip(images, labels, indices.tolist()):
        assert torch.equal(image, torch.from_numpy(_image(index)).view(3, 32, 32))
        assert label.item() == index % num_classes
    assert splits.test_images[:, 0, 0, 0].tolist() == list(range(100, 120))
    assert splits.test_labels.tolist() == [i % num_classes for i in range(100, 120)]


def test_cifar10_from_archive(tmp_path: Path) -> None:
    data_dir = _make_cifar10(tmp_path / "data")
    with pytest.warns(UserWarning, match="MD5"):
        splits = load_splits(_cifar("cifar10"), data_dir, download=False)
    assert splits.train_images.shape == (90, 3, 32, 32) and splits.val_images.shape == (10, 3, 32, 32)
    assert splits.test_images.shape == (20, 3, 32, 32)
    assert splits.train_images.dtype == torch.uint8 and splits.train_labels.dtype == torch.int64
    assert splits.class_names == tuple(f"name{k}" for k in range(10))
    assert splits.num_classes == 10 and splits.image_shape == (3, 32, 32)
    counts = torch.bincount(torch.cat([splits.train_labels, splits.val_labels]), minlength=10)
    assert counts.tolist() == [10] * 10
    _check_round_trip(splits, 100, 10)
    assert splits.to(torch.device("meta")).val_images.device.type == "meta"


def test_cifar10_split_depends_only_on_seed(tmp_path: Path) -> None:
    data_dir = _make_cifar10(tmp_path)
    first = load_splits(_cifar("cifar10", seed=0), data_dir, download=False)
    again = load_splits(_cifar("cifar10", seed=0), data_dir, download=False)  # from the extracted files
    other = load_splits(_cifar("cifar10", seed=1), data_dir, download=False)
    assert torch.equal(first.val_images, again.val_images) and torch.equal(first.train_labels, again.train_labels)
    assert not torch.equal(first.val_images, other.val_images)


def test_cifar100_from_archive(tmp_path: Path) -> None:
    def batch(indices: range) -> bytes:
        content = _batch(indices, "fine_labels", 100)
        content["coarse_labels"] = [i % 20 for i in indices]
        return pickle.dumps(content)

    files = {
        "cifar-100-python/train": batch(range(100)),
        "cifar-100-python/test": batch(range(100, 120)),
        "cifar-100-python/meta": pickle.dumps({"fine_label_names": [f"fine{k}" for k in range(100)],
                                               "coarse_label_names": [f"coarse{k}" for k in range(20)]}),
    }
    _write_tar(files, tmp_path / "cifar-100-python.tar.gz")
    splits = load_splits(_cifar("cifar100"), tmp_path, download=False)
    assert splits.num_classes == 100 and splits.class_names[42] == "fine42"
    assert len(splits.train_labels) == 90 and len(splits.val_labels) == 10 and len(splits.test_labels) == 20
    _check_round_trip(splits, 100, 100)


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes str and bytes as Python 2 str opcodes, as in the official archives."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_py2_str(self, obj: str | bytes) -> None:
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]))
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)))
        self.write(raw)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str


def _py2_dumps(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    # numpy 1.x, which wrote the archives, named the module numpy.core.
    return buffer.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def test_cifar10_python2_pickles(tmp_path: Path) -> None:
    _write_tar(_cifar10_files(_py2_dumps), tmp_path / "cifar-10-python.tar.gz")
    splits = load_splits(_cifar("cifar10"), tmp_path, download=False)
    assert splits.class_names[3] == "name3"
    _check_round_trip(splits, 100, 10)


def test_missing_archive_without_download(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_splits(_cifar("cifar10"), tmp_path / "empty", download=False)
    message = str(caught.value)
    assert str(tmp_path / "empty") in message and "cifar-10-python.tar.gz" in message
    assert "GAT_TUI_DATA_DIR" in message


def test_failed_download_gives_advice(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="could not download CIFAR-100") as caught:
        load_splits(_cifar("cifar100"), tmp_path, download=True)
    assert "network disabled" in str(caught.value) and "https://www.cs.toronto.edu" in str(caught.value)


class _Shell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (self.command,)


def _extract_with(tmp_path: Path, name: str, payload: bytes) -> Path:
    files = _cifar10_files()
    files[f"cifar-10-batches-py/{name}"] = payload
    for path, content in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(content)
    return tmp_path


def test_forbidden_global_is_never_called(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"data": _Shell(f"touch {marker}"), "labels": []})
    data_dir = _extract_with(tmp_path, "data_batch_1", evil)
    with pytest.raises(DataError, match=r"data_batch_1.*system"):
        load_splits(_cifar("cifar10"), data_dir, download=False)
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload, reason",
    [
        (pickle.dumps(_batch(range(20), "labels", 10))[:500], "cannot read"),
        (pickle.dumps({"data": np.zeros((20, 100), np.uint8), "labels": [0] * 20}), "uint8 \\[N, 3072\\]"),
        (pickle.dumps({"data": np.zeros((20, PIXELS), np.uint8)}), "'labels' is missing"),
    ],
)
def test_broken_batch_names_the_file(tmp_path: Path, payload: bytes, reason: str) -> None:
    data_dir = _extract_with(tmp_path, "data_batch_3", payload)
    with pytest.raises(DataError, match=f"data_batch_3.*{reason}"):
        load_splits(_cifar("cifar10"), data_dir, download=False)


def test_default_data_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GAT_TUI_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("GAT_TUI_DATA_DIR")
    assert default_data_dir().name == "datasets"


def _synthetic(**changes: Any) -> DataConfig:
    settings: dict[str, Any] = dict(dataset="synthetic", image_size=16, num_classes=5, train_size=400,
                                    val_size=50, test_size=200, split_seed=3)
    settings.update(changes)
    return DataConfig(**settings)


def test_synthetic_shapes_and_determinism() -> None:
    splits = load_splits(_synthetic())
    assert splits.train_images.shape == (350, 3, 16, 16) and splits.val_images.shape == (50, 3, 16, 16)
    assert splits.test_images.shape == (200, 3, 16, 16) and splits.train_images.dtype == torch.uint8
    assert splits.class_names == ("class_0", "class_1", "class_2", "class_3", "class_4")
    again, other = load_splits(_synthetic()), load_splits(_synthetic(split_seed=4))
    assert torch.equal(splits.train_images, again.train_images) and torch.equal(splits.test_labels, again.test_labels)
    assert not torch.equal(splits.test_images, other.test_images)
    counts = torch.bincount(torch.cat([splits.train_labels, splits.val_labels]), minlength=5)
    assert counts.tolist() == [80] * 5
    small = load_splits(_synthetic(image_size=4, num_classes=2, train_size=10, val_size=2, test_size=3))
    assert small.image_shape == (3, 4, 4) and small.num_classes == 2


def test_synthetic_has_class_structure() -> None:
    splits = load_splits(_synthetic())
    train = splits.train_images.float().flatten(1) / 255
    means = torch.stack([train[splits.train_labels == k].mean(0) for k in range(5)])
    assert torch.cdist(means, means).masked_fill(torch.eye(5, dtype=torch.bool), 1e9).min() > 1.0
    # The structure generalises: nearest class mean beats chance (0.2) by far on the test set.
    test = splits.test_images.float().flatten(1) / 255
    accuracy = (torch.cdist(test, means).argmin(1) == splits.test_labels).float().mean()
    assert accuracy > 0.6
    assert 0.1 < train.std() < 0.4  # noisy, not saturated


def _png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (10, 12), mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).convert(mode).save(path)


def _folder(root: Path, train: dict[str, int], test: dict[str, int]) -> Path:
    colours = {"cat": (200, 10, 10), "dog": (10, 200, 10), "bird": (10, 10, 200)}
    for split, classes in (("train", train), ("test", test)):
        for name, count in classes.items():
            for i in range(count):
                _png(root / split / name / f"{i}.png", colours[name], size=(10 + i, 12))
    return root


def test_imagefolder(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"cat": 3, "dog": 3}, {"cat": 2, "dog": 1})
    _png(root / "test" / "dog" / "grey.png", (90, 90, 90), mode="L")
    config = DataConfig(dataset="imagefolder", path=str(root), image_size=8, val_size=2)
    splits = load_splits(config)
    assert splits.class_names == ("cat", "dog")
    assert splits.train_images.shape == (4, 3, 8, 8) and splits.val_images.shape == (2, 3, 8, 8)
    assert splits.test_images.shape == (4, 3, 8, 8) and splits.test_labels.tolist() == [0, 0, 1, 1]
    assert splits.test_images[0, :, 0, 0].tolist() == [200, 10, 10]
    assert splits.test_images[2, :, 3, 3].tolist() == [10, 200, 10]
    assert splits.test_images[3].unique().tolist() == [90]  # greyscale, converted to RGB
    labels = torch.cat([splits.train_labels, splits.val_labels])
    red = torch.cat([splits.train_images, splits.val_images])[:, 0, 0, 0] == 200
    assert torch.equal(red, labels == 0)


def test_imagefolder_mismatched_classes(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"cat": 2, "dog": 2}, {"cat": 1, "bird": 1})
    with pytest.raises(DataError, match=r"only in train/: dog; only in test/: bird"):
        load_splits(DataConfig(dataset="imagefolder", path=str(root), val_size=1))


def test_imagefolder_missing_or_empty(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"cat": 2}, {})
    with pytest.raises(DataError, match=r"test: folder not found"):
        load_splits(DataConfig(dataset="imagefolder", path=str(root), val_size=1))
    (root / "test" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match=r"test.*cat"):
        load_splits(DataConfig(dataset="imagefolder", path=str(root), val_size=1))
    with pytest.raises(DataError, match="nowhere"):
        load_splits(DataConfig(dataset="imagefolder", path=str(tmp_path / "nowhere"), val_size=1))


def test_imagefolder_finds_images_by_extension_in_any_case_at_any_depth_and_skips_hidden_ones(tmp_path: Path) -> None:
    """Which files become images of which class: written out by hand below, read back by colour."""
    root = tmp_path / "data"
    red, green, blue = (200, 10, 10), (10, 200, 10), (10, 10, 200)
    for split in ("train", "test"):
        _png(root / split / "cat" / "a.PNG", red)  # upper-case extension
        _png(root / split / "cat" / "deep" / "er" / "b.png", red)  # nested two levels down
        _png(root / split / "dog" / "c.JpEg", green, size=(12, 12))  # mixed case, a JPEG
        _png(root / split / "dog" / "d.bmp", green)
        _png(root / split / "dog" / ".hidden.png", blue)  # hidden file
        _png(root / split / "dog" / ".ipynb_checkpoints" / "e.png", blue)  # hidden folder inside a class
        _png(root / split / ".ipynb_checkpoints" / "f.png", blue)  # hidden folder beside the classes: not a class
        (root / split / "cat" / "._a.PNG").write_bytes(b"\x00\x05\x16\x07 AppleDouble, not an image")
        (root / split / "cat" / "notes.txt").write_text("not an image")
    from gat_tui.data.imagefolder import _scan

    listing = _scan(root / "test")
    assert listing.classes == ["cat", "dog"]
    found = [(str(Path(path).relative_to(root / "test")), label) for path, label in listing.samples]
    assert found == [("cat/a.PNG", 0), ("cat/deep/er/b.png", 0), ("dog/c.JpEg", 1), ("dog/d.bmp", 1)]
    splits = load_splits(DataConfig(dataset="imagefolder", path=str(root), image_size=8, val_size=1))
    assert splits.class_names == ("cat", "dog") and splits.test_labels.tolist() == [0, 0, 1, 1]
    # no blue (hidden) image anywhere; green within JPEG's error
    assert all(int(pixel) < 100 for pixel in splits.test_images[:, 2, 4, 4])
    assert splits.train_images.shape[0] + splits.val_images.shape[0] == 4
    assert splits.test_images[2, 1, 4, 4] > 150 and splits.test_images[0, 0, 4, 4] == 200


def test_imagefolder_reads_a_link_to_an_image_only_where_it_lies_inside_its_class_folder(tmp_path: Path) -> None:
    from gat_tui.data.imagefolder import _scan

    root = tmp_path / "data"
    _png(root / "test" / "cat" / "a.png", (200, 10, 10))
    _png(root / "test" / "dog" / "b.png", (10, 200, 10))
    _png(tmp_path / "elsewhere" / "x.png", (10, 10, 200))
    (root / "test" / "cat" / "inside.png").symlink_to(root / "test" / "cat" / "a.png")  # a second name for a.png
    (root / "test" / "cat" / "outside.png").symlink_to(tmp_path / "elsewhere" / "x.png")  # not the class folder's
    found = [Path(path).name for path, _ in _scan(root / "test").samples]
    assert found == ["a.png", "inside.png", "b.png"]
