"""A run's own files never overwritten or made unusable (the second fault pass, issue 25 part 1).

Each test failed on the code before these fixes: `--out` took over another tool's folder,
another run's checkpoint was resumed into a run, a control character made a run's config
unreadable, a run that failed before its first checkpoint could neither resume nor restart,
a closed stdout failed the run, resuming a finished run rewrote it, and a hand-edited
training state was accepted.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import SCRIPT, Cli

from gat_tui.checkpoints import Checkpoint
from gat_tui.config import DataConfig, EvalConfig, GatConfig, RunConfig, TrainConfig, config_to_toml, load_preset
from gat_tui.console.headless import HeadlessPrinter, output_console
from gat_tui.events import LogMessage, RunStarted
from gat_tui.runs.folder import RunFolderError, check_new_run_dir
from gat_tui.runs.identity import MARKER_NAME
from gat_tui.toml_schema import parse_toml, toml_value
from gat_tui.training.request import TrainingRequest
from gat_tui.training.resume import ResumeError, resume_request
from gat_tui.training.trainer import Trainer


def tiny(epochs: int = 1, num_classes: int = 3, description: str = "") -> RunConfig:
    return RunConfig(
        name="tiny",
        description=description,
        method="gat",
        device="cpu",
        data=DataConfig(
            dataset="synthetic", image_size=8, num_classes=num_classes, train_size=64, val_size=16, test_size=16, batch_size=16
        ),
        train=TrainConfig(epochs=epochs, log_every=2),
        gat=GatConfig(lr_g=1e-3),
        eval=EvalConfig(panel_size=0),
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` (but the lock) and its bytes."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Finished runs: `a` (3 classes), `a2` (the same config, another run), `b` (4 classes)."""
    root = tmp_path_factory.mktemp("runs")
    for name, config in (("a", tiny()), ("a2", tiny()), ("b", tiny(num_classes=4))):
        assert Trainer(TrainingRequest(config, root / name)).run().status == "finished"
    return root


def foreign_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "config.toml").write_text('[tool]\nname = "x"\n')
    (folder / "metrics.jsonl").write_text('{"loss": 1}\n')
    (folder / "data.csv").write_text("d\n")
    return folder


# -- another tool's folder ---------------------------------------------------------------------


def test_a_folder_without_the_marker_is_never_taken_over(tmp_path: Path) -> None:
    folder = foreign_folder(tmp_path)
    before = snapshot(folder)
    with pytest.raises(RunFolderError, match=f"it is not a gat-tui run folder \\(no {MARKER_NAME}\\)"):
        check_new_run_dir(folder)
    finished = Trainer(TrainingRequest(tiny(), folder)).run()  # the dashboard's and the sweeps' way in
    assert finished.status == "failed" and "not a gat-tui run folder" in finished.message
    assert snapshot(folder) == before


def test_a_new_run_marks_its_folder(runs: Path) -> None:
    marker = json.loads((runs / "a" / MARKER_NAME).read_text())
    assert marker["format"] == "gat-tui-run-v1" and len(marker["run_id"]) == 32
    assert Checkpoint.open(runs / "a/checkpoints/last.safetensors").metadata["run_id"] == marker["run_id"]
    assert Checkpoint.open(runs / "a/checkpoints/best.safetensors").metadata["run_id"] == marker["run_id"]


@pytest.mark.slow
def test_run_out_refuses_another_tools_folder(tmp_path: Path, cli: Cli, presets_dir: Path) -> None:
    folder = foreign_folder(tmp_path)
    before = snapshot(folder)
    result = cli("run", str(presets_dir / "synthetic_smoke.toml"), "--headless", "--epochs", "1", "--out", str(folder))
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(folder) in result.stderr and "not a gat-tui run folder" in result.stderr and "config.toml" in result.stderr
    assert snapshot(folder) == before


# -- another run's checkpoint ------------------------------------------------------------------


def test_another_runs_checkpoint_is_refused_before_anything_is_written(runs: Path, tmp_path: Path) -> None:
    run = tmp_path / "a"
    shutil.copytree(runs / "a", run)
    other = run / "checkpoints/other.safetensors"
    shutil.copy(runs / "b/checkpoints/last.safetensors", other)
    before = snapshot(run)
    with pytest.raises(ResumeError) as raised:
        resume_request(other, ["train.epochs=3"])
    message = str(raised.value)
    assert str(other) in message and f"not a checkpoint of the run in {run}" in message
    assert "data.num_classes = 4 (the folder's run has 3)" in message
    # the engine refuses it too, whoever asks (the dashboard, a sweep, the API)
    b_config = Checkpoint.open(other).config(["train.epochs=3"])
    finished = Trainer(TrainingRequest(b_config, run, None, resume_from=other)).run()
    assert finished.status == "failed" and "not a checkpoint of the run in" in finished.message
    assert snapshot(run) == before


def test_a_swapped_last_checkpoint_is_refused(runs: Path, tmp_path: Path) -> None:
    run = tmp_path / "a"
    shutil.copytree(runs / "a", run)
    shutil.copy(runs / "b/checkpoints/last.safetensors", run / "checkpoints/last.safetensors")
    with pytest.raises(ResumeError, match="not a checkpoint of the run in"):
        resume_request(run, ["train.epochs=3"])


def test_a_checkpoint_of_another_run_of_the_same_config_is_refused_by_its_run_id(runs: Path, tmp_path: Path) -> None:
    run = tmp_path / "a"
    shutil.copytree(runs / "a", run)
    shutil.copy(runs / "a2/checkpoints/last.safetensors", run / "checkpoints/last.safetensors")
    before = snapshot(run)
    with pytest.raises(ResumeError) as raised:
        resume_request(run, ["train.epochs=3"])
    theirs = json.loads((runs / "a2" / MARKER_NAME).read_text())["run_id"]
    assert f"it was written by run {theirs}" in str(raised.value)
    assert snapshot(run) == before


def test_a_run_of_its_own_checkpoints_resumes(runs: Path, tmp_path: Path) -> None:
    run = tmp_path / "a"
    shutil.copytree(runs / "a", run)
    finished = Trainer(resume_request(run, ["train.epochs=2"])).run()
    assert finished.status == "finished" and finished.epochs_done == 2
    marker = json.loads((run / MARKER_NAME).read_text())
    assert Checkpoint.open(run / "checkpoints/last.safetensors").metadata["run_id"] == marker["run_id"]


def test_a_run_from_before_the_marker_still_resumes_and_gets_one(runs: Path, tmp_path: Path) -> None:
    run = tmp_path / "a"
    shutil.copytree(runs / "a", run)
    (run / MARKER_NAME).unlink()
    finished = Trainer(resume_request(run, ["train.epochs=2"])).run()
    assert finished.status == "finished"
    assert (run / MARKER_NAME).is_file()


@pytest.mark.slow
def test_resume_of_another_runs_checkpoint_exits_2_and_keeps_the_run(runs: Path, tmp_path: Path, cli: Cli) -> None:
    run = tmp_path / "a"
    shutil.copytree(runs / "a", run)
    other = run / "checkpoints/other.safetensors"
    shutil.copy(runs / "b/checkpoints/last.safetensors", other)
    before = snapshot(run)
    result = cli("resume", str(other), "--headless", "--epochs", "3")
    assert result.returncode == 2 and "not a checkpoint of the run in" in result.stderr, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(run) == before


# -- a description with control characters -----------------------------------------------------


def test_every_control_character_is_written_as_toml_that_parses_back() -> None:
    text = "".join(chr(code) for code in [*range(0x20), 0x7F]) + 'quote " backslash \\ δ'
    assert parse_toml(f"key = {toml_value(text)}\n", "test")["key"] == text


def test_a_description_with_control_characters_leaves_a_readable_run(tmp_path: Path) -> None:
    description = "x\u0007 bell\r return\u007f delete\u0000 nul"
    run = tmp_path / "run"
    assert Trainer(TrainingRequest(tiny(description=description), run)).run().status == "finished"
    assert load_preset(run / "config.toml").description == description
    for name in ("last", "best"):
        assert Checkpoint.open(run / f"checkpoints/{name}.safetensors").config().description == description
    assert resume_request(run, ["train.epochs=2"]).config.description == description


# -- a run that failed before its first checkpoint ---------------------------------------------


def test_a_run_that_failed_before_its_first_checkpoint_can_be_started_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    import gat_tui.checkpoints as checkpoints

    original = checkpoints.write_bytes_atomically

    def full_disk(path: Path, data: bytes, durable: bool = True) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    run = tmp_path / "run"
    monkeypatch.setattr(checkpoints, "write_bytes_atomically", full_disk)
    assert Trainer(TrainingRequest(tiny(), run)).run().status == "failed"
    monkeypatch.setattr(checkpoints, "write_bytes_atomically", original)
    with pytest.raises(ResumeError, match=f"gat-tui run {run / 'config.toml'} --out {run}"):
        resume_request(run)
    check_new_run_dir(run)  # what `gat-tui run RUN/config.toml --out RUN` checks first
    finished = Trainer(TrainingRequest(load_preset(run / "config.toml"), run)).run()
    assert finished.status == "finished"
    assert json.loads((run / "summary.json").read_text())["status"] == "finished"


# -- a console that goes away ------------------------------------------------------------------


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_the_printer_gives_up_a_broken_console_not_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    printer = HeadlessPrinter(console=output_console(_ClosedPipe()))
    started = RunStarted("RUN", "tiny", "gat", "cpu", "synthetic", 3, 48, 3, 1, 1, 0)
    printer(started)  # raised BrokenPipeError into the engine, which failed the run
    printer(LogMessage("info", "still training"))
    printer.close()
    assert printer.console_lost
    assert "training goes on without it" in capsys.readouterr().err


TINY_PRESET = config_to_toml(replace(tiny(), name="tiny_preset"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("shell", "env"),
    [
        ('"$@" | head -2', {}),
        ('"$@" > /dev/full', {}),
        ('"$@" > "$OUTPUT"', {"PYTHONIOENCODING": "ascii"}),
        ('"$@" > "$OUTPUT"', {"PYTHONIOENCODING": "latin-1"}),
    ],
    ids=["closed-pipe", "dev-full", "ascii", "latin-1"],
)
def test_losing_the_console_does_not_stop_or_fail_the_run(tmp_path: Path, shell: str, env: dict[str, str]) -> None:
    import os

    preset = tmp_path / "tiny_preset.toml"
    preset.write_text(TINY_PRESET)
    run, output = tmp_path / "run", tmp_path / "output.txt"
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "gat_tui"]
    script = f'{shell}; exit "${{PIPESTATUS[0]}}"'
    result = subprocess.run(
        ["bash", "-c", script, "bash", *command, "run", str(preset), "--headless", "--out", str(run)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OUTPUT": str(output), **env},
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["test_acc_clean"] is not None
    if env:  # an encoding without δ: every line still written, the summary included
        assert "run folder:" in output.read_text(encoding=env["PYTHONIOENCODING"]) and "Traceback" not in result.stderr


# -- a finished run ----------------------------------------------------------------------------


def test_a_finished_run_stays_as_it_is_unless_asked_to_train_longer(runs: Path, tmp_path: Path) -> None:
    run = tmp_path / "a"
    shutil.copytree(runs / "a", run)
    Trainer(resume_request(run, ["train.epochs=2"])).run()
    before = snapshot(run)
    with pytest.raises(ResumeError, match="this run has finished \\(2 epochs"):
        resume_request(run)
    with pytest.raises(ResumeError, match="has trained 2 epochs already, so --epochs 1 cannot be reached"):
        resume_request(run, ["train.epochs=1"])
    with pytest.raises(ResumeError, match="this run has finished"):
        resume_request(run, ["train.epochs=2"])
    assert snapshot(run) == before
    assert resume_request(run, ["train.epochs=3"]).config.train.epochs == 3


def test_a_failed_extension_keeps_the_finished_runs_figures(runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gat_tui.training.trainer as trainer

    run = tmp_path / "a"
    shutil.copytree(runs / "a", run)
    summary = (run / "summary.json").read_bytes()

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(trainer.Trainer, "_end_epoch", broken)
    finished = Trainer(resume_request(run, ["train.epochs=2"])).run()
    assert finished.status == "failed"
    assert (run / "summary.json").read_bytes() == summary
