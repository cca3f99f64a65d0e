"""AutoAttack's state file: an interrupted evaluation resumes at its next batch with the same figures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from autoattack_support import predictions, tiny_classifier, tiny_images
from torch import nn

from gat_tui.attacks import AutoAttack
from gat_tui.attacks.base import Perturbed
from gat_tui.data.splits import data_fingerprint
from gat_tui.robustness.evaluate import run_autoattack
from gat_tui.robustness.resume import ResumeSpec, state_folder, state_path

EPS = 0.05


def data() -> tuple[torch.Tensor, torch.Tensor]:
    images = (tiny_images() * 255).round().to(torch.uint8)
    return images, predictions(tiny_classifier(), images.float() / 255)


class Counting(AutoAttack):
    """AutoAttack that counts the batches it attacks."""

    def __init__(self) -> None:
        super().__init__("linf", "custom", ("apgd-ce",))  # the cheapest stage
        self.batches = 0

    def stages(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Iterator[tuple[str, Perturbed]]:
        self.batches += 1
        return super().stages(source, images, labels, eps)


def spec(folder: Path, notices: list[str], split: str = "test") -> ResumeSpec:
    return ResumeSpec(folder, {"target": "net.safetensors", "split": split, "limit": 12}, notices.append)


def evaluate(attack: AutoAttack, resume: ResumeSpec | None, stop_after: int = 0) -> tuple[float, float, float, tuple]:
    images, labels = data()
    batches = 0

    def on_batch(done: int) -> None:
        nonlocal batches
        batches += 1 if done else 0
        if batches == stop_after:
            raise KeyboardInterrupt

    net = tiny_classifier()
    return run_autoattack(attack, EPS, net, net, images, labels, 5, on_batch, resume=resume)


def saved_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".autoattack-*.json"))


@pytest.mark.slow  # pyautoattack's 100-iteration attacks take seconds on a CPU
@pytest.mark.usefixtures("pyautoattack")
def test_interrupted_evaluation_resumes_with_the_same_figures_and_skips_done_batches(tmp_path: Path) -> None:
    whole = evaluate(Counting(), None)
    notices: list[str] = []
    interrupted = Counting()
    with pytest.raises(KeyboardInterrupt):
        evaluate(interrupted, spec(tmp_path, notices), stop_after=1)
    assert interrupted.batches == 1
    (saved,) = saved_files(tmp_path)
    assert json.loads(saved.read_text())["start"] == 5
    resumed = Counting()
    assert evaluate(resumed, spec(tmp_path, notices)) == whole  # exactly: the saved sums are float32 values
    assert resumed.batches == 2  # images 5-9 and 10-11; 0-4 were done
    assert notices == [f"resuming AutoAttack from image 5 of 12 ({saved})"]
    assert saved_files(tmp_path) == []  # completed: removed


@pytest.mark.slow  # pyautoattack's 100-iteration attacks take seconds on a CPU
@pytest.mark.usefixtures("pyautoattack")
def test_state_of_another_evaluation_is_not_used(tmp_path: Path) -> None:
    notices: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        evaluate(Counting(), spec(tmp_path, notices, split="val"), stop_after=1)
    (other,) = saved_files(tmp_path)
    attack = Counting()
    ours = spec(tmp_path, notices)
    key = ours.identity | {"attack": "autoattack", "version": "custom", "stages": ["apgd-ce"], "norm": "linf",
                           "eps": EPS, "seed": 0, "images": 12, "batch_size": 5, "data": data_fingerprint(*data())}
    mine = state_path(tmp_path, key)
    assert mine != other
    record = json.loads(other.read_text())
    mine.write_text(json.dumps(record))  # another evaluation's state under our name: its key tells
    assert evaluate(attack, ours) == evaluate(Counting(), None)
    assert attack.batches == 3  # every batch attacked
    assert notices == [f"ignoring AutoAttack state file {mine}: it is for another evaluation; starting over"]
    assert saved_files(tmp_path) == [other]  # ours replaced, then removed on completion; the other's kept


def test_state_folder_is_the_runs_evals_or_beside_the_file(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    assert state_folder(run / "checkpoints/best.safetensors") == run / "checkpoints"  # no config.toml: not a run
    (run / "config.toml").write_text("")
    assert state_folder(run / "checkpoints/best.safetensors") == run / "evals"
    assert state_folder(tmp_path / "weights.safetensors") == tmp_path


def test_export_does_not_take_a_state_file_for_an_evaluation_record(tmp_path: Path) -> None:
    from gat_tui.runs.folder import RunPaths
    from gat_tui.runs.robustbench import find_autoattack

    paths = RunPaths(tmp_path / "run")
    paths.evals.mkdir(parents=True)
    (paths.evals / ".autoattack-0123456789abcdef.json").write_text('{"format": 1, "key": {}, "start": 5, "sums": [1.0]}\n')
    assert find_autoattack(paths, "linf", 8 / 255) == (None, [])
