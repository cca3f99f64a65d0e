"""`gat-tui export RUN --robustbench OUT`, field by field and by hand: ε as RobustBench writes it,
which evaluation records are the run's, each card field against the records and the summary, the
notes a user reads, the files written (weights without their prefix, their metadata) and each
refusal with the folder named."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import tiny_gat_config
from safetensors import safe_open
from torch import nn

from gat_tui._version import __version__
from gat_tui.architectures import Architecture
from gat_tui.checkpoints import Checkpoint, NetworkShape, save_checkpoint
from gat_tui.config import config_to_toml
from gat_tui.runs.folder import RunPaths
from gat_tui.runs.robustbench import RobustBenchExportError, _records, build_card, eps_text, export_robustbench, find_autoattack

EPS = 8 / 255
CONFIG = tiny_gat_config("tiny", epochs=1, panel_size=0, data={"train_size": 32, "val_size": 16, "test_size": 16})


@pytest.mark.parametrize(
    ("threat", "eps", "shown"),
    [
        ("linf", 8 / 255, "8/255"),
        ("linf", 1 / 255, "1/255"),
        ("linf", 16 / 255, "16/255"),
        ("linf", 8 / 255 + 1e-9, "8/255"),  # within a millionth of a 255th
        ("linf", 0.03, "0.03"),
        ("linf", 0.0, "0"),  # no 0/255
        ("linf", 1.0, "255/255"),
        ("l2", 0.5, "0.5"),
        ("l2", 8 / 255, "0.0313725"),  # 255ths are L-inf's unit only
    ],
)
def test_eps_is_written_as_robustbench_writes_it(threat: str, eps: float, shown: str) -> None:
    assert eps_text(threat, eps) == shown


def aa_record(path: Path, checkpoint: Path | str, *, clean: object = 0.8, robust: object = 0.5, n: int = 1000,
              version: str = "standard", eps: float = EPS) -> Path:
    rows = [{"attack": "clean", "eps": 0.0, "accuracy": clean},
            {"attack": "autoattack", "eps": eps, "accuracy": robust, "norm": "linf", "n": n, "version": version}]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"checkpoint": str(checkpoint), "split": "test", "results": rows}), encoding="utf-8")
    return path


def test_a_runs_records_are_its_evals_and_its_sweeps_only_in_a_sweep(tmp_path: Path) -> None:
    run = RunPaths(tmp_path / "runs" / "gat" / "seed-1")
    own = [aa_record(run.evals / name, "x") for name in ("b.json", "a.json")]
    aa_record(run.evals / ".autoattack-1234.json", "x")  # an interrupted evaluation's state
    (run.evals / "notes.txt").write_text("not a record")
    sweep_record = aa_record(tmp_path / "evals" / "aa" / "gat" / "seed-1.json", "x")
    aa_record(tmp_path / "evals" / "aa" / "gat" / "seed-2.json", "x")
    aa_record(tmp_path / "evals" / "aa" / "base" / "seed-1.json", "x")
    # no sweep.toml: a folder that happens to be called runs is no sweep
    assert _records(run) == sorted(own)
    (tmp_path / "sweep.toml").write_text("")
    assert _records(run) == [*sorted(own), sweep_record]
    assert _records(RunPaths(tmp_path / "runs" / "gat" / "seed-9")) == []  # no evals of its own, none in the sweep


def test_standard_autoattack_is_chosen_first_then_the_most_images_then_the_newest(tmp_path: Path) -> None:
    run = RunPaths(tmp_path / "run")
    best = run.best_checkpoint
    custom = aa_record(run.evals / "a.json", best, robust=0.1, n=9000, version="rand")
    assert find_autoattack(run, "linf", EPS)[0] is not None and find_autoattack(run, "linf", EPS)[0].path == custom  # type: ignore[union-attr]
    small = aa_record(run.evals / "b.json", best, robust=0.2, n=100)
    assert find_autoattack(run, "linf", EPS)[0].path == small  # type: ignore[union-attr]
    large = aa_record(run.evals / "c.json", best, robust=0.3, n=1000)
    older = aa_record(run.evals / "d.json", best, robust=0.4, n=1000)
    os.utime(older, (1000, 1000))
    found, problems = find_autoattack(run, "linf", EPS)
    assert problems == [] and found is not None
    assert (found.path, found.accuracy, found.clean, found.n, found.version) == (large, 0.3, 0.8, 1000, "standard")
    os.utime(large, (500, 500))
    assert find_autoattack(run, "linf", EPS)[0].path == older  # type: ignore[union-attr]
    # ε compared to a millionth, relative
    assert find_autoattack(run, "linf", EPS * (1 + 1e-8))[0] is not None
    assert find_autoattack(run, "linf", EPS * 1.001)[0] is None


def test_a_record_that_cannot_be_read_is_skipped_with_a_note_naming_it(tmp_path: Path) -> None:
    run = RunPaths(tmp_path / "run")
    best = run.best_checkpoint
    good = aa_record(run.evals / "z-good.json", best, robust=0.25)
    cases = {
        "a-clean.json": ({"clean": 1.5}, "ValueError: its clean accuracy 1.5 is not a fraction in [0, 1]"),
        "b-robust.json": ({"robust": -0.1}, "ValueError: its autoattack accuracy -0.1 is not a fraction in [0, 1]"),
        "c-text.json": ({"robust": "0.5"}, "ValueError: its autoattack accuracy '0.5' is not a fraction in [0, 1]"),
    }
    for name, (figures, _) in cases.items():
        aa_record(run.evals / name, best, **figures)  # type: ignore[arg-type]
    (run.evals / "d-broken.json").write_text("{", encoding="utf-8")
    (run.evals / "e-no-results.json").write_text(json.dumps({"checkpoint": str(best), "split": "test"}), encoding="utf-8")
    no_clean = {"checkpoint": str(best), "split": "test", "results": [{"attack": "fgsm", "eps": EPS, "accuracy": 0.5}]}
    (run.evals / "f-no-clean.json").write_text(json.dumps(no_clean), encoding="utf-8")
    (run.evals / "g-no-checkpoint.json").write_text(json.dumps({"split": "test", "results": []}), encoding="utf-8")
    found, problems = find_autoattack(run, "linf", EPS)
    assert found is not None and found.path == good and found.accuracy == 0.25
    assert len(problems) == 7
    for problem, (name, (_, fault)) in zip(problems, cases.items(), strict=False):
        assert problem == f"{run.evals / name}: not a readable evaluation record ({fault}); skipped"
    assert problems[3].startswith(f"{run.evals / 'd-broken.json'}: not a readable evaluation record (JSONDecodeError: ")
    assert problems[4] == f"{run.evals / 'e-no-results.json'}: not a readable evaluation record (KeyError: 'results'); skipped"
    assert problems[5] == f"{run.evals / 'f-no-clean.json'}: not a readable evaluation record (StopIteration: ); skipped"
    assert problems[6] == f"{run.evals / 'g-no-checkpoint.json'}: not a readable evaluation record (KeyError: 'checkpoint'); skipped"
    good.unlink()
    assert find_autoattack(run, "linf", EPS)[0] is None


class FakeCheckpoint:
    """What build_card reads of a checkpoint: its config and its architecture."""

    def __init__(self, architecture: Architecture, method: str = "gat") -> None:
        self.architecture = architecture
        self._config = replace(CONFIG, method=method)

    def config(self) -> object:
        return self._config


def a_run(tmp_path: Path, summary: dict[str, object] | None = None) -> Path:
    run = tmp_path / "gat-run"
    run.mkdir()
    (run / "config.toml").write_text(config_to_toml(CONFIG), encoding="utf-8")
    if summary is not None:
        (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return run


def test_the_card_of_a_run_with_a_recorded_autoattack_takes_both_figures_from_that_record(tmp_path: Path) -> None:
    run = a_run(tmp_path, {"status": "finished", "test_acc_clean": 0.99})  # not on the AutoAttack record's images
    record = aa_record(RunPaths(run).evals / "aa.json", RunPaths(run).best_checkpoint, clean=0.8125, robust=0.3125, n=512)
    architecture = Architecture(classifier="allconv", normalize_mean=(0.5, 0.25), normalize_std=(0.125, 0.0625))
    card = build_card(run, FakeCheckpoint(architecture), "linf", EPS)  # type: ignore[arg-type]
    assert card == {
        "link": str((run / "config.toml").resolve()),
        "name": "gat-run",
        "authors": "",
        "additional_data": False,
        "number_forward_passes": 1,
        "dataset": "synthetic",
        "venue": "",
        "architecture": "allconv (normalised inside: mean [0.5, 0.25], std [0.125, 0.0625])",
        "threat_model": "Linf",
        "eps": "8/255",
        "clean_acc": "81.25",
        "reported": None,
        "autoattack_acc": "31.25",
        "autoattack_version": "standard",
        "n_test_images": 512,
        "training_method": "gat: Generative Adversarial Trainer (Lee, Han, Lee 2017)",
        "config": "config.toml",
        "weights": "model.safetensors",
        "gat_tui_version": __version__,
        "notes": [f"clean_acc and autoattack_acc on the same 512 test images, from {record}"],
    }


def test_a_non_standard_autoattack_is_noted(tmp_path: Path) -> None:
    run = a_run(tmp_path)
    aa_record(RunPaths(run).evals / "aa.json", RunPaths(run).best_checkpoint, n=100, version="plus")
    card = build_card(run, FakeCheckpoint(Architecture(classifier="allconv")), "linf", EPS)  # type: ignore[arg-type]
    assert card["architecture"] == "allconv" and card["autoattack_version"] == "plus"
    assert card["notes"][1] == "AutoAttack version plus, not standard: RobustBench asks for standard"


def test_the_card_without_a_record_takes_the_summarys_clean_accuracy_and_says_how_to_fill_the_rest(tmp_path: Path) -> None:
    run = a_run(tmp_path, {"status": "finished", "test_acc_clean": 0.875})
    card = build_card(run, FakeCheckpoint(Architecture(classifier="allconv"), method="fg_l2"), "l2", 0.5)  # type: ignore[arg-type]
    assert (card["clean_acc"], card["autoattack_acc"], card["autoattack_version"], card["n_test_images"]) == ("87.50", None, None, None)
    assert (card["threat_model"], card["eps"]) == ("L2", "0.5")
    assert card["training_method"] == "fg_l2: adversarial training with fast-gradient L2 perturbations"
    assert card["notes"] == [
        f"no AutoAttack figure recorded for this run's best checkpoint at L2 ε = 0.5: run `gat-tui eval {run} --attack autoattack "
        "--norm l2 --eps 0.5 --limit 1000` (or without --limit for RobustBench's 10000 images), then export again",
        "clean_acc is the run's test accuracy on its whole test split (summary.json)",
    ]


def test_a_clean_accuracy_that_is_not_one_is_left_out_with_a_note(tmp_path: Path) -> None:
    run = a_run(tmp_path, {"status": "finished", "test_acc_clean": 87.5})
    card = build_card(run, FakeCheckpoint(Architecture(classifier="allconv"), method="custom"), "linf", EPS)  # type: ignore[arg-type]
    assert card["clean_acc"] is None and card["training_method"] == "custom: custom"
    assert card["notes"][0] == f"{run / 'summary.json'}: test_acc_clean = 87.5 is not an accuracy (a fraction in [0, 1]); left out"
    assert card["notes"][1].startswith("no AutoAttack figure recorded for this run's best checkpoint at Linf ε = 8/255: ")
    assert len(card["notes"]) == 2  # no clean_acc, so no note on where it came from
    (run / "summary.json").unlink()  # no summary: no figure, nothing to warn about
    card = build_card(run, FakeCheckpoint(Architecture(classifier="allconv")), "linf", EPS)  # type: ignore[arg-type]
    assert card["clean_acc"] is None and len(card["notes"]) == 1


# -- the export's files and refusals ---------------------------------------------------------------


def trained_run(tmp_path: Path) -> Path:
    run = a_run(tmp_path, {"status": "finished", "test_acc_clean": 0.5})
    torch.manual_seed(0)
    classifier, generator = nn.Linear(2, 3), nn.Linear(1, 1)
    save_checkpoint(RunPaths(run).best_checkpoint, {"classifier": classifier, "generator": generator},
                    NetworkShape(3, 1, 8, 8, 0.0), config_to_toml(CONFIG), epoch=1, step=2)
    return run


def test_the_export_writes_the_classifiers_weights_the_card_and_the_config(tmp_path: Path) -> None:
    run = trained_run(tmp_path)
    out = tmp_path / "deep" / "er" / "out"  # parents made, more than one level
    card = export_robustbench(run, out)
    assert sorted(path.name for path in out.iterdir()) == ["config.toml", "model.safetensors", "model_card.json"]
    assert json.loads((out / "model_card.json").read_text(encoding="utf-8")) == card
    assert card["eps"] == "8/255" and card["threat_model"] == "Linf"  # the defaults: L-inf at 8/255
    assert "ε" in (out / "model_card.json").read_text(encoding="utf-8")  # written as text, not \u03b5
    assert (out / "config.toml").read_bytes() == (run / "config.toml").read_bytes()
    checkpoint = Checkpoint.open(RunPaths(run).best_checkpoint)
    with safe_open(str(out / "model.safetensors"), framework="pt") as weights:
        assert sorted(weights.keys()) == ["bias", "weight"]  # the classifier's, without its prefix; no generator
        torch.testing.assert_close(weights.get_tensor("weight"), checkpoint.tensors["classifier.weight"])
        assert weights.metadata() == {
            "architecture": checkpoint.architecture.to_json(),
            "num_classes": "3",
            "image_shape": "[1, 8, 8]",
            "dataset": "synthetic",
            "gat_tui_version": __version__,
        }
    umask = os.umask(0)
    os.umask(umask)
    assert (out.stat().st_mode & 0o777) == 0o777 & ~umask  # as a folder made by mkdir
    assert [path.name for path in out.parent.iterdir()] == ["out"]  # no staging folder left
    # written for people to read and diff: two-space indents, one key a line
    assert (out / "model_card.json").read_text(encoding="utf-8") == json.dumps(card, indent=2, ensure_ascii=False) + "\n"


def test_the_export_takes_the_threat_model_and_eps_asked_and_an_empty_folder(tmp_path: Path) -> None:
    run = trained_run(tmp_path)
    (tmp_path / "out").mkdir()
    card = export_robustbench(run, tmp_path / "out", threat="l2", eps=0.25)
    assert (card["threat_model"], card["eps"]) == ("L2", "0.25")
    card = export_robustbench(run, tmp_path / "out2", threat="l2")
    assert card["eps"] == "0.5"


def test_a_killed_exports_staging_folder_is_removed_but_not_anything_else(tmp_path: Path) -> None:
    run = trained_run(tmp_path)
    stale = tmp_path / ".out.abc"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    (stale / "model_card.json").write_text("{")
    (stale / "config.toml").write_text("")  # killed after its last file, before the rename: all three
    theirs = tmp_path / ".out.mine"  # holds a file an export never writes
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep")
    other = tmp_path / ".other.abc"  # another export's
    other.mkdir()
    (tmp_path / ".out.file").write_text("a file")
    (tmp_path / ".out.link").symlink_to(other)
    export_robustbench(run, tmp_path / "out")
    assert not stale.exists()
    assert theirs.is_dir() and other.is_dir() and (tmp_path / ".out.file").is_file() and (tmp_path / ".out.link").is_symlink()


def test_the_files_are_staged_in_a_hidden_folder_beside_out_named_after_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # beside OUT, so that the rename is on one file system; hidden and named .OUT.*, so that a killed
    # export's leftovers are the ones the next export of OUT finds and removes
    run = trained_run(tmp_path)
    staged_in: list[Path] = []
    copy = shutil.copyfile

    def recording_copy(source: Path, target: Path) -> object:
        staged_in.append(Path(target).parent)
        return copy(source, target)

    monkeypatch.setattr(shutil, "copyfile", recording_copy)
    export_robustbench(run, tmp_path / "out")
    assert len(staged_in) == 1
    assert staged_in[0].parent == tmp_path and staged_in[0].name.startswith(".out.")


def test_an_export_that_fails_midway_leaves_neither_out_nor_its_staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = trained_run(tmp_path)
    (tmp_path / "exports").mkdir()

    def full_disk(source: Path, target: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", full_disk)
    with pytest.raises(OSError, match="No space left"):
        export_robustbench(run, tmp_path / "exports" / "out")
    assert list((tmp_path / "exports").iterdir()) == []


def test_staging_that_cannot_be_removed_neither_stops_an_export_nor_hides_its_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # another user's killed export on a shared disk: its staging folder cannot be removed. Removal is a
    # courtesy: this export goes on; and when this export fails, its own error is the one reported
    run = trained_run(tmp_path)
    stale = tmp_path / ".out.abc"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")

    def not_yours(path: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "rmdir", not_yours)
    export_robustbench(run, tmp_path / "out")
    assert (tmp_path / "out" / "model_card.json").is_file()

    def full_disk(source: Path, target: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", full_disk)
    with pytest.raises(OSError, match="No space left"):
        export_robustbench(run, tmp_path / "out2")


def test_each_refusal_names_what_is_wrong(tmp_path: Path) -> None:
    run = trained_run(tmp_path)
    with pytest.raises(RobustBenchExportError) as error:
        export_robustbench(run, tmp_path / "out", threat="l1")
    assert str(error.value) == "--threat-model 'l1': expected linf or l2"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "full", tmp_path / "file"):
        with pytest.raises(RobustBenchExportError) as error:
            export_robustbench(run, out)
        assert str(error.value) == f"--robustbench {out}: already exists and is not an empty folder; choose a new one"
    with pytest.raises(RobustBenchExportError) as error:
        export_robustbench(tmp_path / "missing", tmp_path / "out")
    assert str(error.value) == f"{tmp_path / 'missing'}: not a run folder (no config.toml)"
    no_config = tmp_path / "no-config"
    no_config.mkdir()
    with pytest.raises(RobustBenchExportError, match="not a run folder"):
        export_robustbench(no_config, tmp_path / "out")
    RunPaths(run).best_checkpoint.unlink()
    with pytest.raises(RobustBenchExportError) as error:
        export_robustbench(run, tmp_path / "out")
    assert str(error.value) == f"{run}: no checkpoints/best.safetensors to export (has it trained an epoch?)"
    RunPaths(run).best_checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(RobustBenchExportError, match=r"best\.safetensors"):
        export_robustbench(run, tmp_path / "out")
    assert not (tmp_path / "out").exists()
