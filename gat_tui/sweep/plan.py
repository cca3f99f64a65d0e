"""A sweep file, validated, and the list of jobs it stands for.

    name = "table2_cifar10"
    description = "Table 2, CIFAR-10: seven methods, 50 seeds"
    seeds = 50                      # seeds 0 .. seeds-1 (`--seeds N` overrides)

    [[runs]]                        # one entry per preset, optionally with overrides and a grid
    preset = "cifar10_gat"
    set = ["train.epochs=100"]
    grid = { "gat.c_g" = [0.001, 0.01] }   # one run per value (per combination)
    attack_target = "cifar10_baseline"     # gat_attack: attack that run's best checkpoint (same seed)
    seed_offset = 0                 # trains with seed + offset (a second, independent baseline)

    [[evaluations]]                 # optional: attacks on each listed run's best checkpoint
    name = "fig3"
    attack = "fgm-l2"
    eps = [0.5, 1.0, 2.0]
    runs = ["cifar10_baseline", "cifar10_gat"]   # labels; default all
    source = "cifar10_baseline"     # indirect attack from that run (same seed); default direct
    match_power = false
    split = "test"
    limit = 0

    [paper]                         # published figures to print beside ours, by run label
    cifar10_gat = { mean = 0.0, std = 0.0 }

Every job of one seed goes to the same shard, so a run and the runs it depends on (an
attacker's target, an indirect attack's source) are made by the same machine in order.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gat_tui.attacks import ATTACKS
from gat_tui.config import ConfigError

_TOP_KEYS = {"name", "description", "seeds", "runs", "evaluations", "paper"}
_RUN_KEYS = {"preset", "set", "grid", "attack_target", "label", "seed_offset"}
_EVAL_KEYS = {"name", "attack", "eps", "runs", "source", "match_power", "split", "limit"}


@dataclass(frozen=True)
class RunEntry:
    label: str  # unique in the sweep; names its folder
    preset: str
    overrides: tuple[str, ...]
    attack_target: str | None = None
    seed_offset: int = 0


@dataclass(frozen=True)
class Evaluation:
    name: str
    attack: str
    eps: tuple[float, ...]
    runs: tuple[str, ...]
    source: str | None
    match_power: bool
    split: str
    limit: int


@dataclass(frozen=True)
class Sweep:
    name: str
    description: str
    seeds: int
    runs: tuple[RunEntry, ...]
    evaluations: tuple[Evaluation, ...]
    paper: dict[str, dict[str, float]] = field(default_factory=dict)
    path: Path | None = None


@dataclass(frozen=True)
class Job:
    """One training run (kind 'train') or one evaluation of one run (kind 'eval'), for one seed."""

    kind: str
    seed: int
    entry: RunEntry
    evaluation: Evaluation | None = None


def _refuse(where: str, key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{where}: key '{key}' = {value!r} is not allowed; expected {allowed}")


def _unknown(where: str, table: dict[str, Any], allowed: set[str], prefix: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise ConfigError(f"{where}: unknown key '{prefix}{extra[0]}'; allowed keys here: {', '.join(sorted(allowed))}")


def _grid_label(preset: str, point: dict[str, Any]) -> str:
    if not point:
        return preset
    return preset + "-" + "-".join(f"{key.split('.')[-1]}={value}" for key, value in point.items())


def _value_text(value: Any) -> str:
    return repr(value).lower() if isinstance(value, bool) else repr(value) if isinstance(value, str) else str(value)


def _run_entries(where: str, table: dict[str, Any], index: int) -> list[RunEntry]:
    prefix = f"runs[{index}]."
    _unknown(where, table, _RUN_KEYS, prefix)
    preset = table.get("preset")
    if not isinstance(preset, str) or not preset:
        raise _refuse(where, prefix + "preset", preset, "a preset name or file")
    overrides = table.get("set", [])
    if not isinstance(overrides, list) or not all(isinstance(item, str) for item in overrides):
        raise _refuse(where, prefix + "set", overrides, 'a list of "KEY=VALUE" strings')
    grid = table.get("grid", {})
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise _refuse(where, prefix + "grid", grid, 'a table of key = [values], e.g. { "gat.c_g" = [0.001, 0.01] }')
    target = table.get("attack_target")
    if target is not None and not isinstance(target, str):
        raise _refuse(where, prefix + "attack_target", target, "the label of another run")
    offset = table.get("seed_offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise _refuse(where, prefix + "seed_offset", offset, "an integer >= 0")
    stem = table.get("label", Path(preset).stem)
    entries = []
    keys = list(grid)
    for values in itertools.product(*(grid[key] for key in keys)) if keys else [()]:
        point = dict(zip(keys, values))
        grid_overrides = [f"{key}={_value_text(value)}" for key, value in point.items()]
        entries.append(RunEntry(_grid_label(stem, point), preset, tuple(overrides) + tuple(grid_overrides), target, offset))
    return entries


def _evaluation(where: str, table: dict[str, Any], index: int, labels: list[str]) -> Evaluation:
    prefix = f"evaluations[{index}]."
    _unknown(where, table, _EVAL_KEYS, prefix)
    attack = table.get("attack")
    if attack not in ATTACKS:
        raise _refuse(where, prefix + "attack", attack, "one of " + ", ".join(ATTACKS))
    eps = table.get("eps", [])
    if not isinstance(eps, list) or not all(isinstance(e, (int, float)) and not isinstance(e, bool) and e >= 0 for e in eps):
        raise _refuse(where, prefix + "eps", eps, "a list of numbers >= 0")
    runs = table.get("runs", labels)
    for label in list(runs) + ([table["source"]] if "source" in table else []):
        if label not in labels:
            raise _refuse(where, prefix + "runs/source", label, "labels of this sweep's runs: " + ", ".join(labels))
    split = table.get("split", "test")
    if split not in ("val", "test"):
        raise _refuse(where, prefix + "split", split, "val or test")
    limit = table.get("limit", 0)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise _refuse(where, prefix + "limit", limit, "an integer >= 0")
    return Evaluation(
        name=str(table.get("name", f"{attack}-{index}")),
        attack=str(attack),
        eps=tuple(float(e) for e in eps),
        runs=tuple(runs),
        source=table.get("source"),
        match_power=bool(table.get("match_power", False)),
        split=split,
        limit=limit,
    )


def load_sweep(path: Path, seeds: int | None = None) -> Sweep:
    where = str(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such sweep file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{where}: not valid TOML: {error}") from None
    _unknown(where, table, _TOP_KEYS, "")
    count = table.get("seeds", 1) if seeds is None else seeds
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise _refuse(where, "seeds", count, "an integer >= 1")
    raw_runs = table.get("runs")
    if not isinstance(raw_runs, list) or not raw_runs:
        raise ConfigError(f"{where}: needs at least one [[runs]] table with a preset")
    entries = [entry for index, run in enumerate(raw_runs) for entry in _run_entries(where, run, index)]
    labels = [entry.label for entry in entries]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ConfigError(f"{where}: run label '{duplicates[0]}' appears twice; give one entry a 'label'")
    for entry in entries:
        if entry.attack_target is not None and entry.attack_target not in labels[: labels.index(entry.label)]:
            raise _refuse(where, "attack_target", entry.attack_target, "the label of a run listed before it")
    evaluations = [_evaluation(where, raw, index, labels) for index, raw in enumerate(table.get("evaluations", []))]
    paper = table.get("paper", {})
    return Sweep(
        name=str(table.get("name", path.stem)),
        description=str(table.get("description", "")),
        seeds=count,
        runs=tuple(entries),
        evaluations=tuple(evaluations),
        paper={key: dict(value) for key, value in paper.items() if isinstance(value, dict)},
        path=path,
    )


def jobs(sweep: Sweep, shard: int = 0, shards: int = 1) -> list[Job]:
    """This shard's jobs in the order they must run: per seed, trainings, then evaluations."""
    planned = []
    for seed in range(sweep.seeds):
        if seed % shards != shard:
            continue
        planned += [Job("train", seed, entry) for entry in sweep.runs]
        by_label = {entry.label: entry for entry in sweep.runs}
        for evaluation in sweep.evaluations:
            planned += [Job("eval", seed, by_label[label], evaluation) for label in evaluation.runs]
    return planned


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' with 0 <= I < N (shards count from 0, as Slurm's array index does)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: expected I/N, e.g. --shard 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"--shard {text!r}: expected 0 <= I < N")
    return index, count
