"""MNIST's IDX files and SVHN's MATLAB files when they are missing, damaged, of the wrong shape, or
cannot be downloaded: each message compared whole, with the file at fault and the fix. Offline:
downloads are replaced by functions that fail (or succeed) as the network would."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
from torchvision.datasets import MNIST
from torchvision.datasets.mnist import read_image_file, read_label_file

from gat_tui.config import DataConfig
from gat_tui.data import DataError, load_splits
from gat_tui.data.svhn import _ensure_file
from gat_tui.data.svhn import _read as read_svhn

S3, LECUN = "https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"
IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/train_32x32.mat"
SVHN_MD5 = "e26dedcc434d2e4c54c9b2d4a06d8373"  # torchvision's SVHN.split_list["train"]


def _idx(path: Path, array: np.ndarray) -> None:
    """IDX as LeCun's page describes it: two zero bytes, 0x08 (uint8), the number of axes, big-endian sizes, the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(size.to_bytes(4, "big") for size in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _mnist(raw: Path, train_labels: list[int] | None = None, test_labels: list[int] | None = None) -> Path:
    train_labels = train_labels or [0, 1, 2, 3]
    test_labels = test_labels or [4, 9]
    _idx(raw / IDX[0], np.zeros((len(train_labels), 28, 28)))
    _idx(raw / IDX[1], np.array(train_labels))
    _idx(raw / IDX[2], np.zeros((len(test_labels), 28, 28)))
    _idx(raw / IDX[3], np.array(test_labels))
    return raw


def _mnist_refusal(data_dir: Path, download: bool = False) -> str:
    with pytest.raises(DataError) as caught:
        load_splits(DataConfig(dataset="mnist", val_size=1), data_dir, download=download)
    return str(caught.value)


def _mnist_advice(raw: Path, archive: str) -> str:
    return f"download {S3}{archive} on a machine with internet access and put it, un-gzipped, in {raw}, or pass --data-dir / set GAT_TUI_DATA_DIR"


def test_a_missing_idx_file_is_named_with_the_first_mirror_to_fetch_it_from(tmp_path: Path) -> None:
    raw = _mnist(tmp_path / "MNIST" / "raw")
    (raw / IDX[3]).unlink()  # the others are there: the last one is named
    assert _mnist_refusal(tmp_path) == (
        f"MNIST: {raw / IDX[3]} is missing and downloading is off; {_mnist_advice(raw, 't10k-labels-idx1-ubyte.gz')}"
    )


def test_a_download_tries_every_mirror_in_turn_and_fetches_only_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _mnist(tmp_path / "MNIST" / "raw")
    complete = {name: (raw / name).read_bytes() for name in IDX}
    for name in IDX[1:]:
        (raw / name).unlink()
    tried: list[str] = []
    official_md5 = dict(MNIST.resources)

    def second_mirror_only(url: str, download_root: str, filename: str, md5: str) -> None:
        tried.append(url)
        assert md5 == official_md5[filename]  # every download is checked against torchvision's sum
        if url.startswith(S3):
            raise OSError("503 Service Unavailable")  # nothing written
        name = filename.removesuffix(".gz")
        (Path(download_root) / name).write_bytes(complete[name])  # as if un-gzipped there

    monkeypatch.setattr("gat_tui.data.mnist.download_and_extract_archive", second_mirror_only)
    splits = load_splits(DataConfig(dataset="mnist", val_size=1), tmp_path, download=True)
    assert tried == [f"{mirror}{name}.gz" for name in IDX[1:] for mirror in (S3, LECUN)]
    assert splits.test_labels.tolist() == [4, 9]


def test_a_download_that_fails_on_every_mirror_says_what_each_answered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(url: str, download_root: str, filename: str, md5: str) -> None:
        raise ConnectionRefusedError(f"refused by {url.split('/')[2]}")

    monkeypatch.setattr("gat_tui.data.mnist.download_and_extract_archive", refused)
    raw = tmp_path / "MNIST" / "raw"
    assert _mnist_refusal(tmp_path, download=True) == (
        f"could not download MNIST's train-images-idx3-ubyte.gz into {raw} ("
        f"{S3}: ConnectionRefusedError: refused by ossci-datasets.s3.amazonaws.com; "
        f"{LECUN}: ConnectionRefusedError: refused by yann.lecun.com); {_mnist_advice(raw, 'train-images-idx3-ubyte.gz')}"
    )


def _error_of(read: Any, path: Path) -> str:
    """What torchvision's own parser says of the file, as the message should quote it."""
    try:
        read(str(path))
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    raise AssertionError(f"{path} was read")


def test_damaged_idx_files_are_named_with_the_parsers_error(tmp_path: Path) -> None:
    raw = _mnist(tmp_path / "MNIST" / "raw")
    _idx(raw / IDX[0], np.zeros((4, 28)))  # two axes: a label-like file where images belong
    assert _mnist_refusal(tmp_path) == (
        f"{raw / IDX[0]}: not an IDX image file of uint8 [N, H, W] ({_error_of(read_image_file, raw / IDX[0])}); "
        "delete it to download it again"
    )
    _mnist(raw)
    _idx(raw / IDX[3], np.zeros((2, 3)))
    assert _mnist_refusal(tmp_path) == (
        f"{raw / IDX[3]}: not an IDX label file of uint8 [N] ({_error_of(read_label_file, raw / IDX[3])}); "
        "delete it to download it again"
    )


def test_fewer_labels_than_images_are_refused(tmp_path: Path) -> None:
    raw = _mnist(tmp_path / "MNIST" / "raw")
    _idx(raw / IDX[1], np.array([0, 1, 2]))  # 3 labels for 4 images
    assert _mnist_refusal(tmp_path) == f"{raw / IDX[1]}: 3 labels for the 4 images of {raw / IDX[0]}"


@pytest.mark.parametrize(("split", "labels_file"), [("train", IDX[1]), ("test", IDX[3])])
def test_a_label_beyond_the_ten_classes_is_refused_naming_its_file(tmp_path: Path, split: str, labels_file: str) -> None:
    raw = tmp_path / "MNIST" / "raw"
    _mnist(raw, train_labels=[0, 1, 10, 3] if split == "train" else None, test_labels=[10, 9] if split == "test" else None)
    assert _mnist_refusal(tmp_path) == f"{raw / labels_file}: labels outside 0..9, the classes of MNIST"


def _svhn(path: Path, images: Any = None, labels: Any = None) -> Path:
    """A MATLAB file as SVHN's (two black images labelled 1 and 10); False leaves a key out."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"X": np.zeros((32, 32, 3, 2), np.uint8) if images is None else images,
               "y": np.array([[1], [10]], np.uint8) if labels is None else labels}
    scipy.io.savemat(str(path), {key: value for key, value in content.items() if value is not False})
    return path


def _svhn_refusal(path: Path) -> str:
    with pytest.raises(DataError) as caught:
        read_svhn(path)
    return str(caught.value)


@pytest.mark.parametrize(
    ("images", "found"),
    [
        (np.zeros((32, 32, 3, 2), np.float64), "float64 [32, 32, 3, 2]"),
        (np.zeros((32, 32, 4, 2), np.uint8), "uint8 [32, 32, 4, 2]"),  # RGBA
        (np.zeros((32, 32, 2, 3), np.uint8), "uint8 [32, 32, 2, 3]"),  # the images and channels axes swapped
        (np.zeros((32, 32, 3), np.uint8), "uint8 [32, 32, 3]"),  # one image without its axis
        (False, "'NoneType'"),  # no 'X' at all
    ],
)
def test_svhn_images_of_the_wrong_type_or_shape_say_what_was_found(tmp_path: Path, images: Any, found: str) -> None:
    path = _svhn(tmp_path / "train_32x32.mat", images)
    assert _svhn_refusal(path) == f"{path}: 'X' should be uint8 [H, W, 3, N], found {found}"


@pytest.mark.parametrize("labels", [np.array([[1], [2], [3]], np.uint8), False])
def test_svhn_labels_must_be_one_per_image(tmp_path: Path, labels: Any) -> None:
    path = _svhn(tmp_path / "train_32x32.mat", labels=labels)
    assert _svhn_refusal(path) == f"{path}: 'y' should hold one label per image (2)"


@pytest.mark.parametrize("labels", [[[0], [5]], [[1], [11]]])
def test_svhn_labels_must_be_1_to_10(tmp_path: Path, labels: list[list[int]]) -> None:
    path = _svhn(tmp_path / "train_32x32.mat", labels=np.array(labels, np.uint8))
    assert _svhn_refusal(path) == f"{path}: labels outside 1..10 (SVHN's 10 is the digit 0)"


def test_svhn_labels_at_both_ends_become_digits_1_and_0(tmp_path: Path) -> None:
    path = _svhn(tmp_path / "train_32x32.mat", labels=np.array([[1], [10]], np.uint8))
    images, labels = read_svhn(path)
    assert labels.tolist() == [1, 0] and str(labels.dtype) == "torch.int64" and images.shape == (2, 3, 32, 32)


def test_an_unreadable_svhn_file_quotes_scipys_error(tmp_path: Path) -> None:
    path = tmp_path / "train_32x32.mat"
    path.write_bytes(b"MATLAB 5.0 MAT-file, cut short")
    assert _svhn_refusal(path) == f"{path}: cannot read the SVHN file ({_error_of(scipy.io.loadmat, path)}); delete it to download it again"


def test_without_scipy_the_message_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy.io", None)  # `import scipy.io` now raises ImportError
    assert _svhn_refusal(tmp_path / "train_32x32.mat") == "SVHN's .mat files are read with scipy: pip install scipy"


def _svhn_advice(path: Path) -> str:
    return f"download {SVHN_URL} on a machine with internet access and put it at {path}, or pass --data-dir / set GAT_TUI_DATA_DIR"


def test_a_missing_svhn_file_with_downloading_off(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        _ensure_file("train", tmp_path, download=False)
    path = tmp_path / "train_32x32.mat"
    assert str(caught.value) == f"SVHN: {path} is missing and downloading is off; {_svhn_advice(path)}"


def test_svhn_downloads_that_fail_leave_no_file_and_say_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "train_32x32.mat"
    outcomes: list[Any] = []

    def download(url: str, root: str, filename: str, md5: str) -> None:
        assert (url, Path(root) / filename, md5) == (SVHN_URL, path, SVHN_MD5)
        outcome = outcomes.pop(0)
        if outcome is not None:
            path.write_bytes(outcome)
        if outcome == b"cut":
            raise ConnectionResetError("reset by peer")

    monkeypatch.setattr("gat_tui.data.svhn.download_url", download)

    def refusal() -> str:
        with pytest.raises(DataError) as caught:
            _ensure_file("train", tmp_path, download=True)
        assert not path.exists()
        return str(caught.value)

    outcomes.append(b"cut")  # half a file, then the connection drops
    assert refusal() == f"could not download SVHN's train_32x32.mat into {tmp_path} (ConnectionResetError: reset by peer); {_svhn_advice(path)}"
    outcomes.append(b"an HTML error page")  # torchvision keeps a file whose MD5 does not match
    assert refusal() == f"SVHN: the download of {SVHN_URL} did not match its MD5; {_svhn_advice(path)}"
    outcomes.append(None)  # returned without writing anything
    assert refusal() == f"SVHN: the download of {SVHN_URL} did not match its MD5; {_svhn_advice(path)}"


def test_a_downloaded_svhn_file_with_the_official_md5_is_kept_without_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "train_32x32.mat"
    monkeypatch.setattr("gat_tui.data.svhn.download_url", lambda url, root, filename, md5: _svhn(Path(root) / filename))
    monkeypatch.setattr("gat_tui.data.svhn.calculate_md5", lambda file: SVHN_MD5 if Path(file) == path else "other")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an "MD5 differs" warning would fail here
        assert _ensure_file("train", tmp_path, download=True) == path
        assert _ensure_file("train", tmp_path, download=False) == path  # found, checked, no warning
    assert path.is_file()
