"""`gat-tui export RUN_DIR --robustbench OUT`: the classifier as safetensors and a RobustBench model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import Cli
from safetensors import safe_open
from safetensors.torch import load_file
from tensorboard_events import tiny

from gat_tui.checkpoints import Checkpoint
from gat_tui.runs.folder import RunPaths
from gat_tui.runs.robustbench import RobustBenchExportError, eps_text, export_robustbench
from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer

CARD_FIELDS = {"link", "name", "authors", "additional_data", "number_forward_passes", "dataset", "venue", "architecture",
               "eps", "clean_acc", "reported", "autoattack_acc"}  # RobustBench's model_info cards


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("runs") / "gat"
    assert Trainer(TrainingRequest(tiny(epochs=1, tensorboard=False), folder)).run().status == "finished"
    return folder


def _record(path: Path, run_dir: Path, accuracy: float, n: int, version: str, eps: float = 8 / 255, norm: str = "linf") -> None:
    path.parent.mkdir(exist_ok=True)
    rows = [{"attack": "clean", "eps": 0.0, "accuracy": 0.75, "pert_l2": 0.0, "pert_linf": 0.0, "source": None},
            {"attack": "autoattack", "eps": eps, "accuracy": accuracy, "pert_l2": 0.1, "pert_linf": eps, "source": None,
             "norm": norm, "n": n, "version": version, "stages": []}]
    checkpoint = str(RunPaths(run_dir).best_checkpoint)
    path.write_text(json.dumps({"checkpoint": checkpoint, "split": "test", "n": n, "results": rows}))


def test_card_and_weights_without_then_with_a_recorded_autoattack(run_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    card = export_robustbench(run, tmp_path / "out")
    assert CARD_FIELDS <= set(card) and json.loads((tmp_path / "out/model_card.json").read_text()) == card
    summary = json.loads(RunPaths(run).summary.read_text())
    assert (card["dataset"], card["threat_model"], card["eps"], card["architecture"]) == ("synthetic", "Linf", "8/255", "allconv")
    assert card["clean_acc"] == f"{100 * summary['test_acc_clean']:.2f}" and card["training_method"].startswith("gat: Generative")
    assert card["autoattack_acc"] is None and card["n_test_images"] is None
    assert any(f"gat-tui eval {run} --attack autoattack --norm linf --eps 8/255" in note for note in card["notes"])
    assert card["link"] == str((run / "config.toml").resolve()) and (tmp_path / "out/config.toml").read_text() == (run / "config.toml").read_text()
    weights = load_file(str(tmp_path / "out/model.safetensors"))
    classifier = Checkpoint.open(RunPaths(run).best_checkpoint).tensors
    assert set(weights) == {key.removeprefix("classifier.") for key in classifier if key.startswith("classifier.")}
    assert all(weights[key].equal(classifier[f"classifier.{key}"]) for key in weights)
    with safe_open(str(tmp_path / "out/model.safetensors"), framework="pt") as handle:
        assert json.loads(handle.metadata()["architecture"])["classifier"] == "allconv"

    # recorded evaluations: standard AutoAttack before custom, more images first, the norm and ε asked for only
    _record(run / "evals/a.json", run, 0.40, 500, "custom")
    _record(run / "evals/b.json", run, 0.50, 100, "standard")
    _record(run / "evals/c.json", run, 0.55, 200, "standard")
    _record(run / "evals/d.json", run, 0.10, 900, "standard", eps=0.5, norm="l2")
    (run / "evals/broken.json").write_text("{")
    card = export_robustbench(run, tmp_path / "out2")
    assert (card["autoattack_acc"], card["clean_acc"], card["n_test_images"], card["autoattack_version"]) == ("55.00", "75.00", 200, "standard")
    assert any("broken.json: not a readable evaluation record" in note for note in card["notes"])
    l2 = export_robustbench(run, tmp_path / "out3", "l2")
    assert (l2["eps"], l2["autoattack_acc"], l2["n_test_images"]) == ("0.5", "10.00", 900)


def test_refusals_and_an_interrupted_export_leaves_nothing(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full/x").write_text("")
    for args, message in [
        ((tmp_path / "nothing", tmp_path / "o"), "not a run folder (no config.toml)"),
        ((run_dir, tmp_path / "full"), "already exists and is not an empty folder"),
        ((run_dir, tmp_path / "o", "l1"), "--threat-model 'l1': expected linf or l2"),
    ]:
        with pytest.raises(RobustBenchExportError) as raised:
            export_robustbench(*args)  # type: ignore[arg-type]
        assert message in str(raised.value)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", broken)
    with pytest.raises(OSError):
        export_robustbench(run_dir, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # no OUT, no staging folder
    assert (eps_text("linf", 2 / 255), eps_text("linf", 0.1), eps_text("l2", 0.5)) == ("2/255", "0.1", "0.5")


@pytest.mark.slow
def test_eval_records_autoattack_in_the_run_and_export_reads_it(run_dir: Path, tmp_path: Path, cli: Cli) -> None:
    pytest.importorskip("pyautoattack", reason='pyautoattack is not installed: pip install -e ".[autoattack]"')
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    evaluated = cli("eval", str(run), "--attack", "autoattack", "--version", "custom", "--aa-attacks", "apgd-ce",
                    "--eps", "8/255", "--limit", "4", "--json", str(tmp_path / "aa.json"), env={"COLUMNS": "300"})
    assert evaluated.returncode == 0, evaluated.stderr
    recorded = list((run / "evals").glob("*-best-autoattack.json"))
    assert len(recorded) == 1 and f"recorded in {recorded[0]}" in evaluated.stdout
    rows = json.loads((tmp_path / "aa.json").read_text())["results"]
    assert json.loads(recorded[0].read_text())["results"] == rows

    exported = cli("export", str(run), "--robustbench", str(tmp_path / "rb"))
    assert exported.returncode == 0, exported.stderr
    card = json.loads((tmp_path / "rb/model_card.json").read_text())
    assert (card["autoattack_acc"], card["n_test_images"]) == (f"{100 * rows[1]['accuracy']:.2f}", 4)
    assert "version custom, not standard" in exported.stdout
    again = cli("export", str(run), "--robustbench", str(tmp_path / "rb"))
    assert again.returncode == 2 and "already exists and is not an empty folder" in again.stderr
    both = cli("export", str(run), "--robustbench", str(tmp_path / "x"), "--tensorboard", str(tmp_path / "y"))
    assert both.returncode == 2 and "give one of --tensorboard DIR and --robustbench DIR" in both.stderr
