"""A CIFAR batch or meta file that is not what the archives hold: the message names the file, what
was expected and what was found, word for word (the user has only this line to go on)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gat_tui.data import DataError
from gat_tui.data.cifar import _read_batch, _read_names, _unpickle

ROW = 3 * 32 * 32


def _file(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else pickle.dumps(content))
    return path


def _refusal(call: Any, *args: Any) -> str:
    with pytest.raises(DataError) as caught:
        call(*args)
    return str(caught.value)


def test_a_truncated_file_names_the_error_and_the_folder_to_delete(tmp_path: Path) -> None:
    path = _file(tmp_path, pickle.dumps({"data": np.zeros((2, ROW), np.uint8), "labels": [0, 1]})[:300])
    assert _refusal(_unpickle, path) == (
        f"{path}: cannot read the CIFAR batch (UnpicklingError: pickle data was truncated); "
        f"delete the folder {tmp_path / 'cifar-10-batches-py'} and the archive next to it, then load again"
    )


def test_a_pickle_that_is_not_a_dict_is_named_by_its_type(tmp_path: Path) -> None:
    path = _file(tmp_path, [1, 2, 3])
    assert _refusal(_unpickle, path) == f"{path}: expected a pickled dict, found list"


def test_a_missing_label_key_lists_the_keys_found(tmp_path: Path) -> None:
    # a CIFAR-100 batch read as CIFAR-10: its labels are under another name
    path = _file(tmp_path, {"data": np.zeros((2, ROW), np.uint8), "fine_labels": [0, 1]})
    assert _refusal(_read_batch, path, "labels") == f"{path}: key 'labels' is missing (found data, fine_labels)"


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (np.zeros((2, ROW), np.float32), "float32 [2, 3072]"),  # right shape, wrong type
        (np.zeros((2, ROW, 1), np.uint8), "uint8 [2, 3072, 1]"),  # right type and row length, one axis too many
        (np.zeros((2, 100), np.uint8), "uint8 [2, 100]"),  # rows of another image size
        ([[0] * ROW, [0] * ROW], "list"),  # not an array at all
    ],
)
def test_pixel_data_of_the_wrong_type_or_shape_says_what_was_found(tmp_path: Path, data: Any, found: str) -> None:
    path = _file(tmp_path, {"data": data, "labels": [0, 1]})
    assert _refusal(_read_batch, path, "labels") == f"{path}: 'data' should be uint8 [N, 3072], found {found}"


def test_labels_that_are_not_integers_or_not_one_per_image_are_refused(tmp_path: Path) -> None:
    pixels = np.zeros((3, ROW), np.uint8)
    path = _file(tmp_path, {"data": pixels, "labels": ["cat", "dog", "cat"]})
    assert _refusal(_read_batch, path, "labels") == f"{path}: 'labels' is not a list of integers"
    path = _file(tmp_path, {"data": pixels, "labels": [0, 1]})
    assert _refusal(_read_batch, path, "labels") == f"{path}: 3 images but 'labels' has shape [2]"


def test_labels_stored_as_a_small_integer_array_come_back_as_int64(tmp_path: Path) -> None:
    rows = np.arange(2 * ROW, dtype=np.int64).reshape(2, ROW) % 251
    path = _file(tmp_path, {"data": rows.astype(np.uint8), "labels": np.array([9, 4], dtype=np.uint8)})
    images, labels = _read_batch(path, "labels")
    assert labels.dtype == np.int64 and labels.tolist() == [9, 4]
    assert images.shape == (2, 3, 32, 32)
    # row-major: channel 0's first row is the file row's first 32 bytes, channel 1 starts at byte 1024
    assert images[1, 0, 0, :3].tolist() == [(ROW + i) % 251 for i in range(3)]
    assert images[1, 1, 0, 0] == (ROW + 1024) % 251


def test_class_names_that_are_not_a_list_are_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, {"label_names": "airplane"})  # a string, truthy but not a list of names
    assert _refusal(_read_names, path, "label_names") == f"{path}: key 'label_names' is missing or empty"
    path = _file(tmp_path, {"label_names": []})
    assert _refusal(_read_names, path, "label_names") == f"{path}: key 'label_names' is missing or empty"
    path = _file(tmp_path, {"label_names": [b"air\xc3\xa9plane", "truck", 7]})  # bytes are UTF-8
    assert _read_names(path, "label_names") == ("airéplane", "truck", "7")
