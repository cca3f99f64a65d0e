"""What a sweep file expands into: its runs (grid points, tuning points), evaluations and own fields,
and the cross-entry checks, each refusal with its whole message.

Every expected value is written out by hand from the TOML in the test: a grid runs one entry per
combination with the last key varying fastest; a label is the entry's `label` (else the preset's
file stem) plus `-<last key part>=<value>` for each grid key; an override writes a boolean as
`true`/`false` and a string quoted, as TOML would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gat_tui.config import ConfigError
from gat_tui.sweep.plan import Evaluation, RunEntry, TuningPoint, check_runs, load_sweep

FULL = """\
name = "g"
description = "one line"
seeds = 2
[[runs]]
preset = "dir/tiny.toml"
set = ["train.epochs=1"]
grid = { "gat.c_g" = [0.5, 2], "train.flag" = [true, "a b"] }
seed_offset = 3
[[runs]]
preset = "synthetic_smoke"
label = "tuned"
tune = { "gat.lr_g" = [0.1, 0.2], "gat.c_g" = [1] }
tune_seeds = 2
tune_metric = "val_acc_pgd"
[[evaluations]]
attack = "fgm-l2"
[[evaluations]]
name = "aa"
attack = "autoattack"
eps = [0.1]
runs = ["tuned"]
source = "tuned"
split = "val"
limit = 5
version = "custom"
aa_attacks = ["apgd-ce"]
norm = "l2"
[paper]
tuned = { mean = 0.5, n = 3 }
[slurm]
mem = "1G"
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_grid_is_one_run_per_combination_the_last_key_fastest(tmp_path: Path) -> None:
    runs = load_sweep(write(tmp_path, FULL)).runs
    assert runs[:4] == (
        RunEntry("tiny-c_g=0.5-flag=True", preset="dir/tiny.toml", overrides=("train.epochs=1", "gat.c_g=0.5", "train.flag=true"), seed_offset=3),
        RunEntry("tiny-c_g=0.5-flag=a_b", preset="dir/tiny.toml", overrides=("train.epochs=1", "gat.c_g=0.5", "train.flag='a b'"), seed_offset=3),
        RunEntry("tiny-c_g=2-flag=True", preset="dir/tiny.toml", overrides=("train.epochs=1", "gat.c_g=2", "train.flag=true"), seed_offset=3),
        RunEntry("tiny-c_g=2-flag=a_b", preset="dir/tiny.toml", overrides=("train.epochs=1", "gat.c_g=2", "train.flag='a b'"), seed_offset=3),
    )
    # no tuning stage for a grid: no points, no tuning seeds, no tuning figure
    assert {(entry.tuning, entry.tune_seeds, entry.tune_metric) for entry in runs[:4]} == {((), 0, None)}


def test_a_false_grid_value_is_written_false(tmp_path: Path) -> None:
    text = '[[runs]]\npreset = "p"\ngrid = { "train.flag" = [false] }\n'
    (entry,) = load_sweep(write(tmp_path, text)).runs
    assert (entry.label, entry.overrides) == ("p-flag=False", ("train.flag=false",))


def test_a_label_takes_the_last_part_of_each_key_and_a_string_keeps_its_case(tmp_path: Path) -> None:
    text = '[[runs]]\npreset = "p"\ngrid = { "description" = ["Big"], "a.b.c" = [1] }\n[[runs]]\npreset = "q"\ntune = { "x.Xb" = [2] }\n'
    grid, tuned = load_sweep(write(tmp_path, text)).runs
    assert (grid.label, grid.overrides) == ("p-description=Big-c=1", ("description='Big'", "a.b.c=1"))
    assert [point.name for point in tuned.tuning] == ["Xb=2"]


def test_a_tuned_entry_is_one_run_with_its_points_seeds_and_figure(tmp_path: Path) -> None:
    tuned = load_sweep(write(tmp_path, FULL)).runs[4]
    first, second = TuningPoint("lr_g=0.1-c_g=1", ("gat.lr_g=0.1", "gat.c_g=1")), TuningPoint("lr_g=0.2-c_g=1", ("gat.lr_g=0.2", "gat.c_g=1"))
    assert tuned == RunEntry("tuned", "synthetic_smoke", (), None, 0, (first, second), 2, "val_acc_pgd")
    # a tuning run trains the point's overrides and selects its checkpoint by the tuning figure
    assert tuned.tuning_overrides(second) == ("gat.lr_g=0.2", "gat.c_g=1", "train.select_best_by=val_acc_pgd")
    plain = RunEntry("t", "p", (), tuning=(first,), tune_seeds=1)
    assert plain.tuning_overrides(first) == ("gat.lr_g=0.1", "gat.c_g=1")  # the preset's own selection


def test_tune_seeds_default_to_three(tmp_path: Path) -> None:
    text = '[[runs]]\npreset = "p"\ntune = { "gat.c_g" = [1, 2] }\n'
    (entry,) = load_sweep(write(tmp_path, text)).runs
    assert (entry.tune_seeds, entry.tune_metric, [point.name for point in entry.tuning]) == (3, None, ["c_g=1", "c_g=2"])


def test_evaluations_default_to_every_run_direct_on_the_whole_test_split(tmp_path: Path) -> None:
    sweep = load_sweep(write(tmp_path, FULL))
    labels = ("tiny-c_g=0.5-flag=True", "tiny-c_g=0.5-flag=a_b", "tiny-c_g=2-flag=True", "tiny-c_g=2-flag=a_b", "tuned")
    assert sweep.evaluations == (
        Evaluation("fgm-l2-0", "fgm-l2", (), labels, None, False, "test", 0, "linf", "standard", ()),
        Evaluation("aa", "autoattack", (0.1,), ("tuned",), "tuned", False, "val", 5, "l2", "custom", ("apgd-ce",)),
    )


def test_the_sweeps_own_fields(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    sweep = load_sweep(path)
    assert (sweep.name, sweep.description, sweep.seeds, sweep.path) == ("g", "one line", 2, path)
    assert sweep.paper == {"tuned": {"mean": 0.5, "n": 3}}  # no std given: none printed
    assert sweep.slurm == {"mem": "1G"}
    assert load_sweep(path, seeds=7).seeds == 7  # --seeds replaces the file's count
    unnamed = load_sweep(write(tmp_path, '[[runs]]\npreset = "p"\n[paper]\np = { std = 0.25 }\n', "unnamed.toml"))
    assert (unnamed.name, unnamed.description, unnamed.seeds, unnamed.slurm) == ("unnamed", "", 1, {})
    assert unnamed.paper == {"p": {"std": 0.25, "n": 0}}  # n not stated: 0


RUN_A = '[[runs]]\npreset = "p"\nlabel = "a"\n'
KEY = "key '{}' = {} is not allowed; expected "


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (RUN_A + 'tune_metric = "val_acc_pgd"\n', KEY.format("runs[0].tune_metric", "'val_acc_pgd'") + "no tune_metric without a tune grid"),
        (
            RUN_A + 'grid = { "x.y" = [1] }\ntune = { "x.y" = [1] }\n',
            KEY.format("runs[0].tune", "{'x.y': (1,)}") + "either a grid (one run per point) or tune, not both",
        ),
        (
            RUN_A + '[[runs]]\npreset = "p"\nlabel = "b"\nattack_target = "a"\ntune = { "x.y" = [1] }\n',
            KEY.format("runs[1].tune", "{'x.y': (1,)}") + "no tune with attack_target (attackers select on L_G, not accuracy)",
        ),
        (
            RUN_A + 'tune = { "a.c" = [1, "1"] }\n',
            KEY.format("runs[0].tune", "{'a.c': (1, '1')}") + "keys whose last parts differ and values that differ (they name folders)",
        ),
        (  # two folders whose names differ only in case are one folder on macOS and Windows
            RUN_A + 'tune = { "a.c" = ["A", "a"] }\n',
            KEY.format("runs[0].tune", "{'a.c': ('A', 'a')}") + "keys whose last parts differ and values that differ (they name folders)",
        ),
        (RUN_A + '[[evaluations]]\nattack = "fgm-l2"\nruns = ["zz"]\n', KEY.format("evaluations[0].runs/source", "'zz'") + "labels of this sweep's runs: a"),
        (
            RUN_A + '[[runs]]\npreset = "p"\nlabel = "b"\n[[evaluations]]\nattack = "fgm-l2"\n[[evaluations]]\nattack = "fgm-l2"\nsource = "zz"\n',
            KEY.format("evaluations[1].runs/source", "'zz'") + "labels of this sweep's runs: a, b",
        ),
        (
            RUN_A + '[[evaluations]]\nattack = "fgm-l2"\nnorm = "l2"\n',
            KEY.format("evaluations[0].norm", "'l2'") + "no norm with attack 'fgm-l2' (only autoattack, apgd-ce, apgd-dlr)",
        ),
        (
            RUN_A + '[[evaluations]]\nattack = "apgd-ce"\nversion = "plus"\n',
            KEY.format("evaluations[0].version", "'plus'") + "no version with attack 'apgd-ce' (only autoattack)",
        ),
        (
            RUN_A + '[[evaluations]]\nattack = "autoattack"\nversion = "plus"\naa_attacks = ["apgd-ce"]\n',
            KEY.format("evaluations[0].aa_attacks", "['apgd-ce']") + 'only with attack = "autoattack" and version = "custom"',
        ),
        (
            RUN_A + '[[evaluations]]\nattack = "autoattack"\naa_attacks = ["apgd-ce"]\n',
            KEY.format("evaluations[0].aa_attacks", "['apgd-ce']") + 'only with attack = "autoattack" and version = "custom"',
        ),
        (
            RUN_A + '[[evaluations]]\nattack = "autoattack"\nversion = "custom"\n',
            KEY.format("evaluations[0].version", "'custom'") + 'with aa_attacks, e.g. aa_attacks = ["apgd-ce", "apgd-t"]',
        ),
        (
            RUN_A + '[[evaluations]]\nattack = "apgd-dlr"\nmatch_power = true\n',
            KEY.format("evaluations[0].match_power", "True") + "false with attack 'apgd-dlr' (it matches the GAT attacker's power)",
        ),
        (
            '[[runs]]\npreset = "x/p.toml"\n[[runs]]\npreset = "p"\n[[runs]]\npreset = "b"\n[[runs]]\npreset = "b"\n',
            "run label 'b' appears twice; give one entry a 'label'",  # the first of the duplicates by name
        ),
        (RUN_A + 'attack_target = "b"\n[[runs]]\npreset = "p"\nlabel = "b"\n', KEY.format("attack_target", "'b'") + "the label of a run listed before it"),
        (RUN_A + '[[runs]]\npreset = "p"\nlabel = "c"\nattack_target = "c"\n', KEY.format("attack_target", "'c'") + "the label of a run listed before it"),
        (
            '[[runs]]\npreset = "presets/.."\n',
            "run label '..' cannot name a folder; give the entry a 'label' of letters, digits and . _ = + -, not starting with '.'",
        ),
        ('name = "x"\n', "needs at least one [[runs]] table with a preset"),
    ],
)
def test_each_cross_entry_refusal_names_the_file_key_value_and_what_is_allowed(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_sweep(path)
    assert str(raised.value) == f"{path}: {message}"


def test_a_file_that_is_missing_not_toml_or_out_of_range_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    for text, message in (
        (None, "no such sweep file"),
        ("[[runs]\n", "not valid TOML: Expected ']]' at the end of an array declaration (at line 1, column 7)"),
        ('seeds = 0\n[[runs]]\npreset = "p"\n', "key 'seeds' = 0 is out of range; expected >= 1"),
    ):
        if text is not None:
            path.write_text(text)
        with pytest.raises(ConfigError) as raised:
            load_sweep(path)
        assert str(raised.value) == f"{path}: {message}"
    (tmp_path / "folder.toml").mkdir()
    with pytest.raises(ConfigError, match=r"folder.toml: is a folder, not a sweep file$"):
        load_sweep(tmp_path / "folder.toml")


def test_an_autoattack_evaluation_may_set_its_options_and_an_attacker_follow_its_target(tmp_path: Path) -> None:
    text = (
        RUN_A + '[[runs]]\npreset = "p"\nlabel = "b"\nattack_target = "a"\n'
        '[[evaluations]]\nattack = "autoattack"\nnorm = "l2"\nversion = "plus"\n'
        '[[evaluations]]\nattack = "apgd-ce"\nnorm = "l2"\n'
    )
    sweep = load_sweep(write(tmp_path, text))
    assert [(e.name, e.attack, e.norm, e.version) for e in sweep.evaluations] == [
        ("autoattack-0", "autoattack", "l2", "plus"), ("apgd-ce-1", "apgd-ce", "l2", "standard"),
    ]
    assert [entry.attack_target for entry in sweep.runs] == [None, "a"]


# --- check_runs: every preset and override loaded before the first job trains --------------------


def test_check_runs_loads_every_run_and_tuning_point_with_its_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gat_tui.presets

    seen: list[tuple[str, tuple[str, ...]]] = []
    monkeypatch.setattr(gat_tui.presets, "load_named_preset", lambda name, overrides: seen.append((name, tuple(overrides))))
    text = (
        '[[runs]]\npreset = "base"\nlabel = "a"\nset = ["seed=1"]\n'
        '[[runs]]\npreset = "atk"\nlabel = "b"\nattack_target = "a"\n'
        '[[runs]]\npreset = "gat"\nlabel = "t"\ntune = { "gat.c_g" = [1, 2] }\ntune_metric = "val_acc_fgm_l2"\n'
    )
    check_runs(load_sweep(write(tmp_path, text)))
    assert seen == [
        ("base", ("seed=1",)),
        ("atk", ('attack.classifier="best checkpoint of a"',)),
        ("gat", ("gat.c_g=1", "train.select_best_by=val_acc_fgm_l2")),
        ("gat", ("gat.c_g=2", "train.select_best_by=val_acc_fgm_l2")),
    ]


def test_check_runs_names_the_sweep_file_and_the_run_at_fault(tmp_path: Path) -> None:
    path = write(tmp_path, '[[runs]]\npreset = "synthetic_smoke"\nlabel = "ok"\n[[runs]]\npreset = "synthetic_smoke"\nlabel = "bad"\nset = ["train.nope=1"]\n')
    with pytest.raises(ConfigError) as raised:
        check_runs(load_sweep(path))
    assert str(raised.value).startswith(f"{path}: run 'bad': ") and "train.nope" in str(raised.value)
    unnamed = load_sweep(path)
    object.__setattr__(unnamed, "path", None)  # a sweep built in code: named by its name
    with pytest.raises(ConfigError, match=r"^s: run 'bad': "):
        check_runs(unnamed)
