"""Which evaluation record a RobustBench card's figures come from, by hand: only the best checkpoint's,
on the test split, at the threat model and ε asked for; standard AutoAttack first, then the most
images; the clean accuracy of that same record. Records are written here, the run is a sweep's."""

from __future__ import annotations

import json
from pathlib import Path

from gat_tui.runs.folder import RunPaths
from gat_tui.runs.robustbench import _percent, eps_text, find_autoattack

EPS = 8 / 255


def record(path: Path, checkpoint: str, *, clean: float, robust: float, n: int, version: str = "standard",
           split: str = "test", norm: str = "linf", eps: float = EPS) -> None:
    rows = [{"attack": "clean", "eps": 0.0, "accuracy": clean, "pert_l2": 0.0},
            {"attack": "fgsm", "eps": eps, "accuracy": 0.01, "pert_l2": 0.1},  # not AutoAttack: never the figure
            {"attack": "autoattack", "eps": eps, "accuracy": robust, "pert_l2": 0.1, "norm": norm, "n": n, "version": version}]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"checkpoint": checkpoint, "split": split, "n": n, "results": rows}))


def test_the_card_s_record_is_the_best_checkpoint_s_on_the_test_split(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    (sweep / "sweep.toml").parent.mkdir()
    (sweep / "sweep.toml").write_text("")
    run = RunPaths(sweep / "runs/gat/seed-1")
    best, last = str(run.best_checkpoint), str(run.last_checkpoint)
    record(run.evals / "a-last.json", last, clean=0.9, robust=0.8, n=5000)  # the last checkpoint: not the exported one
    record(run.evals / "b-val.json", best, clean=0.9, robust=0.7, n=5000, split="val")
    record(run.evals / "c-l2.json", best, clean=0.9, robust=0.6, n=5000, norm="l2")
    record(run.evals / "d-eps.json", best, clean=0.9, robust=0.5, n=5000, eps=4 / 255)
    record(run.evals / "e-custom.json", best, clean=0.9, robust=0.4, n=5000, version="custom")
    record(run.evals / "f-small.json", best, clean=0.81, robust=0.33, n=100)
    record(sweep / "evals/aa/gat/seed-1.json", best, clean=0.8, robust=0.3125, n=1000)  # the sweep's own record: chosen
    record(sweep / "evals/aa/gat/seed-0.json", best, clean=0.99, robust=0.99, n=9000)  # another seed's run
    record(sweep / "evals/aa/base/seed-1.json", best, clean=0.99, robust=0.99, n=9000)  # another run
    found, problems = find_autoattack(run, "linf", EPS)
    assert problems == [] and found is not None
    assert (found.path, found.accuracy, found.clean, found.n, found.version) == (sweep / "evals/aa/gat/seed-1.json", 0.3125, 0.8, 1000, "standard")
    assert (_percent(found.accuracy), _percent(found.clean), eps_text("linf", EPS)) == ("31.25", "80.00", "8/255")
    # only custom at 8/255 left: it is taken, as the card then notes
    (sweep / "evals/aa/gat/seed-1.json").unlink()
    (run.evals / "f-small.json").unlink()
    found, _ = find_autoattack(run, "linf", EPS)
    assert found is not None and (found.accuracy, found.version, found.n) == (0.4, "custom", 5000)
    l2, _ = find_autoattack(run, "l2", EPS)
    assert l2 is not None and l2.accuracy == 0.6
    assert find_autoattack(run, "linf", 2 / 255)[0] is None
