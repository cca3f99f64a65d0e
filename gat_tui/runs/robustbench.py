"""`gat-tui export RUN_DIR --robustbench OUT/`: a run's classifier and a RobustBench-style model card.

    OUT/model.safetensors   the classifier's state dict (the best checkpoint's), with its spec in the metadata
    OUT/model_card.json     the fields of RobustBench's model cards (model_info/<dataset>/<threat>/<Name>.json)
    OUT/config.toml         the run's configuration, as it trained

RobustBench's cards hold `link`, `name`, `authors`, `additional_data`, `number_forward_passes`,
`dataset`, `venue`, `architecture`, `eps`, `clean_acc`, `reported` and `autoattack_acc`
(accuracies as percent strings); ours add the threat model, the number of test images the
figures are on, AutoAttack's version, the training method and the run's config, and notes. The
AutoAttack figure comes from the run's recorded evaluations (`RUN/evals/*.json`, written by
`gat-tui eval RUN`, and a sweep's `evals/*/<label>/seed-<k>.json`) of the best checkpoint at
this threat model and ε, on the test split; without one it is null and a note says which
command fills it. The folder is written whole or not at all: a temporary sibling, renamed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import save as save_safetensors_bytes

from gat_tui._version import __version__
from gat_tui.checkpoints import Checkpoint, CheckpointError
from gat_tui.runs.figures import accuracy_problem, is_accuracy
from gat_tui.runs.folder import RunPaths
from gat_tui.runs.status import read_summary

THREAT_MODELS = {"linf": "Linf", "l2": "L2"}
DEFAULT_EPS = {"linf": 8 / 255, "l2": 0.5}
METHODS = {
    "baseline": "standard training (no regularisation)",
    "dropout": "dropout",
    "random": "training on random perturbations",
    "fg_linf": "adversarial training with fast-gradient L-inf (FGSM) perturbations",
    "fg_l2": "adversarial training with fast-gradient L2 perturbations",
    "gat": "Generative Adversarial Trainer (Lee, Han, Lee 2017)",
    "dropout_gat": "dropout and the Generative Adversarial Trainer (Lee, Han, Lee 2017)",
    "gat_attack": "a classifier kept fixed while a GAT generator learns to attack it",
}


class RobustBenchExportError(RuntimeError):
    """The run cannot be exported; the message names the file or folder and what is wrong."""


@dataclass(frozen=True)
class AutoAttackRecord:
    """The AutoAttack row of a recorded evaluation, with that evaluation's clean row."""

    path: Path
    accuracy: float
    clean: float
    n: int
    version: str


def eps_text(threat: str, eps: float) -> str:
    """As RobustBench writes ε: `8/255` in L-inf where it is a whole number of 255ths, else the number."""
    steps = eps * 255
    if threat == "linf" and math.isclose(steps, round(steps), abs_tol=1e-6) and round(steps) > 0:
        return f"{round(steps)}/255"
    return f"{eps:g}"


def _records(paths: RunPaths) -> list[Path]:
    """Evaluation JSONs of the run: its own evals/, and its sweep's when it is a sweep's runs/<label>/seed-<k>."""
    found = sorted(paths.evals.glob("*.json")) if paths.evals.is_dir() else []
    found = [path for path in found if not path.name.startswith(".")]  # AutoAttack's state files, not records
    seed, label, runs = paths.root, paths.root.parent, paths.root.parent.parent
    if runs.name == "runs" and (runs.parent / "sweep.toml").is_file():
        found += sorted((runs.parent / "evals").glob(f"*/{label.name}/{seed.name}.json"))
    return found


def find_autoattack(paths: RunPaths, threat: str, eps: float) -> tuple[AutoAttackRecord | None, list[str]]:
    """The best-supported AutoAttack figure of the best checkpoint (standard version first, then most images), and
    a note per record that could not be read."""
    problems: list[str] = []
    matches: list[AutoAttackRecord] = []
    for path in _records(paths):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if Path(str(record["checkpoint"])).name != paths.best_checkpoint.name or record.get("split") != "test":
                continue
            rows = record["results"]
            clean = next(row["accuracy"] for row in rows if row["attack"] == "clean")
            for row in rows:
                if row["attack"] == "autoattack" and row.get("norm") == threat and math.isclose(row["eps"], eps, rel_tol=1e-6):
                    for key, value in (("clean accuracy", clean), ("autoattack accuracy", row["accuracy"])):
                        if not is_accuracy(value):
                            raise ValueError(f"its {key} {value!r} is not a fraction in [0, 1]")
                    matches.append(AutoAttackRecord(path, float(row["accuracy"]), float(clean), int(row["n"]), str(row["version"])))
        except (OSError, ValueError, KeyError, TypeError, StopIteration) as error:
            problems.append(f"{path}: not a readable evaluation record ({type(error).__name__}: {error}); skipped")
    if not matches:
        return None, problems
    return max(matches, key=lambda m: (m.version == "standard", m.n, m.path.stat().st_mtime)), problems


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.2f}"


def build_card(run_dir: Path, checkpoint: Checkpoint, threat: str, eps: float) -> dict[str, Any]:
    paths = RunPaths(run_dir)
    config = checkpoint.config()
    found, notes = find_autoattack(paths, threat, eps)
    architecture = checkpoint.architecture
    summary = read_summary(run_dir) or {}
    shown_eps = eps_text(threat, eps)
    if found is None:
        clean = summary.get("test_acc_clean") if is_accuracy(summary.get("test_acc_clean")) else None
        problem = accuracy_problem("test_acc_clean", summary.get("test_acc_clean"))
        if problem is not None:
            notes.append(f"{paths.summary}: {problem}")
        notes.append(
            f"no AutoAttack figure recorded for this run's best checkpoint at {THREAT_MODELS[threat]} ε = {shown_eps}: "
            f"run `gat-tui eval {run_dir} --attack autoattack --norm {threat} --eps {shown_eps} --limit 1000` "
            "(or without --limit for RobustBench's 10000 images), then export again"
        )
        if clean is not None:
            notes.append("clean_acc is the run's test accuracy on its whole test split (summary.json)")
    else:
        clean = found.clean
        notes.append(f"clean_acc and autoattack_acc on the same {found.n} test images, from {found.path}")
        if found.version != "standard":
            notes.append(f"AutoAttack version {found.version}, not standard: RobustBench asks for standard")
    spec = architecture.classifier
    if architecture.normalize_mean is not None:
        spec += f" (normalised inside: mean {list(architecture.normalize_mean)}, std {list(architecture.normalize_std or ())})"
    return {
        "link": str((paths.config).resolve()),
        "name": run_dir.resolve().name,
        "authors": "",
        "additional_data": False,
        "number_forward_passes": 1,
        "dataset": config.data.dataset,
        "venue": "",
        "architecture": spec,
        "threat_model": THREAT_MODELS[threat],
        "eps": shown_eps,
        "clean_acc": _percent(clean),
        "reported": None,
        "autoattack_acc": _percent(None if found is None else found.accuracy),
        "autoattack_version": None if found is None else found.version,
        "n_test_images": None if found is None else found.n,
        "training_method": f"{config.method}: {METHODS.get(config.method, config.method)}",
        "config": "config.toml",
        "weights": "model.safetensors",
        "gat_tui_version": __version__,
        "notes": notes,
    }


_STAGED_FILES = {"model.safetensors", "model_card.json", "config.toml"}


def _remove_stale_staging(out: Path) -> None:
    """Remove the hidden `.OUT.xxxx` folders that a killed export of OUT left (holding only what an export writes)."""
    for entry in out.parent.iterdir():
        if not entry.name.startswith(f".{out.name}.") or entry.is_symlink() or not entry.is_dir():
            continue
        if {child.name for child in entry.iterdir()} <= _STAGED_FILES:
            shutil.rmtree(entry, ignore_errors=True)


def export_robustbench(run_dir: Path, out: Path, threat: str = "linf", eps: float | None = None) -> dict[str, Any]:
    """Write OUT (see the module docstring) from the run's best checkpoint; the card written."""
    if threat not in THREAT_MODELS:
        raise RobustBenchExportError(f"--threat-model {threat!r}: expected linf or l2")
    eps = DEFAULT_EPS[threat] if eps is None else eps
    paths = RunPaths(run_dir)
    if not run_dir.is_dir() or not paths.config.is_file():
        raise RobustBenchExportError(f"{run_dir}: not a run folder (no config.toml)")
    if not paths.best_checkpoint.is_file():
        raise RobustBenchExportError(f"{run_dir}: no checkpoints/best.safetensors to export (has it trained an epoch?)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RobustBenchExportError(f"--robustbench {out}: already exists and is not an empty folder; choose a new one")
    try:
        checkpoint = Checkpoint.open(paths.best_checkpoint)
        card = build_card(run_dir, checkpoint, threat, eps)
        shape = checkpoint.shape
    except CheckpointError as error:
        raise RobustBenchExportError(str(error)) from None
    prefix = "classifier."
    weights = {key[len(prefix) :]: value for key, value in checkpoint.tensors.items() if key.startswith(prefix)}
    metadata = {
        "architecture": checkpoint.architecture.to_json(),
        "num_classes": str(shape.num_classes),
        "image_shape": json.dumps([shape.channels, shape.height, shape.width]),
        "dataset": card["dataset"],
        "gat_tui_version": __version__,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / "model.safetensors").write_bytes(save_safetensors_bytes(weights, metadata=metadata))
        (staging / "model_card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        shutil.copyfile(paths.config, staging / "config.toml")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; a folder made by mkdir would not be
        if out.is_dir():
            out.rmdir()  # empty (checked above); rename cannot replace a folder on every platform
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return card
