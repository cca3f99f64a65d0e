"""Which run a folder holds: its marker file, and whether a checkpoint belongs to that run.

A folder is a gat-tui run only when its marker (`gat-tui-run.json`, written as the run starts)
says so: file names that happen to match ours (config.toml, metrics.jsonl) prove nothing, so
`--out` never takes over another tool's folder. The marker carries the run's id, and every
checkpoint the run writes records the same id, so a checkpoint copied in from another run is
refused before anything is written. Folders made before the marker existed (no marker, but a
gat-tui checkpoint) are still resumed: their checkpoint's config is compared with the folder's.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gat_tui.atomic import write_text_atomically

if TYPE_CHECKING:
    from gat_tui.config import RunConfig

MARKER_NAME = "gat-tui-run.json"
MARKER_FORMAT = "gat-tui-run-v1"
# the checkpoint metadata key that records the id of the run that wrote it
RUN_ID_KEY = "run_id"
# what a resume may change: everything else must be the checkpoint's own run's
_RESUMABLE_CHANGES = ("device", "train.epochs")


class RunFolderError(RuntimeError):
    """The folder cannot take this run; the message names it and says what would work."""


@dataclass(frozen=True)
class RunMarker:
    run_id: str
    created: str

    @classmethod
    def new(cls, run_id: str | None = None) -> RunMarker:
        """A marker made now, for a new run (a fresh id) or for a run resumed in a folder without one (its checkpoint's id)."""
        return cls(run_id or uuid.uuid4().hex, time.strftime("%Y-%m-%dT%H:%M:%S%z"))


def marker_path(root: Path) -> Path:
    return root / MARKER_NAME


def read_marker(root: Path) -> RunMarker | None:
    """The folder's marker, None where it has none; RunFolderError if it is damaged."""
    path = marker_path(root)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RunFolderError(f"{path}: cannot be read ({error}); it marks a gat-tui run folder") from None
    if not isinstance(record, dict) or record.get("format") != MARKER_FORMAT or not isinstance(record.get("run_id"), str):
        raise RunFolderError(f"{path}: not a gat-tui run marker (expected format {MARKER_FORMAT!r} and a run_id)")
    return RunMarker(record["run_id"], str(record.get("created", "")))


def write_marker(root: Path, marker: RunMarker) -> None:
    record = {"format": MARKER_FORMAT, "run_id": marker.run_id, "created": marker.created}
    write_text_atomically(marker_path(root), json.dumps(record, indent=2) + "\n")


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for spec_field in dataclasses.fields(tree):
        value = getattr(tree, spec_field.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            flat.update(_flatten(value, f"{prefix}{spec_field.name}."))
        else:
            flat[f"{prefix}{spec_field.name}"] = value
    return flat


def config_differences(folder_config: RunConfig, checkpoint_config: RunConfig) -> list[str]:
    """The keys (besides what a resume may change) where a checkpoint's config differs from the folder's."""
    from gat_tui.config import with_absolute_data_path

    # a relative data.path (written by versions before it was stored absolute) means the same folder as its absolute form
    here, there = _flatten(with_absolute_data_path(folder_config)), _flatten(with_absolute_data_path(checkpoint_config))
    return [
        f"{key} = {there.get(key)!r} (the folder's run has {here.get(key)!r})"
        for key in sorted(set(here) | set(there))
        if key not in _RESUMABLE_CHANGES and here.get(key) != there.get(key)
    ]


def check_checkpoint_belongs(root: Path, checkpoint: Path) -> str | None:
    """Refuse to resume the run in `root` from a checkpoint it did not write; returns the checkpoint's run id.

    Compared before anything is written: the run id the checkpoint records with the folder's
    marker, and the checkpoint's configuration with the folder's config.toml, except for what a
    resume may change (device, train.epochs). The id is None for a checkpoint written before
    run ids existed. CheckpointError for an unreadable checkpoint, RunFolderError for another run's.
    """
    from gat_tui.checkpoints import CheckpointError, read_checkpoint_metadata
    from gat_tui.config import ConfigError, config_from_toml

    metadata = read_checkpoint_metadata(checkpoint)
    marker = read_marker(root)
    run_id = metadata.get(RUN_ID_KEY)
    if not metadata.get("config_toml"):
        raise CheckpointError(f"{checkpoint}: metadata has no 'config_toml' (the run's configuration); not a gat-tui run checkpoint")
    try:
        saved = config_from_toml(metadata["config_toml"], f"{checkpoint} (its saved config)")
    except ConfigError as error:
        raise CheckpointError(str(error)) from None
    reasons = []
    if marker is not None and run_id is not None and run_id != marker.run_id:
        reasons.append(f"it was written by run {run_id}, the folder holds run {marker.run_id}")
    folder_config = _folder_config(root)
    differences = [] if folder_config is None else config_differences(folder_config, saved)
    if differences:
        reasons.append(f"it was trained with {'; '.join(differences[:3])}")
    if reasons:
        raise RunFolderError(
            f"{checkpoint}: not a checkpoint of the run in {root}: {'; '.join(reasons)}; "
            "nothing was written; resume the run that wrote it, in its own folder"
        )
    return run_id


def _folder_config(root: Path) -> RunConfig | None:
    """The folder's config.toml, None where it is missing or unreadable (the marker's id still guards it)."""
    from gat_tui.config import ConfigError, config_from_toml

    path = root / "config.toml"
    try:
        return config_from_toml(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, ConfigError):
        return None
