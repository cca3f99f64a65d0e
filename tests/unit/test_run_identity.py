"""Which run a folder holds, by hand: its marker file read back or refused with the file named, the
keys where a checkpoint's config differs from the folder's (all but what a resume may change), and
the refusal of another run's checkpoint naming both run ids and the differing keys."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import tiny_gat_config
from safetensors.torch import save_file

from gat_tui.checkpoints import FORMAT, CheckpointError
from gat_tui.config import config_to_toml
from gat_tui.runs.folder import RunFolder
from gat_tui.runs.identity import (
    MARKER_NAME,
    RunFolderError,
    RunMarker,
    check_checkpoint_belongs,
    config_differences,
    marker_path,
    read_marker,
    write_marker,
)
from gat_tui.runs.lock import lock_holder

CONFIG = tiny_gat_config("tiny", epochs=2, panel_size=0, data={"train_size": 32, "val_size": 16, "test_size": 16})


def test_a_marker_is_written_and_read_back(tmp_path: Path) -> None:
    assert marker_path(tmp_path) == tmp_path / "gat-tui-run.json" and MARKER_NAME == "gat-tui-run.json"
    assert read_marker(tmp_path) is None
    write_marker(tmp_path, RunMarker("abc123", "2026-12-07T10:00:00+0000"))
    assert json.loads((tmp_path / MARKER_NAME).read_text(encoding="utf-8")) == {
        "format": "gat-tui-run-v1",
        "run_id": "abc123",
        "created": "2026-12-07T10:00:00+0000",
    }
    assert read_marker(tmp_path) == RunMarker("abc123", "2026-12-07T10:00:00+0000")
    # a marker without its creation time still names the run
    (tmp_path / MARKER_NAME).write_text('{"format": "gat-tui-run-v1", "run_id": "abc123"}', encoding="utf-8")
    assert read_marker(tmp_path) == RunMarker("abc123", "")


def test_a_new_marker_has_a_fresh_id_unless_given_one_and_the_time_now() -> None:
    fresh, other = RunMarker.new(), RunMarker.new()
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.run_id) and fresh.run_id != other.run_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", fresh.created)
    assert RunMarker.new("from-the-checkpoint").run_id == "from-the-checkpoint"


@pytest.mark.parametrize(
    "content",
    [
        '{"format": "gat-tui-run-v2", "run_id": "abc"}',
        '{"run_id": "abc"}',
        '{"format": "gat-tui-run-v1", "run_id": 7}',
        '{"format": "gat-tui-run-v1"}',
        '["gat-tui-run-v1", "abc"]',
    ],
)
def test_a_marker_of_another_shape_is_refused_naming_the_file(tmp_path: Path, content: str) -> None:
    (tmp_path / MARKER_NAME).write_text(content, encoding="utf-8")
    with pytest.raises(RunFolderError) as error:
        read_marker(tmp_path)
    assert str(error.value) == (
        f"{tmp_path / MARKER_NAME}: not a gat-tui run marker (expected format 'gat-tui-run-v1' and a run_id)"
    )


def test_a_damaged_marker_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / MARKER_NAME).write_text('{"format": ', encoding="utf-8")
    with pytest.raises(RunFolderError) as error:
        read_marker(tmp_path)
    assert str(error.value).startswith(f"{tmp_path / MARKER_NAME}: cannot be read (")
    assert str(error.value).endswith("); it marks a gat-tui run folder")
    (tmp_path / MARKER_NAME).write_bytes(b'{"format": "\xff"}')
    with pytest.raises(RunFolderError, match="cannot be read"):
        read_marker(tmp_path)


def test_config_differences_name_each_key_but_the_device_and_the_epochs(tmp_path: Path) -> None:
    assert config_differences(CONFIG, CONFIG) == []
    resumable = replace(CONFIG, device="cuda", train=replace(CONFIG.train, epochs=9))
    assert config_differences(CONFIG, resumable) == []
    other = replace(CONFIG, seed=CONFIG.seed + 1, train=replace(CONFIG.train, lr_f=0.5, epochs=9), gat=replace(CONFIG.gat, c_g=0.25))
    assert config_differences(CONFIG, other) == [
        f"gat.c_g = 0.25 (the folder's run has {CONFIG.gat.c_g!r})",
        f"seed = {CONFIG.seed + 1} (the folder's run has {CONFIG.seed})",
        f"train.lr_f = 0.5 (the folder's run has {CONFIG.train.lr_f!r})",
    ]


def test_a_relative_data_path_is_the_same_as_its_absolute_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = replace(CONFIG, data=replace(CONFIG.data, path="images"))
    absolute = replace(CONFIG, data=replace(CONFIG.data, path=str(tmp_path / "images")))
    assert config_differences(relative, absolute) == []
    elsewhere = replace(CONFIG, data=replace(CONFIG.data, path=str(tmp_path / "other")))
    assert config_differences(relative, elsewhere) == [f"data.path = {str(tmp_path / 'other')!r} (the folder's run has {str(tmp_path / 'images')!r})"]


def write_checkpoint(path: Path, metadata: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"classifier.weight": torch.zeros(1)}, str(path), metadata={"format": FORMAT, **metadata})
    return path


def run_folder(root: Path, run_id: str | None, config_text: str | None = None) -> Path:
    root.mkdir(parents=True)
    if run_id is not None:
        write_marker(root, RunMarker(run_id, "t0"))
    if config_text is not None:
        (root / "config.toml").write_text(config_text, encoding="utf-8")
    return root


def test_a_checkpoint_of_the_folders_run_belongs_and_gives_its_id(tmp_path: Path) -> None:
    root = run_folder(tmp_path / "run", "run-a", config_to_toml(CONFIG))
    checkpoint = write_checkpoint(root / "checkpoints" / "last.safetensors", {"run_id": "run-a", "config_toml": config_to_toml(CONFIG)})
    assert check_checkpoint_belongs(root, checkpoint) == "run-a"
    # trained longer on another device: still the same run
    longer = replace(CONFIG, device="cuda", train=replace(CONFIG.train, epochs=5))
    write_checkpoint(checkpoint, {"run_id": "run-a", "config_toml": config_to_toml(longer)})
    assert check_checkpoint_belongs(root, checkpoint) == "run-a"
    # a checkpoint from before run ids, a folder from before markers, a folder without its config: nothing to compare
    old = write_checkpoint(tmp_path / "old.safetensors", {"config_toml": config_to_toml(CONFIG)})
    assert check_checkpoint_belongs(root, old) is None
    assert check_checkpoint_belongs(run_folder(tmp_path / "unmarked", None, config_to_toml(CONFIG)), checkpoint) == "run-a"
    assert check_checkpoint_belongs(run_folder(tmp_path / "no-config", "run-b"), old) is None
    assert check_checkpoint_belongs(run_folder(tmp_path / "bad-config", "run-b", "seed = ["), old) is None


def test_another_runs_checkpoint_is_refused_with_both_ids_and_the_keys_that_differ(tmp_path: Path) -> None:
    root = run_folder(tmp_path / "run", "run-a", config_to_toml(CONFIG))
    other = replace(CONFIG, seed=CONFIG.seed + 1)
    checkpoint = write_checkpoint(tmp_path / "b.safetensors", {"run_id": "run-b", "config_toml": config_to_toml(other)})
    with pytest.raises(RunFolderError) as error:
        check_checkpoint_belongs(root, checkpoint)
    assert str(error.value) == (
        f"{checkpoint}: not a checkpoint of the run in {root}: it was written by run run-b, the folder holds run run-a; "
        f"it was trained with seed = {CONFIG.seed + 1} (the folder's run has {CONFIG.seed}); "
        "nothing was written; resume the run that wrote it, in its own folder"
    )
    # the same config, another run: the id alone refuses it
    same = write_checkpoint(tmp_path / "c.safetensors", {"run_id": "run-c", "config_toml": config_to_toml(CONFIG)})
    with pytest.raises(RunFolderError, match=r"it was written by run run-c, the folder holds run run-a; nothing was written"):
        check_checkpoint_belongs(root, same)


def test_only_the_first_three_differences_are_named(tmp_path: Path) -> None:
    root = run_folder(tmp_path / "run", None, config_to_toml(CONFIG))
    other = replace(CONFIG, seed=CONFIG.seed + 1, name="other", gat=replace(CONFIG.gat, c_g=0.25, lr_g=0.5))
    checkpoint = write_checkpoint(tmp_path / "x.safetensors", {"config_toml": config_to_toml(other)})
    with pytest.raises(RunFolderError) as error:
        check_checkpoint_belongs(root, checkpoint)
    message = str(error.value)
    assert "it was trained with gat.c_g = 0.25 (the folder's run has " in message
    assert "; gat.lr_g = 0.5 (" in message and "; name = 'other' (the folder's run has 'tiny')" in message
    assert "seed = " not in message  # the fourth, left out
    assert "written by run" not in message  # no ids to compare


def test_a_checkpoint_without_a_readable_config_is_not_a_run_checkpoint(tmp_path: Path) -> None:
    root = run_folder(tmp_path / "run", "run-a", config_to_toml(CONFIG))
    bare = write_checkpoint(tmp_path / "bare.safetensors", {"run_id": "run-a"})
    with pytest.raises(CheckpointError) as error:
        check_checkpoint_belongs(root, bare)
    assert str(error.value) == (
        f"{bare}: metadata has no 'config_toml' (the run's configuration); not a gat-tui run checkpoint"
    )
    empty = write_checkpoint(tmp_path / "empty.safetensors", {"run_id": "run-a", "config_toml": ""})
    with pytest.raises(CheckpointError, match="metadata has no 'config_toml'"):
        check_checkpoint_belongs(root, empty)
    broken = write_checkpoint(tmp_path / "broken.safetensors", {"run_id": "run-a", "config_toml": "seed = ["})
    with pytest.raises(CheckpointError, match=re.escape(f"{broken} (its saved config)")):
        check_checkpoint_belongs(root, broken)


def test_a_resumed_claim_checks_its_checkpoint_and_lets_the_folder_go_if_it_is_anothers(tmp_path: Path) -> None:
    root = run_folder(tmp_path / "run", "run-a", config_to_toml(CONFIG))
    own = write_checkpoint(root / "checkpoints" / "last.safetensors", {"run_id": "run-a", "config_toml": config_to_toml(CONFIG)})
    claim = RunFolder(root, resuming=True)
    claim.claim(resume_from=own)
    assert claim.run_id == "run-a" and lock_holder(root) is not None
    claim.close()
    other = write_checkpoint(tmp_path / "b.safetensors", {"run_id": "run-b", "config_toml": config_to_toml(CONFIG)})
    refused = RunFolder(root, resuming=True)
    with pytest.raises(RunFolderError, match="it was written by run run-b, the folder holds run run-a"):
        refused.claim(resume_from=other)
    assert refused.run_id is None and lock_holder(root) is None
