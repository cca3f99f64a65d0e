"""AutoAttack's figures, stage accuracies, progress and state file, counted by hand on a scripted cascade.

`ScriptedCascade` (two_pixel_support.py) stands in for pyautoattack with perturbations set in
advance, so that every sum `run_autoattack` keeps, every row `evaluate_attacks` makes of it and
every byte of the state file can be checked against a hand computation, in milliseconds.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from two_pixel_support import ALWAYS_ONE, IMAGES, LABELS, TARGET_WEIGHT, ScriptedCascade, linear

from gat_tui.attacks import FGSM, AutoAttack
from gat_tui.data.splits import data_fingerprint
from gat_tui.robustness.evaluate import StageResult, evaluate_attacks, run_autoattack
from gat_tui.robustness.plan import AttackPlan
from gat_tui.robustness.resume import FORMAT, ResumeSpec, save_state, state_path

EPS = 0.06
# the whole evaluation (a, b, c, d): the target's accuracy after the last stage, mean ‖δ‖₂, mean ‖δ‖∞, per stage
WHOLE = (0.25, 0.09 * math.sqrt(2), 0.09)
STAGES = (("apgd-ce", 0.5), ("apgd-t", 0.25))
# the sums after the first batch of three (a, b, c): b correct at the end; ‖δ‖ 0.06, 0.06, 0.12 per pixel;
# a and b correct after apgd-ce, b after apgd-t
FIRST_BATCH_SUMS = [1.0, 0.24 * math.sqrt(2), 0.24, 2.0, 1.0]
IDENTITY = {"target": "net.safetensors", "split": "test", "limit": 0}


def run(
    attack: AutoAttack, batch_size: int = 3, resume: ResumeSpec | None = None, stop_at_batch: int = 0,
    batches: list[int] | None = None, stages: list[str] | None = None,
) -> tuple[float, float, float, tuple[StageResult, ...]]:
    seen = [] if batches is None else batches

    def on_batch(done: int) -> None:
        seen.append(done)
        if len(seen) == stop_at_batch:
            raise KeyboardInterrupt

    on_stage = stages.append if stages is not None else None
    return run_autoattack(attack, EPS, linear(TARGET_WEIGHT), linear(ALWAYS_ONE), IMAGES, LABELS, batch_size, on_batch, on_stage, resume)


def key() -> dict[str, object]:
    return IDENTITY | {
        "attack": "autoattack", "version": "custom", "stages": ["apgd-ce", "apgd-t"], "norm": "linf", "eps": EPS,
        "seed": 0, "images": 4, "batch_size": 3, "data": data_fingerprint(IMAGES, LABELS),
    }


def test_the_figures_and_stage_accuracies_by_hand_over_unequal_batches() -> None:
    attack = ScriptedCascade()
    batches: list[int] = []
    stages: list[str] = []
    accuracy, l2, linf, stage_results = run(attack, batch_size=3, batches=batches, stages=stages)
    # the target judges (ALWAYS_ONE, the source, would give 1/2 at every stage); means over the 4 images, not per batch
    assert (accuracy, l2, linf) == pytest.approx(WHOLE, abs=1e-6)
    assert [(stage.attack, stage.accuracy) for stage in stage_results] == [(name, pytest.approx(value)) for name, value in STAGES]
    assert batches == [3, 1] and stages == ["apgd-ce", "apgd-t", "apgd-ce", "apgd-t"]
    # the cascade attacks the source's gradients (here: the source itself), batch by batch
    assert [(model[1].weight.tolist(), count) for model, count in attack.calls] == [(ALWAYS_ONE, 3), (ALWAYS_ONE, 1)]


def test_an_interrupted_evaluation_saves_its_sums_and_resumes_at_the_next_batch(tmp_path: Path) -> None:
    notices: list[str] = []
    spec = ResumeSpec(tmp_path, IDENTITY, notices.append)
    with pytest.raises(KeyboardInterrupt):
        run(ScriptedCascade(), resume=spec, stop_at_batch=1)
    path = state_path(tmp_path, key())
    assert sorted(tmp_path.iterdir()) == [path]
    record = json.loads(path.read_text())
    assert (record["format"], record["key"], record["start"]) == (FORMAT, key(), 3)
    assert record["sums"] == pytest.approx(FIRST_BATCH_SUMS, abs=1e-6)
    assert notices == []

    resumed = ScriptedCascade()
    batches: list[int] = []
    accuracy, l2, linf, stage_results = run(resumed, resume=spec, batches=batches)
    assert (accuracy, l2, linf) == pytest.approx(WHOLE, abs=1e-6)
    assert [stage.accuracy for stage in stage_results] == pytest.approx([value for _, value in STAGES])
    assert [count for _, count in resumed.calls] == [1]  # only d is attacked again
    assert batches == [3, 1]  # the progress bar starts at the images already done
    assert notices == [f"resuming AutoAttack from image 3 of 4 ({path})"]
    assert list(tmp_path.iterdir()) == []  # completed: removed, so a later evaluation starts over


def test_a_state_saved_after_the_first_image_resumes_there(tmp_path: Path) -> None:
    spec = ResumeSpec(tmp_path, IDENTITY | {"batch": 1})
    with pytest.raises(KeyboardInterrupt):
        run(ScriptedCascade(), batch_size=1, resume=spec, stop_at_batch=1)
    resumed = ScriptedCascade()
    figures = run(resumed, batch_size=1, resume=spec)
    assert figures[:3] == pytest.approx(WHOLE, abs=1e-6)
    assert [count for _, count in resumed.calls] == [1, 1, 1]  # b, c and d: a was done


def test_a_state_file_that_is_not_json_is_ignored_with_a_notice(tmp_path: Path) -> None:
    path = state_path(tmp_path, key())
    path.write_text("{not json")
    notices: list[str] = []
    figures = run(ScriptedCascade(), resume=ResumeSpec(tmp_path, IDENTITY, notices.append))
    assert figures[:3] == pytest.approx(WHOLE, abs=1e-6)
    assert len(notices) == 1 and notices[0].startswith(f"ignoring AutoAttack state file {path}: unreadable (")
    assert notices[0].endswith("); starting over")


def test_an_evaluation_of_one_batch_saves_nothing_and_ends_cleanly(tmp_path: Path) -> None:
    figures = run(ScriptedCascade(), batch_size=4, resume=ResumeSpec(tmp_path, IDENTITY))
    assert figures[:3] == pytest.approx(WHOLE, abs=1e-6) and list(tmp_path.iterdir()) == []


def test_no_state_is_saved_after_the_last_batch(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(ScriptedCascade(), batch_size=2, resume=ResumeSpec(tmp_path, IDENTITY), stop_at_batch=2)
    (path,) = tmp_path.iterdir()
    assert json.loads(path.read_text())["start"] == 2  # the first batch's state: the last one was never saved


@pytest.mark.parametrize("start", [0, 4, 5])
def test_a_saved_start_outside_the_images_is_not_taken_up(tmp_path: Path, start: int) -> None:
    notices: list[str] = []
    save_state(state_path(tmp_path, key()), key(), start, [4.0, 9.0, 9.0, 4.0, 4.0])  # sums that are not these images'
    attack = ScriptedCascade()
    accuracy, l2, linf, _ = run(attack, resume=ResumeSpec(tmp_path, IDENTITY, notices.append))
    assert (accuracy, l2, linf) == pytest.approx(WHOLE, abs=1e-6)
    assert [count for _, count in attack.calls] == [3, 1] and notices == []


def test_a_state_file_that_cannot_be_written_is_said_once_and_the_figures_stay_right(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    notices: list[str] = []
    figures = run(ScriptedCascade(), batch_size=1, resume=ResumeSpec(tmp_path / "a-file" / "evals", IDENTITY, notices.append))
    assert figures[:3] == pytest.approx(WHOLE, abs=1e-6)
    assert len(notices) == 1
    assert re.fullmatch(rf"AutoAttack cannot be resumed: cannot write {re.escape(str(tmp_path / 'a-file'))}\S*: Not a directory", notices[0]), notices


def test_without_resume_no_file_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run(ScriptedCascade(), stop_at_batch=1)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_attacks_makes_autoattack_s_row_and_reports_progress_per_batch_and_stage() -> None:
    seen: list[tuple[str, int, int]] = []
    plans = [AttackPlan(ScriptedCascade(), (EPS,)), AttackPlan(FGSM(), (0.0,))]  # and an attack after it
    clean, row, fgsm = evaluate_attacks(
        linear(TARGET_WEIGHT), linear(ALWAYS_ONE), "source.safetensors", IMAGES, LABELS, plans, 3,
        progress=lambda what, done, total: seen.append((what, done, total)),
    )
    assert (clean.attack, clean.accuracy, clean.source) == ("clean", 0.75, "source.safetensors")
    assert (row.attack, row.eps, row.source, row.matched_to, row.norm, row.n, row.version) == (
        "autoattack", EPS, "source.safetensors", None, "linf", 4, "custom",
    )
    assert (row.accuracy, row.pert_l2, row.pert_linf) == pytest.approx(WHOLE, abs=1e-6)
    assert row.stages is not None and [(stage.attack, stage.accuracy) for stage in row.stages] == [
        (name, pytest.approx(value)) for name, value in STAGES
    ]
    label = "autoattack ε=0.06"
    assert seen == [
        (f"{label}, apgd-ce done", 0, 4), (f"{label}, apgd-t done", 0, 4), (label, 3, 4),
        (f"{label}, apgd-ce done", 3, 4), (f"{label}, apgd-t done", 3, 4), (label, 4, 4), ("fgsm ε=0", 3, 4), ("fgsm ε=0", 4, 4),
    ]
    assert (fgsm.attack, fgsm.accuracy, fgsm.norm, fgsm.n, fgsm.stages) == ("fgsm", 0.75, None, None, None)
