"""A sweep file, validated, and the list of jobs it stands for.

    name = "cifar10_example"        # names the sweep and its default output folder
    description = "baseline, GAT and GAT attackers, then an indirect FGM-L2 attack"
    seeds = 50                      # seeds 0 .. seeds-1 (`--seeds N` overrides)

    [[runs]]                        # one entry per preset, optionally with overrides and a grid
    preset = "cifar10_baseline"
    [[runs]]
    preset = "cifar10_gat"
    set = ["train.epochs=100"]      # KEY=VALUE overrides, as `--set`
    seed_offset = 0                 # trains with seed + offset (a second, independent baseline)
    [[runs]]
    preset = "cifar10_gat_attack"
    label = "attacker"              # names the run and its folder; default the preset's file name
    grid = { "gat.c_g" = [0.001, 0.01] }   # one run per value (per combination): attacker-c_g=0.001, ...
    attack_target = "cifar10_baseline"     # gat_attack: attack that run's best checkpoint (same seed)
    [[runs]]
    preset = "cifar10_dropout_gat"
    tune = { "gat.lr_g" = [1e-6, 1e-4], "gat.c_g" = [0.01, 0.1] }   # two stages (Section 4.4):
    tune_seeds = 3                  # every grid point x 3 tuning seeds, then the best point x every seed
    tune_metric = "val_acc_pgd"     # optional: compare the points on this validation figure (default clean)

    [[evaluations]]                 # optional: attacks on each listed run's best checkpoint
    name = "fig4"
    attack = "fgm-l2"
    eps = [0.5, 1.0, 2.0]
    runs = ["cifar10_gat"]          # labels; default all
    source = "cifar10_baseline"     # indirect attack from that run (same seed); default direct
    match_power = false
    split = "test"
    limit = 0                       # images; 0 = the whole split
    [[evaluations]]
    name = "autoattack-linf"
    attack = "autoattack"           # also apgd-ce, apgd-dlr (pyautoattack, the autoattack extra)
    norm = "linf"                   # linf or l2 (these three attacks only)
    eps = [0.03137254901960784]     # 8/255; default RobustBench's 8/255 (linf) or 0.5 (l2)
    version = "standard"            # standard, plus, rand, or custom with aa_attacks = ["apgd-ce", ...]
    limit = 1000

    [paper]                         # published figures to print beside ours, by run label
    cifar10_gat = { mean = 0.0, std = 0.0, n = 50 }   # fractions in [0, 1]

    [slurm]                         # optional: further submitit parameters for --executor slurm
    cpus_per_task = 4
    mem = "16G"

Every key, its meaning and what it allows, is declared once in the schema classes below
(`SweepTable`, `RunTable`, `EvaluationTable`, `PaperEntry`) and checked by `gat_tui.toml_schema`;
what spans several entries (unique labels, an attack target listed before its attacker,
evaluations naming runs of this sweep) is checked here.

Every job of one seed goes to the same shard, so a run and the runs it depends on (an
attacker's target, an indirect attack's source) are made by the same machine in order.

A `tune` entry is the paper's protocol (Section 4.4: "the set of hyperparameters that achieved
the best performance on the validation data", then repeated over weight initialisations). Its
tuning stage trains every point of the `tune` grid with `tune_seeds` seeds (TUNING_SEED_BASE + k,
+ seed_offset: disjoint from the repeat seeds, so no repeat run is a copy of a tuning run); the
point with the highest mean best validation accuracy wins (`gat_tui.sweep.tuning`), and the
repeat stage trains that point for every seed under the entry's own label. `tune_metric` compares
the points on another validation figure (`train.select_best_by`'s choices: the tuning runs train
with it, so their `best_value` is that figure); the repeat runs keep the preset's own selection. Tuning job k goes to
shard k mod N; every shard lists all tuning jobs of its share before any repeat job, and a
repeat job whose choice cannot be made yet (tuning runs of another shard not finished) waits.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gat_tui.attacks import ATTACKS, AUTOATTACKS
from gat_tui.attacks.autoattack import STAGES, VERSIONS
from gat_tui.config import FOLDER_NAME, IMAGES_MAX, SELECTION_METRICS, ConfigError
from gat_tui.toml_schema import REQUIRED, build, parse_toml, read_text, setting

# Bounds that keep seed + seed_offset a valid seed (< 2**63) and the job list in memory.
SEEDS_MAX = 100_000
SEED_OFFSET_MAX = 1_000_000_000
# Tuning seed k trains with TUNING_SEED_BASE + k (+ seed_offset): never one of the repeat seeds 0 .. SEEDS_MAX-1.
TUNING_SEED_BASE = 1_000_000
TUNE_SEEDS_MAX = 1_000


# --- the file's schema: what each key means and allows ------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RunTable:
    """One [[runs]] entry as written; `load_sweep` expands it into RunEntry objects (one per grid point)."""

    preset: str = setting(REQUIRED, "the preset to train: a shipped preset's name or a preset file", pattern=(r"(?s).+", "a preset name or file"))
    set: tuple[str, ...] = setting((), 'overrides of the preset\'s keys, as "KEY=VALUE" strings (like --set)')
    # The grid's values are taken as they are here: each becomes a `KEY=VALUE` override that the
    # preset's own schema checks when the run starts (toml_schema's `Any` hook).
    grid: dict[str, tuple[Any, ...]] = setting(
        {}, 'one run per value (per combination) of each dotted key, e.g. { "gat.c_g" = [0.001, 0.01] }', min_items=1
    )
    attack_target: str | None = setting(
        None, "gat_attack only: the label of a run listed before this one, whose best checkpoint (same seed) is attacked"
    )
    label: str | None = setting(None, "the run's name in the sweep and its folder (default: the preset's file name)", pattern=FOLDER_NAME)
    seed_offset: int = setting(0, "trains with seed + offset (e.g. a second, independent baseline)", min=0, max=SEED_OFFSET_MAX)
    # Like `grid`, the values become `KEY=VALUE` overrides that the preset's schema checks when a run starts.
    tune: dict[str, tuple[Any, ...]] = setting(
        {},
        "tune on validation first (Section 4.4): every value (combination) of each dotted key x tune_seeds seeds, "
        'then the point with the best mean validation accuracy x every seed, e.g. { "gat.lr_g" = [1e-6, 1e-4] }',
        min_items=1,
    )
    tune_seeds: int = setting(3, "with tune: seeds of each grid point in the tuning stage", min=1, max=TUNE_SEEDS_MAX)
    tune_metric: str | None = setting(
        None,
        "with tune: the validation figure the tuning stage compares (its runs train with train.select_best_by set to it); "
        "default the preset's train.select_best_by, val_acc_clean unless set (the paper's rule)",
        choices=SELECTION_METRICS,
    )


@dataclass(frozen=True, kw_only=True)
class EvaluationTable:
    """One [[evaluations]] entry as written: an attack on each listed run's best checkpoint."""

    name: str | None = setting(None, "names the evaluation and its output folder (default: ATTACK-INDEX)", pattern=FOLDER_NAME)
    attack: str = setting(REQUIRED, "the attack, as `gat-tui eval` names it", choices=(*ATTACKS, *AUTOATTACKS))
    eps: tuple[float, ...] = setting((), "perturbation sizes, each an L2 norm or an L-inf bound (empty: the attack's own)", min=0.0)
    runs: tuple[str, ...] | None = setting(None, "labels of the runs to attack (default: all)")
    source: str | None = setting(None, "an indirect attack's source: label of the run whose gradients make the perturbation (same seed); default direct")
    match_power: bool = setting(False, "scale each perturbation to the GAT attacker's mean L2 norm (Fig. 2)")
    split: str = setting("test", "which images to attack", choices=("val", "test"))
    limit: int = setting(0, "images of the split to attack (0 = all)", min=0, max=IMAGES_MAX)
    # AutoAttack's options, as `gat-tui eval --norm/--version/--aa-attacks` (checked in `_evaluation`)
    norm: str | None = setting(None, "autoattack, apgd-ce and apgd-dlr only: the threat model's norm (default linf)", choices=("linf", "l2"))
    version: str | None = setting(
        None, "autoattack only: its version (default standard; custom needs aa_attacks)", choices=(*VERSIONS, "custom")
    )
    aa_attacks: tuple[str, ...] = setting((), "autoattack with version custom only: its stages, in order", choices=STAGES, min_items=1)


@dataclass(frozen=True, kw_only=True)
class PaperEntry:
    """A published figure of one run label, printed beside ours by `gat-tui report`."""

    mean: float | None = setting(None, "published mean test accuracy, a fraction in [0, 1]", min=0.0, max=1.0)
    std: float | None = setting(None, "published standard deviation, a fraction in [0, 1]", min=0.0, max=1.0)
    n: int = setting(0, "number of runs the published figure averages (0 = not stated)", min=0)


@dataclass(frozen=True, kw_only=True)
class SweepTable:
    """A sweep file as written."""

    name: str | None = setting(None, "names the sweep and its default output folder (default: the file's name)", pattern=FOLDER_NAME)
    description: str = setting("", "one line shown when the sweep starts")
    seeds: int = setting(1, "seeds 0 .. seeds-1 of every run (`--seeds N` overrides)", min=1, max=SEEDS_MAX)
    runs: tuple[RunTable, ...] = setting((), "one entry per preset, optionally with overrides and a grid")
    evaluations: tuple[EvaluationTable, ...] = setting((), "attacks on each listed run's best checkpoint")
    paper: dict[str, PaperEntry] = setting({}, "published figures to print beside ours, by run label")
    # Checked against submitit's own list when the sweep is submitted (gat_tui.sweep.executors), so
    # a sweep file without Slurm settings loads where submitit is not installed.
    slurm: dict[str, Any] = setting(
        {}, "with --executor slurm: further submitit Slurm parameters, as sbatch names them (underscores for dashes), e.g. { cpus_per_task = 4, mem = \"16G\", account = \"lab\" }"
    )


# --- what the rest of the package uses ----------------------------------------------------------


@dataclass(frozen=True)
class TuningPoint:
    """One point of a `tune` grid: its folder name and its overrides, in the grid's file order."""

    name: str
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class RunEntry:
    label: str  # unique in the sweep; names its folder
    preset: str
    overrides: tuple[str, ...]
    attack_target: str | None = None
    seed_offset: int = 0
    tuning: tuple[TuningPoint, ...] = ()  # empty: no tuning stage
    tune_seeds: int = 0
    tune_metric: str | None = None  # None: the preset's own train.select_best_by

    def tuning_overrides(self, point: TuningPoint) -> tuple[str, ...]:
        """A tuning run's overrides beyond the entry's own: the grid point's, and the figure its checkpoint (and so
        its `best_value`, the tuning figure) is selected by."""
        metric = () if self.tune_metric is None else (f"train.select_best_by={self.tune_metric}",)
        return point.overrides + metric

    def tuning_seed(self, index: int) -> int:
        """The training seed of tuning seed `index` (0 .. tune_seeds-1)."""
        return TUNING_SEED_BASE + index + self.seed_offset


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
    norm: str = "linf"  # the AutoAttack family's options; unused by other attacks
    version: str = "standard"
    aa_attacks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sweep:
    name: str
    description: str
    seeds: int
    runs: tuple[RunEntry, ...]
    evaluations: tuple[Evaluation, ...]
    paper: dict[str, dict[str, float]] = field(default_factory=dict)
    path: Path | None = None
    slurm: dict[str, Any] = field(default_factory=dict)  # the file's [slurm] table, as written


@dataclass(frozen=True)
class Job:
    """One training run (kind 'train'), one evaluation of one run ('eval'), or one tuning run
    ('tune': `point` of the entry's grid, `seed` the tuning seed's index), for one seed."""

    kind: str
    seed: int
    entry: RunEntry
    evaluation: Evaluation | None = None
    point: TuningPoint | None = None

    @property
    def training_seed(self) -> int:
        """The seed its run trains with: a tuning job's tuning seed, else the seed plus the entry's offset.

        An evaluation job attacks the run of its seed, so it reports that run's training seed."""
        if self.point is not None:
            return self.entry.tuning_seed(self.seed)
        return self.seed + self.entry.seed_offset


def _refuse(where: str, key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{where}: key '{key}' = {value!r} is not allowed; expected {allowed}")


# what a grid or tune value may keep of itself in a folder name: a '/' or '..' would lead the
# run's folder (and its job file) out of the sweep folder
_UNSAFE_IN_FOLDER_NAME = re.compile(r"[^A-Za-z0-9._=+-]+")
_SAFE_LABEL = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._=+-]*")


def _grid_label(preset: str, point: dict[str, Any]) -> str:
    if not point:
        return preset
    parts = (f"{key.split('.')[-1]}={value}" for key, value in point.items())
    return preset + "-" + "-".join(_UNSAFE_IN_FOLDER_NAME.sub("_", part).replace("..", "_") for part in parts)


def _value_text(value: Any) -> str:
    return repr(value).lower() if isinstance(value, bool) else repr(value) if isinstance(value, str) else str(value)


def _points(grid: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in file order (the last key varies fastest)."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[key] for key in keys))] if keys else [{}]


def _point_overrides(point: dict[str, Any]) -> tuple[str, ...]:
    return tuple(f"{key}={_value_text(value)}" for key, value in point.items())


def _tuning_points(where: str, index: int, run: RunTable) -> tuple[TuningPoint, ...]:
    if not run.tune:
        if run.tune_metric is not None:
            raise _refuse(where, f"runs[{index}].tune_metric", run.tune_metric, "no tune_metric without a tune grid")
        return ()
    if run.grid:
        raise _refuse(where, f"runs[{index}].tune", run.tune, "either a grid (one run per point) or tune, not both")
    if run.attack_target is not None:
        raise _refuse(where, f"runs[{index}].tune", run.tune, "no tune with attack_target (attackers select on L_G, not accuracy)")
    points = tuple(TuningPoint(_grid_label("", point).lstrip("-"), _point_overrides(point)) for point in _points(run.tune))
    names = [point.name for point in points]
    if len(set(names)) < len(names) or len(set(name.lower() for name in names)) < len(names):
        raise _refuse(where, f"runs[{index}].tune", run.tune, "keys whose last parts differ and values that differ (they name folders)")
    return points


def _run_entries(where: str, index: int, run: RunTable) -> list[RunEntry]:
    """The runs one [[runs]] entry stands for: one per point of its grid (a tuned entry is one run)."""
    stem = run.label if run.label is not None else Path(run.preset).stem
    tuning = _tuning_points(where, index, run)
    tune_seeds = run.tune_seeds if tuning else 0
    return [
        RunEntry(
            _grid_label(stem, point), run.preset, run.set + _point_overrides(point), run.attack_target, run.seed_offset,
            tuning, tune_seeds, run.tune_metric if tuning else None,
        )
        for point in _points(run.grid)
    ]


def _evaluation(where: str, table: EvaluationTable, index: int, labels: list[str]) -> Evaluation:
    prefix = f"evaluations[{index}]."
    runs = table.runs if table.runs is not None else tuple(labels)
    for label in runs + ((table.source,) if table.source is not None else ()):
        if label not in labels:
            raise _refuse(where, prefix + "runs/source", label, "labels of this sweep's runs: " + ", ".join(labels))
    _check_autoattack_keys(where, prefix, table)
    return Evaluation(
        name=table.name if table.name is not None else f"{table.attack}-{index}",
        attack=table.attack,
        eps=table.eps,
        runs=runs,
        source=table.source,
        match_power=table.match_power,
        split=table.split,
        limit=table.limit,
        norm=table.norm or "linf",
        version=table.version or "standard",
        aa_attacks=table.aa_attacks,
    )


def _check_autoattack_keys(where: str, prefix: str, table: EvaluationTable) -> None:
    """norm, version and aa_attacks belong to the AutoAttack family, and fit together as `gat-tui eval` asks."""
    family = table.attack in AUTOATTACKS
    if table.norm is not None and not family:
        raise _refuse(where, prefix + "norm", table.norm, f"no norm with attack {table.attack!r} (only autoattack, apgd-ce, apgd-dlr)")
    if table.version is not None and table.attack != "autoattack":
        raise _refuse(where, prefix + "version", table.version, f"no version with attack {table.attack!r} (only autoattack)")
    custom = table.version == "custom"
    if table.aa_attacks and not custom:
        raise _refuse(
            where, prefix + "aa_attacks", list(table.aa_attacks), 'only with attack = "autoattack" and version = "custom"'
        )
    if custom and not table.aa_attacks:
        raise _refuse(where, prefix + "version", table.version, 'with aa_attacks, e.g. aa_attacks = ["apgd-ce", "apgd-t"]')
    if family and table.match_power:
        raise _refuse(where, prefix + "match_power", True, f"false with attack {table.attack!r} (it matches the GAT attacker's power)")


def _check_labels(where: str, entries: list[RunEntry]) -> None:
    labels = [entry.label for entry in entries]
    for label in labels:  # a label names a folder: a preset path such as "a/.." must not lead out of the sweep
        if not _SAFE_LABEL.fullmatch(label):
            raise ConfigError(f"{where}: run label {label!r} cannot name a folder; give the entry a 'label' of letters, digits and . _ = + -, not starting with '.'")
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ConfigError(f"{where}: run label '{duplicates[0]}' appears twice; give one entry a 'label'")
    for position, entry in enumerate(entries):
        if entry.attack_target is not None and entry.attack_target not in labels[:position]:
            raise _refuse(where, "attack_target", entry.attack_target, "the label of a run listed before it")


def load_sweep(path: Path, seeds: int | None = None) -> Sweep:
    """Read and validate a sweep file; `seeds` (from `--seeds`) replaces the file's count and is checked alike."""
    where = str(path)
    table = parse_toml(read_text(path, "sweep"), where)
    if seeds is not None:
        table["seeds"] = seeds
    written = build(SweepTable, table, where)
    if not written.runs:
        raise ConfigError(f"{where}: needs at least one [[runs]] table with a preset")
    entries = [entry for index, run in enumerate(written.runs) for entry in _run_entries(where, index, run)]
    _check_labels(where, entries)
    labels = [entry.label for entry in entries]
    evaluations = [_evaluation(where, evaluation, index, labels) for index, evaluation in enumerate(written.evaluations)]
    return Sweep(
        name=written.name if written.name is not None else path.stem,
        description=written.description,
        seeds=written.seeds,
        runs=tuple(entries),
        evaluations=tuple(evaluations),
        paper={label: _paper_figures(entry) for label, entry in written.paper.items()},
        path=path,
        slurm=dict(written.slurm),
    )


def _paper_figures(entry: PaperEntry) -> dict[str, float]:
    """The figures given, by name ('mean', 'std', 'n'), as the report reads them."""
    figures: dict[str, float | None] = {"mean": entry.mean, "std": entry.std, "n": entry.n}
    return {key: value for key, value in figures.items() if value is not None}


def check_runs(sweep: Sweep) -> None:
    """Every run's preset and overrides (each tuning point's too), validated before the first job trains.

    A missing preset or an unknown key in `set`, `grid` or `tune` would otherwise fail only when its
    job starts, after the jobs before it have trained. ConfigError names the sweep file and the run.
    """
    from gat_tui.presets import load_named_preset

    where = str(sweep.path) if sweep.path is not None else sweep.name
    for entry in sweep.runs:
        # an attacker's classifier is its target's best checkpoint, known once the target has trained
        target = [] if entry.attack_target is None else [f'attack.classifier="best checkpoint of {entry.attack_target}"']
        for point in entry.tuning or (None,):
            overrides = [*entry.overrides, *(entry.tuning_overrides(point) if point is not None else ()), *target]
            try:
                load_named_preset(entry.preset, overrides)
            except ConfigError as error:
                raise ConfigError(f"{where}: run '{entry.label}': {error}") from None


def jobs(sweep: Sweep, shard: int = 0, shards: int = 1) -> list[Job]:
    """This shard's jobs in the order they must run: tuning runs (tuning seed k to shard k mod N),
    then per seed, trainings, then evaluations."""
    planned = [
        Job("tune", index, entry, point=point)
        for entry in sweep.runs
        for index in range(entry.tune_seeds)
        if index % shards == shard
        for point in entry.tuning
    ]
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
