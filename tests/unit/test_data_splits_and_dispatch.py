"""The splits every loader returns and the dispatch to the loaders: where data sets are looked
for, the validation hold-out's limits and advice, the checks on a split's shapes, the pixels a
network sees, and the fingerprint a resume compares. Expected values worked out by hand."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
import torch

from gat_tui.config import DataConfig
from gat_tui.data import DataError, ImageSplits, default_data_dir, load_splits, split_train_val, to_model_input
from gat_tui.data.splits import data_fingerprint


def _refusal(config: DataConfig, data_dir: Path | None = None, download: bool = False) -> str:
    with pytest.raises(DataError) as caught:
        load_splits(config, data_dir, download=download)
    return str(caught.value)


def test_an_unknown_dataset_lists_the_known_ones() -> None:
    assert _refusal(DataConfig(dataset="cifar11")) == (
        "unknown dataset 'cifar11'; expected cifar10, cifar100, mnist, fashion_mnist, svhn, synthetic or imagefolder"
    )


def test_loaders_download_unless_told_not_to(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_splits(DataConfig(dataset="cifar10", val_size=1), tmp_path)  # the network is refused in tests
    assert str(caught.value).startswith(f"could not download CIFAR-10 into {tmp_path} (OSError: network disabled in tests)")


def test_without_a_data_dir_the_loaders_look_in_the_default_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAT_TUI_DATA_DIR", str(tmp_path / "shared"))
    assert _refusal(DataConfig(dataset="cifar10", val_size=1)).startswith(f"CIFAR-10 is not in {tmp_path / 'shared'} and downloading is off")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _refusal(DataConfig(dataset="svhn", val_size=1), Path("~/data")).startswith(
        f"SVHN: {tmp_path / 'home' / 'data' / 'train_32x32.mat'} is missing and downloading is off"
    )


@pytest.mark.parametrize("download", [False, True])
def test_the_svhn_loader_is_told_whether_it_may_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, download: bool) -> None:
    def no_network(url: str, root: str, filename: str, md5: str) -> None:
        raise OSError("network disabled in tests")

    monkeypatch.setattr("gat_tui.data.svhn.download_url", no_network)
    message = _refusal(DataConfig(dataset="svhn", val_size=1), tmp_path, download=download)
    expected = "could not download SVHN's train_32x32.mat" if download else f"SVHN: {tmp_path / 'train_32x32.mat'} is missing"
    assert message.startswith(expected)


@pytest.mark.skipif(sys.platform != "linux", reason="XDG_CACHE_HOME places the user cache folder on Linux only")
def test_the_default_data_dir_is_the_users_cache_unless_the_variable_names_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GAT_TUI_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_data_dir() == tmp_path / "cache" / "gat-tui" / "datasets"
    monkeypatch.setenv("GAT_TUI_DATA_DIR", "   ")  # blank: as if unset
    assert default_data_dir() == tmp_path / "cache" / "gat-tui" / "datasets"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GAT_TUI_DATA_DIR", "~/sets")
    assert default_data_dir() == tmp_path / "home" / "sets"


@pytest.mark.parametrize(
    ("total", "val_size", "suggestion"),
    [(20, 0, 2), (20, 20, 2), (5, 5, 1), (5, -1, 1)],  # the advice is a tenth of the set, at least 1
)
def test_a_validation_size_outside_1_to_n_minus_1_is_refused_with_advice(total: int, val_size: int, suggestion: int) -> None:
    with pytest.raises(DataError) as caught:
        split_train_val(torch.zeros(total, 1, 2, 2, dtype=torch.uint8), torch.zeros(total, dtype=torch.int64), val_size, 0)
    assert str(caught.value) == (
        f"data.val_size = {val_size} must be at least 1 and smaller than the {total} training images; "
        f"set data.val_size (e.g. --set data.val_size={suggestion})"
    )


def test_the_hold_out_may_take_one_image_or_all_but_one() -> None:
    images = torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1)
    labels = torch.arange(5, dtype=torch.int64)
    for val_size in (1, 4):
        train_x, train_y, val_x, val_y = split_train_val(images, labels, val_size, split_seed=7)
        assert (len(train_x), len(val_x)) == (5 - val_size, val_size)
        assert sorted(torch.cat([train_y, val_y]).tolist()) == [0, 1, 2, 3, 4]
        assert torch.equal(torch.cat([train_x, val_x]).view(-1).long(), torch.cat([train_y, val_y]))  # images keep their labels


def test_images_and_labels_of_different_counts_are_refused() -> None:
    with pytest.raises(DataError) as caught:
        split_train_val(torch.zeros(3, 1, 2, 2, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64), 1, 0)
    assert str(caught.value) == "3 images but 2 labels; the dataset files disagree"


def _splits(**changes: torch.Tensor) -> ImageSplits:
    tensors = {f"{split}_{kind}": value for split in ("train", "val", "test") for kind, value in
               (("images", torch.zeros(2, 3, 8, 8, dtype=torch.uint8)), ("labels", torch.zeros(2, dtype=torch.int64)))}
    tensors.update(changes)
    return ImageSplits(**tensors, class_names=("a", "b"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"val_images": torch.zeros(2, 3, 4, 4, dtype=torch.uint8)}, "val_images: expected uint8 [N, 3, 8, 8], got torch.uint8 [2, 3, 4, 4]"),
        ({"test_images": torch.zeros(2, 3, 8, 8)}, "test_images: expected uint8 [N, 3, 8, 8], got torch.float32 [2, 3, 8, 8]"),
        ({f"{s}_images": torch.zeros(2, 8, 8, dtype=torch.uint8) for s in ("train", "val", "test")},
         "train_images: expected uint8 [N, 8, 8], got torch.uint8 [2, 8, 8]"),  # no channel axis anywhere
        ({"test_labels": torch.zeros(2, dtype=torch.int32)}, "test_labels: expected int64 [2], got torch.int32 [2]"),
        ({"val_labels": torch.zeros(3, dtype=torch.int64)}, "val_labels: expected int64 [2], got torch.int64 [3]"),
    ],
)
def test_a_split_of_the_wrong_type_or_shape_is_refused_naming_it(changes: dict[str, torch.Tensor], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        _splits(**changes)
    assert str(caught.value) == message


def test_model_input_is_pixels_over_255_in_the_layout_asked_for() -> None:
    images = torch.tensor([0, 51, 102, 255], dtype=torch.uint8).view(1, 4, 1, 1).expand(2, 4, 3, 3).contiguous()
    plain = to_model_input(images, channels_last=False)
    assert plain[0, :, 0, 0].tolist() == pytest.approx([0.0, 0.2, 0.4, 1.0])
    assert plain.dtype == torch.float32 and plain.is_contiguous()
    assert to_model_input(images, channels_last=True).is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(TypeError) as caught:
        to_model_input(plain, channels_last=False)
    assert str(caught.value) == "to_model_input expects uint8 images (0..255), got torch.float32"


def test_the_fingerprint_a_checkpoint_stores_is_sha256_of_types_shapes_bytes_and_class_names() -> None:
    # the format is what earlier checkpoints hold: any change would make every resume warn of changed data
    images = torch.tensor([1, 2], dtype=torch.uint8).view(2, 1, 1, 1)
    labels = torch.tensor([0, 1], dtype=torch.int64)
    expected = hashlib.sha256(b"torch.uint8(2, 1, 1, 1)\x01\x02" + b"torch.int64(2,)" + labels.numpy().tobytes()).hexdigest()
    assert data_fingerprint(images, labels) == expected
    splits = ImageSplits(images, labels, images, labels, images.flip(0), labels, ("cat", "dog"))
    flipped = data_fingerprint(images.flip(0), labels)
    assert splits.fingerprint() == hashlib.sha256(f"{expected}\n{expected}\n{flipped}\ncat\ndog".encode()).hexdigest()
