"""AutoAttack's state file: an interrupted evaluation goes on from the batch after the last one done.

After each batch `run_autoattack` writes `.autoattack-<hash of key>.json` (atomically) with the
next image to attack and the sums so far; the key names everything the figures depend on (the
model files by path, size and modification time, the attack, ε, seed, split, limit, image count,
batch size, and a SHA-256 of the images and labels themselves, so a dataset changed under the
same name is not mixed with the old one's sums). A file whose key differs is ignored, so a changed evaluation starts over; the
file is removed when the evaluation completes. A run's evaluations keep it in `RUN/evals/`, others
beside the evaluated file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gat_tui.atomic import write_text_atomically
from gat_tui.runs.folder import RunPaths

FORMAT = 1  # bumped when the file's meaning changes: older files are then ignored


@dataclass(frozen=True)
class ResumeSpec:
    """Where AutoAttack's state files go and what identifies the evaluation besides the attack itself."""

    folder: Path
    identity: dict[str, object]
    notify: Callable[[str], None] | None = field(default=None, compare=False)  # "resuming …", ignored files

    def tell(self, message: str) -> None:
        if self.notify is not None:
            self.notify(message)


def file_identity(path: Path) -> dict[str, object]:
    """A weights file as the key sees it: its resolved path, size and modification time (ns)."""
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def state_folder(evaluated: Path) -> Path:
    """RUN/evals/ for a run's checkpoint (next to `gat-tui eval`'s records), else the file's own folder."""
    if evaluated.parent.name == "checkpoints":
        paths = RunPaths(evaluated.parent.parent)
        if paths.config.is_file():
            return paths.evals
    return evaluated.parent


def state_path(folder: Path, key: dict[str, object]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    return folder / f".autoattack-{digest}.json"


@dataclass(frozen=True)
class SavedState:
    start: int  # the first image not yet attacked
    sums: list[float]


def load_state(path: Path, key: dict[str, object], sums_length: int) -> tuple[SavedState | None, str | None]:
    """The saved state when `path` holds one for `key`; else None and, for a file not used, why."""
    if not path.is_file():
        return None, None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return None, f"ignoring AutoAttack state file {path}: unreadable ({error}); starting over"
    saved_key = record.get("key") if isinstance(record, dict) else None
    if saved_key != json.loads(json.dumps(key)) or record.get("format") != FORMAT:
        return None, f"ignoring AutoAttack state file {path}: it is for another evaluation; starting over"
    start, sums = record.get("start"), record.get("sums")
    if not (isinstance(start, int) and isinstance(sums, list) and len(sums) == sums_length
            and all(isinstance(value, (int, float)) for value in sums)):
        return None, f"ignoring AutoAttack state file {path}: malformed; starting over"
    return SavedState(start, [float(value) for value in sums]), None


def save_state(path: Path, key: dict[str, object], start: int, sums: list[float]) -> None:
    record = {"format": FORMAT, "key": key, "start": start, "sums": sums}
    write_text_atomically(path, json.dumps(record, indent=1) + "\n")
