"""Resume is exact: a run stopped (or killed) at a checkpoint and resumed ends bit-identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gat_tui.checkpoints import CheckpointError, read_checkpoint
from gat_tui.config import (
    CheckpointConfig,
    ConfigError,
    DataConfig,
    GatConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    config_to_toml,
)
from gat_tui.events import Event, StepMetrics
from gat_tui.training.control import TrainingControl
from gat_tui.training.request import TrainingRequest
from gat_tui.training.resume import ResumeError, resume_request
from gat_tui.training.trainer import Trainer


def resumable_config(method: str = "dropout_gat", epochs: int = 3) -> RunConfig:
    return RunConfig(
        name="resumable",
        method=method,
        device="cpu",
        data=DataConfig(
            dataset="synthetic", image_size=8, num_classes=3, train_size=112, val_size=32, test_size=32,
            batch_size=16, eval_batch_size=32,
        ),
        model=ModelConfig(dropout=0.3),  # dropout draws from the global RNG: it must be restored too
        train=TrainConfig(epochs=epochs, log_every=2),
        gat=GatConfig(lr_g=1e-3, k=2),
        checkpoint=CheckpointConfig(every_steps=3),
    )


def weights(path: Path) -> dict[str, torch.Tensor]:
    return {key: value for key, value in load_file(str(path)).items() if key.startswith(("classifier.", "generator.", "optimizer."))}


def assert_identical(left: Path, right: Path) -> None:
    a, b = weights(left), weights(right)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


def stop_at_step(step: int) -> tuple[threading.Event, list]:
    stop = threading.Event()

    def subscriber(event: Event) -> None:
        if isinstance(event, StepMetrics) and event.step >= step:
            stop.set()

    return stop, [subscriber]


def step_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("stop_step", [3, 8])  # mid-epoch at a step checkpoint; the exact end of epoch 2
def test_stop_and_resume_in_process_is_bit_identical(tmp_path: Path, stop_step: int) -> None:
    config = resumable_config()
    straight = Trainer(TrainingRequest(config, tmp_path / "straight")).run()
    assert straight.status == "finished"

    stop, subscribers = stop_at_step(stop_step)
    stopped = Trainer(TrainingRequest(config, tmp_path / "resumed"), subscribers=subscribers, control=TrainingControl(stop=stop)).run()
    assert stopped.status == "stopped"
    finished = Trainer(TrainingRequest(config, tmp_path / "resumed", None, resume_from=tmp_path / "resumed/checkpoints/last.safetensors")).run()
    assert finished.status == "finished" and finished.step == straight.step

    assert_identical(tmp_path / "straight/checkpoints/last.safetensors", tmp_path / "resumed/checkpoints/last.safetensors")
    assert_identical(tmp_path / "straight/checkpoints/best.safetensors", tmp_path / "resumed/checkpoints/best.safetensors")
    assert finished.test_acc_clean == straight.test_acc_clean
    # the metrics cover every step exactly once and every epoch once
    lines = step_lines(tmp_path / "resumed")
    steps = [line["step"] for line in lines if line["event"] == "step"]
    assert steps == sorted(set(steps)) and steps[-1] == straight.step
    assert [line["epoch"] for line in lines if line["event"] == "epoch"] == [1, 2, 3]


def test_a_crash_after_a_checkpoint_drops_the_lines_written_after_it(tmp_path: Path) -> None:
    config = resumable_config(epochs=2)
    stop, subscribers = stop_at_step(3)
    Trainer(TrainingRequest(config, tmp_path / "run"), subscribers=subscribers, control=TrainingControl(stop=stop)).run()
    with (tmp_path / "run/metrics.jsonl").open("a") as handle:  # what a killed run wrote after its checkpoint
        handle.write(json.dumps({"event": "step", "epoch": 1, "step": 4, "time": 1.0, "loss_f": 9.9}) + "\n")
        handle.write('{"event": "step", "ep')  # and a line cut short
    Trainer(TrainingRequest(config, tmp_path / "run", None, resume_from=tmp_path / "run/checkpoints/last.safetensors")).run()
    lines = step_lines(tmp_path / "run")
    assert all(line.get("loss_f") != 9.9 for line in lines)
    steps = [line["step"] for line in lines if line["event"] == "step"]
    assert steps == sorted(set(steps))


@pytest.mark.slow  # two subprocesses of the installed script
def test_sigkill_then_resume_from_the_command_line_is_bit_identical(tmp_path: Path) -> None:
    preset = tmp_path / "resumable.toml"
    preset.write_text(config_to_toml(resumable_config(epochs=4)))
    script = Path(sys.executable).parent / "gat-tui"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "gat_tui"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    straight = subprocess.run(command + ["run", str(preset), "--headless", "--out", str(tmp_path / "straight")], env=env, capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr

    killed_dir = tmp_path / "killed"
    process = subprocess.Popen(command + ["run", str(preset), "--headless", "--out", str(killed_dir)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed_dir / "checkpoints/last.safetensors"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if int(read_checkpoint(last)[1]["step"]) >= 9:  # past epoch 1, inside epoch 2
                break
        except CheckpointError:
            pass
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (killed_dir / "summary.json").exists(), "the run ended before it could be killed"

    resumed = subprocess.run(command + ["resume", str(killed_dir), "--headless"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed from" in resumed.stdout
    assert_identical(tmp_path / "straight/checkpoints/last.safetensors", last)
    summaries = [json.loads((tmp_path / name / "summary.json").read_text()) for name in ("straight", "killed")]
    assert summaries[0]["test_acc_clean"] == summaries[1]["test_acc_clean"]


def test_resume_refuses_what_it_cannot_continue(tmp_path: Path) -> None:
    with pytest.raises(ResumeError, match="no such run folder"):
        resume_request(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResumeError, match="no checkpoints/last.safetensors"):
        resume_request(tmp_path / "empty")
    stop, subscribers = stop_at_step(2)
    Trainer(TrainingRequest(resumable_config(), tmp_path / "run"), subscribers=subscribers, control=TrainingControl(stop=stop)).run()
    last = tmp_path / "run/checkpoints/last.safetensors"
    request = resume_request(tmp_path / "run", ["train.epochs=7"])
    assert request.resume_from == last and request.config.train.epochs == 7
    with pytest.raises(ConfigError, match="'train.epochs' = 0"):
        resume_request(tmp_path / "run", ["train.epochs=0"])
    # a checkpoint of another class count does not fit the run's data
    other = replace(resumable_config(), data=replace(resumable_config().data, num_classes=4))
    finished = Trainer(TrainingRequest(other, tmp_path / "run", None, resume_from=last)).run()
    assert finished.status == "failed" and "needs" in finished.message
    last.write_bytes(last.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        resume_request(tmp_path / "run")


def test_a_saved_config_that_no_longer_validates_is_refused(tmp_path: Path) -> None:
    from gat_tui.checkpoints import NetworkShape, save_checkpoint
    from gat_tui.models import AllConvClassifier

    run_dir = tmp_path / "old-run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.toml").write_text('method = "gat"\n')
    stale = 'method = "gat"\n[gat]\nbeta = 3\n'  # a key this version does not know
    save_checkpoint(run_dir / "checkpoints/last.safetensors", {"classifier": AllConvClassifier(3)},
                    NetworkShape(3, 3, 8, 8, 0.0), stale, epoch=1, step=1)
    with pytest.raises(ConfigError, match=r"its saved config.*unknown key 'gat.beta'"):
        resume_request(run_dir)


def test_resume_refuses_other_networks_than_the_checkpoint_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stop, subscribers = stop_at_step(2)
    Trainer(TrainingRequest(resumable_config(), tmp_path / "run"), subscribers=subscribers, control=TrainingControl(stop=stop)).run()
    last = tmp_path / "run/checkpoints/last.safetensors"
    cases = [
        (['model.classifier="support_factory:tiny_classifier"'], "model.classifier = 'support_factory:tiny_classifier' (it holds 'allconv')"),
        (["model.generator_width=16", "model.generator_depth=2"],
         "model.generator_width = 16 (it holds 48); model.generator_depth = 2 (it holds 6)"),
        (["model.normalize={mean=[0.5,0.5,0.5],std=[0.2,0.2,0.2]}"], "model.normalize.mean = (0.5, 0.5, 0.5) (it holds None)"),
    ]
    for overrides, message in cases:
        with pytest.raises(ResumeError) as raised:
            resume_request(tmp_path / "run", overrides)
        assert str(last) in str(raised.value) and message in str(raised.value), overrides
        assert "start a new run" in str(raised.value)
    assert resume_request(tmp_path / "run", ["model.dropout=0.1"]).resume_from == last  # no weights change: allowed

    # a checkpoint whose user factory no longer imports: the run fails naming the spec and the cause
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))  # tests/support_factory.py
    factory = replace(resumable_config(), model=ModelConfig(classifier="support_factory:tiny_classifier", dropout=0.3))
    stop, subscribers = stop_at_step(2)
    Trainer(TrainingRequest(factory, tmp_path / "user"), subscribers=subscribers, control=TrainingControl(stop=stop)).run()
    monkeypatch.setitem(sys.modules, "support_factory", None)  # as if the module were gone
    request = resume_request(tmp_path / "user")
    finished = Trainer(request).run()
    assert finished.status == "failed"
    assert "model.classifier 'support_factory:tiny_classifier': cannot import module 'support_factory'" in finished.message


class _StopAfterSteps(TrainingControl):
    """Asks for a stop after `steps` classifier steps, between two reports (the engine asks once per step)."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.remaining = steps

    def anything_asked(self) -> bool:
        self.remaining -= 1
        if self.remaining == 0:
            self.stop.set()
        return super().anything_asked()


def test_a_stop_between_reports_leaves_the_metrics_of_an_uninterrupted_run(tmp_path: Path) -> None:
    config = replace(resumable_config(epochs=2), train=TrainConfig(epochs=2, log_every=4), checkpoint=CheckpointConfig())
    assert Trainer(TrainingRequest(config, tmp_path / "straight")).run().status == "finished"
    stopped = Trainer(TrainingRequest(config, tmp_path / "resumed"), control=_StopAfterSteps(6)).run()
    assert stopped.status == "stopped" and stopped.step == 6  # two steps after the report at step 4
    assert Trainer(resume_request(tmp_path / "resumed")).run().status == "finished"

    def figures(run: str) -> list[dict]:  # what the run computed, not when or how fast
        return [{k: v for k, v in line.items() if k not in ("time", "images_per_second", "epoch_seconds")} for line in step_lines(tmp_path / run)]

    assert 6 not in [line["step"] for line in figures("resumed") if line["event"] == "step"], "a partial step line at the stop"
    assert figures("resumed") == figures("straight")


def test_the_thread_count_is_recorded_and_a_resume_at_another_one_warns(tmp_path: Path) -> None:
    # CPU results are bit-exact only at an equal torch thread count
    from gat_tui.checkpoints import Checkpoint
    from gat_tui.events import LogMessage
    from gat_tui.training.checkpointing import thread_count_warning

    config = replace(resumable_config(epochs=1), checkpoint=CheckpointConfig(every_steps=0))
    threads = torch.get_num_threads()
    stop, subscribers = stop_at_step(2)
    Trainer(TrainingRequest(config, tmp_path / "run"), subscribers=subscribers, control=TrainingControl(stop=stop)).run()
    last = tmp_path / "run/checkpoints/last.safetensors"
    assert read_checkpoint(last)[1]["torch_threads"] == str(threads)
    assert thread_count_warning(Checkpoint.open(last)) is None  # the same count: nothing to say

    other = 1 if threads > 1 else 2
    warnings: list[str] = []

    def keep_warnings(event: Event) -> None:
        if isinstance(event, LogMessage) and event.level == "warning":
            warnings.append(event.text)

    torch.set_num_threads(other)
    try:
        finished = Trainer(TrainingRequest(config, tmp_path / "run", None, resume_from=last), subscribers=[keep_warnings]).run()
    finally:
        torch.set_num_threads(threads)
    assert finished.status == "finished"
    assert [text for text in warnings if "torch threads" in text] == [
        f"this checkpoint was trained with {threads} torch threads, this process has {other}: on a CPU the resumed run "
        f"will not be bit-identical to one left alone (set OMP_NUM_THREADS={threads} for that)"
    ]
    assert json.loads((tmp_path / "run/summary.json").read_text())["torch_threads"] == other
