"""Which globals a CIFAR batch may name: exactly those that real pickles of numpy arrays name.

The allow-list is built once, when `gat_tui.data.cifar` is imported, so a loader test alone never
sees a change to `_numpy_globals`; these tests call it and check it against what the standard
unpickler resolves for pickles written here, under numpy 2's (`numpy._core`) and numpy 1's
(`numpy.core`, the official archives') module names.
"""

from __future__ import annotations

import io
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gat_tui.data import DataError
from gat_tui.data.cifar import _numpy_globals, _NumpyOnlyUnpickler


class _Recorder(pickle.Unpickler):
    """The standard unpickler, noting every global a pickle names."""

    def __init__(self, payload: bytes) -> None:
        super().__init__(io.BytesIO(payload))
        self.named: set[tuple[str, str]] = set()

    def find_class(self, module: str, name: str) -> Any:
        self.named.add((module, name))
        return super().find_class(module, name)


def _named_by_real_pickles() -> set[tuple[str, str]]:
    """The globals of a CIFAR-like dict (a uint8 array, int64 scalar labels) pickled at protocols 3, 4 and 5."""
    named: set[tuple[str, str]] = set()
    batch = {"data": np.arange(12, dtype=np.uint8).reshape(2, 6), "labels": [np.int64(3), np.int64(7)]}
    for protocol in (3, 4, 5):
        recorder = _Recorder(pickle.dumps(batch, protocol=protocol))
        recorder.load()
        named |= recorder.named
    return named


def _resolve(module: str, name: str) -> Any:
    """What the standard unpickler finds for a global (numpy 2 warns for its numpy.core shims)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pickle.Unpickler(io.BytesIO(b"")).find_class(module, name)


def test_the_allowed_globals_are_exactly_those_numpy_array_pickles_name_in_both_spellings() -> None:
    named = _named_by_real_pickles()
    # both spellings of every numpy-internal module: numpy 1.x wrote the official archives
    expected = named | {(module.replace("numpy._core.", "numpy.core."), name) for module, name in named}
    expected |= {(module.replace("numpy.core.", "numpy._core."), name) for module, name in named}
    allowed = _numpy_globals()
    assert set(allowed) == expected
    # the seven by name, so that a numpy release that pickles differently is noticed here
    assert expected == {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    }
    for (module, name), found in allowed.items():
        assert found is _resolve(module, name), f"{module}.{name}"


def test_the_unpickler_reads_arrays_pickled_at_protocol_5_and_names_the_file_of_a_refused_global(tmp_path: Path) -> None:
    batch = {"data": np.arange(12, dtype=np.uint8).reshape(2, 6), "labels": [np.int64(3), np.int64(7)]}
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=5))
    with path.open("rb") as handle:
        loaded = _NumpyOnlyUnpickler(handle, path).load()
    assert loaded["data"].tolist() == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
    assert [int(label) for label in loaded["labels"]] == [3, 7]
    path.write_bytes(pickle.dumps({"data": Path("x")}, protocol=5))
    with path.open("rb") as handle, pytest.raises(DataError) as caught:
        _NumpyOnlyUnpickler(handle, path).load()
    assert str(caught.value).startswith(f"{path}: refusing to load, the pickle references pathlib.")
