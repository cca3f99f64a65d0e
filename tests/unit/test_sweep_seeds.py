"""Which seed each sweep job trains with, which jobs a shard gets and in what order.

The expected seeds are written out by hand from the sweep file below: seeds = 3, a baseline,
a second baseline with `seed_offset = 7`, and a GAT entry tuned over two learning rates with two
tuning seeds (tuning seed k trains with 1_000_000 + k), then one evaluation of the baseline.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gat_tui.sweep.plan import Job, jobs, load_sweep
from gat_tui.sweep.runner import SweepRunner

SWEEP = """\
name = "seeds"
seeds = 3
[[runs]]
preset = "synthetic_smoke"
label = "base"
set = ["method=baseline"]
[[runs]]
preset = "synthetic_smoke"
label = "base2"
set = ["method=baseline"]
seed_offset = 7
[[runs]]
preset = "synthetic_smoke"
label = "gat"
tune = { "gat.lr_g" = [0.001, 0.01] }
tune_seeds = 2
[[evaluations]]
name = "fgm"
attack = "fgm-l2"
eps = [0.5]
runs = ["base"]
"""


def described(planned: list[Job]) -> list[tuple[str, str, int, int]]:
    """(kind, label or point, the seed index, the training seed) of each job, in order."""
    return [(job.kind, job.point.name if job.point else job.entry.label, job.seed, job.training_seed) for job in planned]


@pytest.fixture
def sweep_file(tmp_path: Path) -> Path:
    path = tmp_path / "seeds.toml"
    path.write_text(SWEEP)
    return path


def test_every_job_in_order_with_its_training_seed(sweep_file: Path) -> None:
    planned = described(jobs(load_sweep(sweep_file)))
    assert planned == [
        ("tune", "lr_g=0.001", 0, 1_000_000), ("tune", "lr_g=0.01", 0, 1_000_000),
        ("tune", "lr_g=0.001", 1, 1_000_001), ("tune", "lr_g=0.01", 1, 1_000_001),
        ("train", "base", 0, 0), ("train", "base2", 0, 7), ("train", "gat", 0, 0), ("eval", "base", 0, 0),
        ("train", "base", 1, 1), ("train", "base2", 1, 8), ("train", "gat", 1, 1), ("eval", "base", 1, 1),
        ("train", "base", 2, 2), ("train", "base2", 2, 9), ("train", "gat", 2, 2), ("eval", "base", 2, 2),
    ]


def test_shards_split_by_seed_and_tuning_seed(sweep_file: Path) -> None:
    sweep = load_sweep(sweep_file)
    first, second = described(jobs(sweep, 0, 2)), described(jobs(sweep, 1, 2))
    assert first == [
        ("tune", "lr_g=0.001", 0, 1_000_000), ("tune", "lr_g=0.01", 0, 1_000_000),
        ("train", "base", 0, 0), ("train", "base2", 0, 7), ("train", "gat", 0, 0), ("eval", "base", 0, 0),
        ("train", "base", 2, 2), ("train", "base2", 2, 9), ("train", "gat", 2, 2), ("eval", "base", 2, 2),
    ]
    assert second == [
        ("tune", "lr_g=0.001", 1, 1_000_001), ("tune", "lr_g=0.01", 1, 1_000_001),
        ("train", "base", 1, 1), ("train", "base2", 1, 8), ("train", "gat", 1, 1), ("eval", "base", 1, 1),
    ]
    three = [described(jobs(sweep, shard, 3)) for shard in range(3)]
    assert [sorted({seed for kind, _, seed, _ in shard if kind != "tune"}) for shard in three] == [[0], [1], [2]]
    assert [len(shard) for shard in three] == [2 + 4, 2 + 4, 4]  # tuning seeds 0 and 1 go to shards 0 and 1


def test_the_offset_moves_tuning_seeds_too(tmp_path: Path) -> None:
    path = tmp_path / "offset.toml"
    path.write_text(SWEEP.replace("tune_seeds = 2", "tune_seeds = 2\nseed_offset = 5"))
    tuned = [job for job in jobs(load_sweep(path)) if job.entry.label.startswith("gat")]
    assert [(job.kind, job.training_seed) for job in tuned] == [
        ("tune", 1_000_005), ("tune", 1_000_005), ("tune", 1_000_006), ("tune", 1_000_006),
        ("train", 5), ("train", 6), ("train", 7),
    ]


class _Stop(Exception):
    """Raised by the stand-in preset loader once it has seen a job's overrides."""


def test_the_runner_trains_each_job_with_its_seed(sweep_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the runner hands the preset loader: `seed=` of the plan, and a tuning point's overrides."""
    import gat_tui.presets

    seen: list[tuple[str, ...]] = []

    def loader(name: str, overrides: list[str]) -> None:
        seen.append(tuple(overrides))
        raise _Stop

    monkeypatch.setattr(gat_tui.presets, "load_named_preset", loader)
    sweep = load_sweep(sweep_file)
    runner = SweepRunner(sweep, tmp_path / "out")
    by_name = {(job.kind, job.point.name if job.point else job.entry.label, job.seed): job for job in runner.jobs}
    for key in (("tune", "lr_g=0.01", 1), ("train", "base2", 2), ("train", "base", 1)):
        state, message = runner.run_job(by_name[key])
        assert (state, message) == ("failed", "_Stop: ")
    assert seen == [
        ("gat.lr_g=0.01", "seed=1000001"),
        ("method=baseline", "seed=9"),
        ("method=baseline", "seed=1"),
    ]


def test_shards_are_read_as_index_over_count() -> None:
    from gat_tui.config import ConfigError
    from gat_tui.sweep.plan import parse_shard

    assert parse_shard("0/4") == (0, 4) and parse_shard("3/4") == (3, 4) and parse_shard("0/1") == (0, 1)
    for text, fragment in (("4/4", "expected 0 <= I < N"), ("-1/4", "expected 0 <= I < N"), ("0/0", "expected 0 <= I < N"),
                           ("2", "expected I/N, e.g. --shard 0/4"), ("a/b", "expected I/N"), ("1/2/3", "expected I/N")):
        with pytest.raises(ConfigError) as raised:
            parse_shard(text)
        assert str(raised.value) == f"--shard {text!r}: {fragment}" or str(raised.value).startswith(f"--shard {text!r}: {fragment}")
