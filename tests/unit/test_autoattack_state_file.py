"""AutoAttack's state file read back: which files are taken up, which ignored and with what notice."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from gat_tui.robustness.resume import FORMAT, ResumeSpec, SavedState, file_identity, load_state, save_state, state_path

KEY: dict[str, object] = {"target": "net.safetensors", "eps": 0.03, "normalize": ((0.5, 0.5), (0.2, 0.2))}


def write(path: Path, record: object) -> Path:
    path.write_text(json.dumps(record))
    return path


def test_the_file_is_named_by_the_first_16_hex_digits_of_the_sorted_key_s_sha256(tmp_path: Path) -> None:
    digest = hashlib.sha256(b'{"a": 2, "b": [1, "x"]}').hexdigest()[:16]
    assert state_path(tmp_path, {"b": [1, "x"], "a": 2}) == tmp_path / f".autoattack-{digest}.json"
    assert state_path(tmp_path, {"a": 2, "b": [1, "x"]}) == state_path(tmp_path, {"b": [1, "x"], "a": 2})


def test_a_saved_state_is_read_back_with_tuples_in_the_key_as_json_lists(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(path, KEY, 5, [2.0, 1.5, 0.25, 3.0])
    assert json.loads(path.read_text()) == {
        "format": FORMAT, "key": json.loads(json.dumps(KEY)), "start": 5, "sums": [2.0, 1.5, 0.25, 3.0],
    }
    assert path.read_text().endswith("}\n")
    saved, notice = load_state(path, KEY, 4)
    assert (saved, notice) == (SavedState(5, [2.0, 1.5, 0.25, 3.0]), None)
    assert saved is not None and all(type(value) is float for value in saved.sums)
    write(path, {"format": FORMAT, "key": json.loads(json.dumps(KEY)), "start": 5, "sums": [2, 1, 0, 3]})  # whole numbers: floats
    saved, _ = load_state(path, KEY, 4)
    assert saved is not None and all(type(value) is float for value in saved.sums)


def test_no_file_is_no_state_and_no_notice(tmp_path: Path) -> None:
    assert load_state(tmp_path / "none.json", KEY, 4) == (None, None)
    (tmp_path / "folder.json").mkdir()
    assert load_state(tmp_path / "folder.json", KEY, 4) == (None, None)


@pytest.mark.parametrize(
    ("record", "why"),
    [
        ({"format": FORMAT, "key": {"target": "other.safetensors"}, "start": 5, "sums": [0, 0, 0, 0]}, "it is for another evaluation"),
        ({"format": FORMAT + 1, "key": KEY, "start": 5, "sums": [0, 0, 0, 0]}, "it is for another evaluation"),
        ({"key": KEY, "start": 5, "sums": [0, 0, 0, 0]}, "it is for another evaluation"),
        ([KEY, 5], "it is for another evaluation"),
        ({"format": FORMAT, "key": KEY, "start": "5", "sums": [0, 0, 0, 0]}, "malformed"),
        ({"format": FORMAT, "key": KEY, "sums": [0, 0, 0, 0]}, "malformed"),
        ({"format": FORMAT, "key": KEY, "start": 5, "sums": [0, 0, 0]}, "malformed"),
        ({"format": FORMAT, "key": KEY, "start": 5, "sums": {"0": 0}}, "malformed"),
        ({"format": FORMAT, "key": KEY, "start": 5, "sums": [0, 0, "0", 0]}, "malformed"),
        ({"format": FORMAT, "key": KEY, "start": 5}, "malformed"),
    ],
    ids=["other-key", "other-format", "no-format", "not-a-table", "start-text", "no-start", "short-sums", "sums-table", "sum-text", "no-sums"],
)
def test_a_file_not_for_this_evaluation_or_malformed_is_ignored_saying_why(tmp_path: Path, record: object, why: str) -> None:
    path = write(tmp_path / "state.json", json.loads(json.dumps(record)))
    assert load_state(path, KEY, 4) == (None, f"ignoring AutoAttack state file {path}: {why}; starting over")


def test_an_unreadable_file_is_ignored_with_the_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"\xff\xfe not text")
    saved, notice = load_state(path, KEY, 4)
    assert saved is None and notice is not None
    assert notice.startswith(f"ignoring AutoAttack state file {path}: unreadable (") and notice.endswith("); starting over")


def test_a_weights_file_s_identity_is_its_resolved_path_size_and_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "w.safetensors").write_bytes(b"12345")
    os.utime(tmp_path / "w.safetensors", ns=(1_000_000_000, 2_000_000_123))
    monkeypatch.chdir(tmp_path)
    assert file_identity(Path("w.safetensors")) == {"path": str(tmp_path.resolve() / "w.safetensors"), "size": 5, "mtime_ns": 2_000_000_123}


def test_a_spec_without_a_listener_tells_no_one() -> None:
    ResumeSpec(Path("."), {}).tell("resuming")  # no notify: nothing to call, no error
    heard: list[str] = []
    ResumeSpec(Path("."), {}, heard.append).tell("resuming")
    assert heard == ["resuming"]
