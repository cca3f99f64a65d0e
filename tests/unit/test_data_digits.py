"""MNIST, Fashion-MNIST and SVHN, offline: tiny files in the real formats (IDX, MATLAB 5), written here."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import Cli

from gat_tui.config import DataConfig
from gat_tui.data import DataError, load_splits

# the tiny SVHN files are not the official ones; the loader's MD5 warning is checked once, below
pytestmark = pytest.mark.filterwarnings("ignore:.*MD5 differs")

# the network is refused for every test by tests/conftest.py


def digit_image(index: int, side: int = 28) -> np.ndarray:
    """A [side, side] uint8 image whose first pixel is its index and whose rows and columns differ,
    so every image is recognisable after shuffling and a transposed one would not compare equal."""
    rows, columns = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    image = ((rows * 5 + columns * 3 + index * 7) % 256).astype(np.uint8)
    image[0, 0] = index
    return image


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file as LeCun's site describes it: magic 0x0000 08 <dims>, big-endian sizes, then uint8 data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(data_dir: Path, folder: str, train: int, test: int, side: int = 28) -> Path:
    raw = data_dir / folder / "raw"
    for prefix, indices in (("train", range(train)), ("t10k", range(100, 100 + test))):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", np.stack([digit_image(i, side) for i in indices]))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.array([i % 10 for i in indices], dtype=np.uint8))
    return data_dir


@pytest.mark.parametrize(("dataset", "folder", "first_class"), [("mnist", "MNIST", "0 - zero"), ("fashion_mnist", "FashionMNIST", "T-shirt/top")])
def test_mnist_and_fashion_mnist_from_idx_files(tmp_path: Path, dataset: str, folder: str, first_class: str) -> None:
    data_dir = write_mnist(tmp_path, folder, train=30, test=10)
    splits = load_splits(DataConfig(dataset=dataset, val_size=6, split_seed=0), data_dir, download=False)
    assert splits.train_images.shape == (24, 1, 28, 28) and splits.val_images.shape == (6, 1, 28, 28)
    assert splits.test_images.shape == (10, 1, 28, 28) and splits.image_shape == (1, 28, 28)
    assert splits.train_images.dtype == torch.uint8 and splits.train_labels.dtype == torch.int64
    assert splits.class_names[0] == first_class and splits.num_classes == 10
    images = torch.cat([splits.train_images, splits.val_images])
    labels = torch.cat([splits.train_labels, splits.val_labels])
    indices = images[:, 0, 0, 0].long().tolist()
    assert sorted(indices) == list(range(30))
    for image, label, index in zip(images, labels, indices):
        assert torch.equal(image[0], torch.from_numpy(digit_image(index))) and label.item() == index % 10
    assert splits.test_images[:, 0, 0, 0].tolist() == list(range(100, 110))


def test_missing_mnist_without_download_names_the_file_and_the_mirror(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_splits(DataConfig(dataset="mnist", val_size=6), tmp_path, download=False)
    message = str(caught.value)
    assert str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte") in message
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz" in message and "GAT_TUI_DATA_DIR" in message


def test_a_failed_fashion_mnist_download_says_why_and_where_to_put_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="could not download Fashion-MNIST's train-images-idx3-ubyte.gz") as caught:
        load_splits(DataConfig(dataset="fashion_mnist", val_size=6), tmp_path, download=True)
    assert "network disabled" in str(caught.value) and "fashion-mnist.s3-website" in str(caught.value)


def test_a_failed_mnist_download_tries_every_mirror_and_keeps_no_partial_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gat_tui.data.mnist as mnist_module

    tried: list[str] = []

    def broken_download(url: str, download_root: str, filename: str, md5: str) -> None:
        tried.append(url)
        Path(download_root).mkdir(parents=True, exist_ok=True)  # as torchvision's does
        (Path(download_root) / filename).write_bytes(b"\x1f\x8b half an archive")  # then the connection drops
        raise OSError("connection reset")

    monkeypatch.setattr(mnist_module, "download_and_extract_archive", broken_download)
    with pytest.raises(DataError, match="connection reset"):
        load_splits(DataConfig(dataset="mnist", val_size=6), tmp_path, download=True)
    assert tried == [f"{mirror}train-images-idx3-ubyte.gz" for mirror in ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")]
    assert not list((tmp_path / "MNIST" / "raw").glob("*.gz"))


def test_a_damaged_idx_file_is_named(tmp_path: Path) -> None:
    data_dir = write_mnist(tmp_path, "MNIST", train=30, test=10)
    (data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01" + b"\x00" * 8)  # a label file's magic
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte: not an IDX image file"):
        load_splits(DataConfig(dataset="mnist", val_size=6), data_dir, download=False)


def write_svhn(data_dir: Path, name: str, indices: range) -> None:
    """A MATLAB 5 file as SVHN's: 'X' uint8 [32, 32, 3, N] (rows, columns, channels, images), 'y' [N, 1] in 1..10."""
    import scipy.io

    data_dir.mkdir(parents=True, exist_ok=True)
    images = np.stack([np.stack([digit_image(i, 32), digit_image(i + 1, 32), digit_image(i + 2, 32)], axis=-1) for i in indices], axis=-1)
    labels = np.array([[i % 10 + 1] for i in indices], dtype=np.uint8)  # 1..10, 10 standing for the digit 0
    scipy.io.savemat(str(data_dir / name), {"X": images, "y": labels})


def test_svhn_from_mat_files_maps_label_10_to_the_digit_0(tmp_path: Path) -> None:
    write_svhn(tmp_path, "train_32x32.mat", range(20))
    write_svhn(tmp_path, "test_32x32.mat", range(100, 108))
    with pytest.warns(UserWarning, match="MD5 differs from the official SVHN train file"):
        splits = load_splits(DataConfig(dataset="svhn", val_size=5, split_seed=0), tmp_path, download=False)
    assert splits.train_images.shape == (15, 3, 32, 32) and splits.test_images.shape == (8, 3, 32, 32)
    assert splits.class_names == tuple("0123456789")
    images = torch.cat([splits.train_images, splits.val_images])
    labels = torch.cat([splits.train_labels, splits.val_labels])
    for image, label in zip(images, labels):
        index = int(image[0, 0, 0])
        for channel in range(3):  # channel c is digit_image(index + c): rows stay rows
            assert torch.equal(image[channel], torch.from_numpy(digit_image(index + channel, 32)))
        assert label.item() == (index % 10 + 1) % 10  # the file's 10 is the digit 0
    assert 0 in labels.tolist() and 10 not in labels.tolist()


def test_missing_svhn_without_download_names_the_url(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_splits(DataConfig(dataset="svhn", val_size=5), tmp_path, download=False)
    assert "http://ufldl.stanford.edu/housenumbers/train_32x32.mat" in str(caught.value) and str(tmp_path / "train_32x32.mat") in str(caught.value)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["mnist_pgd_at", "mnist_trades_l2"])
def test_gat_tui_run_trains_a_one_channel_network_on_mnist_format_data(tmp_path: Path, cli: Cli, preset: str) -> None:
    data_dir = write_mnist(tmp_path / "data", "MNIST", train=48, test=16)
    out = tmp_path / "run"
    small = ["data.val_size=16", "data.batch_size=16", "data.eval_batch_size=16", "eval.panel_size=2", "perturbation.steps=2", "eval.pgd_images=8"]
    args = [arg for key in small for arg in ("--set", key)]
    done = cli("run", preset, "--headless", "--epochs", "1", "--device", "cpu", "--data-dir", str(data_dir), "--out", str(out), *args)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["step"] == 2  # 32 training images in batches of 16
    from gat_tui.checkpoints import Checkpoint

    checkpoint = Checkpoint.open(out / "checkpoints" / "best.safetensors")
    assert (checkpoint.shape.channels, checkpoint.shape.num_classes) == (1, 10)
    assert checkpoint.classifier(torch.device("cpu"))(torch.zeros(2, 1, 28, 28)).shape == (2, 10)  # a one-channel network
