"""The CIFAR archive on disk: what a user is told when it is missing, corrupt, incomplete, hostile,
cannot be downloaded, or labels images with classes the meta file does not name. Messages are
compared whole: each names the file at fault and the fix (the URL and where to put the file)."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gat_tui.config import DataConfig
from gat_tui.data import DataError, load_splits

ROW = 3 * 32 * 32
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
FILES = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta"]


def _advice(data_dir: Path) -> str:
    return (f"download {URL} on a machine with internet access and put the file at {data_dir / 'cifar-10-python.tar.gz'}, "
            "or pass --data-dir / set GAT_TUI_DATA_DIR")


def _contents(labels: dict[str, list[int]] | None = None) -> dict[str, bytes]:
    """Every CIFAR-10 file, two images per batch; `labels` replaces a batch's labels."""
    files = {name: pickle.dumps({"data": np.zeros((2, ROW), np.uint8), "labels": (labels or {}).get(name, [3, 4])})
             for name in FILES[:-1]}
    files["batches.meta"] = pickle.dumps({"label_names": [f"class{k}" for k in range(10)]})
    return files


def _tar(archive: Path, members: dict[str, bytes]) -> Path:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return archive


def _load(data_dir: Path, download: bool = False) -> Any:
    return load_splits(DataConfig(dataset="cifar10", val_size=2), data_dir, download=download)


def _refusal(data_dir: Path, download: bool = False) -> str:
    with pytest.raises(DataError) as caught:
        _load(data_dir, download)
    return str(caught.value)


def test_without_the_archive_and_with_downloading_off_the_message_says_where_to_put_it(tmp_path: Path) -> None:
    assert _refusal(tmp_path) == f"CIFAR-10 is not in {tmp_path} and downloading is off; {_advice(tmp_path)}"


def test_a_failed_download_says_why_and_leaves_no_partial_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _refusal(tmp_path, download=True) == (
        f"could not download CIFAR-10 into {tmp_path} (OSError: network disabled in tests); {_advice(tmp_path)}"
    )

    asked: list[tuple[str, str, str, str]] = []

    def cut_off(url: str, download_root: str, filename: str, md5: str) -> None:
        asked.append((url, download_root, filename, md5))
        (Path(download_root) / filename).write_bytes(b"\x1f\x8b the first bytes only")
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr("gat_tui.data.cifar.download_and_extract_archive", cut_off)
    assert "(ConnectionResetError: connection reset by peer)" in _refusal(tmp_path, download=True)
    assert not (tmp_path / "cifar-10-python.tar.gz").exists()
    # the official archive, checked against its official MD5, into the data folder
    assert asked == [(URL, str(tmp_path), "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")]


def test_a_corrupt_archive_warns_of_its_md5_and_names_itself(tmp_path: Path) -> None:
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"not a gzip file at all")
    with pytest.warns(UserWarning, match=f"^{archive}: MD5 differs from the official CIFAR-10 archive$"), pytest.raises(DataError) as caught:
        _load(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{archive}: cannot extract the CIFAR-10 archive (")
    assert message.endswith(f"); delete it and {_advice(tmp_path)}")


@pytest.mark.filterwarnings("ignore:.*MD5 differs")
def test_an_archive_member_that_would_land_outside_the_data_folder_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    archive = _tar(data_dir / "cifar-10-python.tar.gz", {"../escaped": b"written outside the data folder"})
    message = _refusal(data_dir)
    assert message.startswith(f"{archive}: cannot extract the CIFAR-10 archive (")
    assert not (tmp_path / "escaped").exists()


@pytest.mark.filterwarnings("ignore:.*MD5 differs")
def test_an_archive_without_the_test_batch_names_the_missing_file(tmp_path: Path) -> None:
    members = {f"cifar-10-batches-py/{name}": payload for name, payload in _contents().items() if name != "test_batch"}
    archive = _tar(tmp_path / "cifar-10-python.tar.gz", members)
    assert _refusal(tmp_path) == (
        f"{archive}: the archive lacks cifar-10-batches-py/test_batch; delete it and {_advice(tmp_path)}"
    )


@pytest.mark.parametrize(("batch", "labels"), [("test_batch", [9, 10]), ("data_batch_3", [-1, 0])])
def test_labels_outside_the_classes_of_the_meta_file_are_refused(tmp_path: Path, batch: str, labels: list[int]) -> None:
    folder = tmp_path / "cifar-10-batches-py"  # already extracted: read as it is
    folder.mkdir()
    for name, payload in _contents({batch: labels}).items():
        (folder / name).write_bytes(payload)
    assert _refusal(tmp_path) == f"{folder}: labels outside 0..9, the classes {folder / 'batches.meta'} names"


def test_labels_at_both_ends_of_the_classes_are_read(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, payload in _contents({"test_batch": [0, 9]}).items():
        (folder / name).write_bytes(payload)
    assert _load(tmp_path).test_labels.tolist() == [0, 9]


def test_an_archive_with_the_official_md5_extracts_without_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    import warnings

    from torchvision.datasets import CIFAR10

    members = {f"cifar-10-batches-py/{name}": payload for name, payload in _contents().items()}
    archive = _tar(tmp_path / "cifar-10-python.tar.gz", members)
    monkeypatch.setattr(CIFAR10, "tgz_md5", hashlib.md5(archive.read_bytes()).hexdigest())  # as if it were the official file
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the MD5 is compared over the whole file: no warning
        splits = _load(tmp_path)
    assert (splits.train_images.shape[0], splits.val_images.shape[0], splits.test_images.shape[0]) == (8, 2, 2)
