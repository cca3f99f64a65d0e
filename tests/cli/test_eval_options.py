"""`gat-tui eval`'s AutoAttack, per-attack ε and clip options on a GAT run trained here on tiny synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Cli

from gat_tui.config import DataConfig, EvalConfig, GatConfig, RunConfig, TrainConfig
from gat_tui.robustness.evaluate import evaluate_checkpoint
from gat_tui.robustness.options import EvalOptions
from gat_tui.robustness.plan import AutoAttackOptions
from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer

pytestmark = pytest.mark.slow
EPS = 0.15  # the synthetic classes are far apart: smaller ε barely moves accuracy


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = RunConfig(
        name="tiny_gat4", method="gat", device="cpu",
        # 4 classes: APGD-T's targeted DLR loss needs them
        data=DataConfig(dataset="synthetic", image_size=8, num_classes=4, train_size=160, val_size=32, test_size=64, batch_size=16),
        train=TrainConfig(epochs=2, log_every=4), gat=GatConfig(lr_g=1e-3), eval=EvalConfig(panel_size=0),
    )
    run_dir = tmp_path_factory.mktemp("runs") / "gat"
    assert Trainer(TrainingRequest(config, run_dir)).run().status == "finished"
    return run_dir / "checkpoints/best.safetensors"


def test_autoattack_is_no_weaker_than_pgd_stays_in_eps_and_repeats(checkpoint: Path) -> None:
    pytest.importorskip("pyautoattack", reason='pyautoattack is not installed: pip install -e ".[autoattack]"')
    options = AutoAttackOptions("linf", "custom", ("apgd-ce",))  # the cheapest stage: AutoAttack costs minutes on a CPU

    def evaluate() -> dict[str, tuple[float, float]]:
        done = evaluate_checkpoint(checkpoint, EvalOptions(attacks=(f"autoattack:{EPS}", f"pgd-linf:{EPS}"), limit=8, batch_size=4,
                                                           device_name="cpu", autoattack=options))
        assert done.clip  # the training config's default
        return {row.attack: (row.accuracy, row.pert_linf) for row in done.results}

    first = evaluate()
    assert first == evaluate()  # the same figures twice
    assert first["autoattack"][0] <= first["pgd-linf"][0] <= first["clean"][0]
    assert first["autoattack"][1] <= EPS + 1e-6 and first["pgd-linf"][1] <= EPS + 1e-6


def test_eval_cli_resumes_an_interrupted_autoattack_from_the_run_folder(checkpoint: Path, cli: Cli) -> None:
    pytest.importorskip("pyautoattack", reason='pyautoattack is not installed: pip install -e ".[autoattack]"')
    options = AutoAttackOptions("linf", "custom", ("apgd-ce",))

    def stop(what: str, done: int, total: int) -> None:
        if what.startswith("autoattack") and done > 0:
            raise KeyboardInterrupt  # as Ctrl-C after the first batch

    with pytest.raises(KeyboardInterrupt):
        evaluate_checkpoint(checkpoint, EvalOptions(attacks=(f"autoattack:{EPS}",), limit=8, batch_size=4, device_name="cpu",
                                                    autoattack=options, progress=stop))
    evals = checkpoint.parent.parent / "evals"
    (state,) = evals.glob(".autoattack-*.json")
    result = cli("eval", str(checkpoint.parent.parent), "--attack", f"autoattack:{EPS}", "--version", "custom",
                 "--aa-attacks", "apgd-ce", "--limit", "8", "--batch-size", "4", "--device", "cpu", env={"COLUMNS": "300"})
    assert result.returncode == 0, result.stderr
    assert f"resuming AutoAttack from image 4 of 8 ({state})" in result.stdout
    assert not state.exists()


def test_eval_cli_autoattack_and_per_attack_eps(checkpoint: Path, tmp_path: Path, cli: Cli) -> None:
    pytest.importorskip("pyautoattack", reason='pyautoattack is not installed: pip install -e ".[autoattack]"')
    out = tmp_path / "aa.json"
    result = cli("eval", str(checkpoint), "--attack", "autoattack", "--version", "custom", "--aa-attacks", "apgd-ce",
                 "--eps", "0.1", "--attack", "fgsm:2/255,0.1", "--no-clip", "--limit", "8", "--json", str(out),
                 env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "clipping adversarial images to [0, 1]: off (as asked)" in result.stdout
    assert "after apgd-ce" in result.stdout
    record = json.loads(out.read_text())
    rows = [(r["attack"], r["eps"]) for r in record["results"]]
    assert rows == [("clean", 0.0), ("autoattack", 0.1), ("fgsm", 2 / 255), ("fgsm", 0.1)]
    auto = record["results"][1]
    assert (auto["version"], auto["norm"], auto["n"]) == ("custom", "linf", 8) and record["clip"] is False
    assert [s["attack"] for s in auto["stages"]] == ["apgd-ce"]


def test_eval_cli_option_errors_exit_2_naming_the_option(checkpoint: Path, cli: Cli) -> None:
    cases = [
        (["--attack", "fgsm:2/0"], "--attack 'fgsm:2/0': '2/0' is not a number"),
        (["--attack", "fgsm:"], "--attack 'fgsm:': no ε after ':'"),
        (["--eps", "8/x"], "--eps '8/x': '8/x' is not a number"),
        (["--attack", "autoattack", "--norm", "l1"], "--norm 'l1': expected linf or l2"),
        (["--attack", "autoattack", "--version", "fast"], "--version 'fast'"),
        (["--attack", "autoattack", "--version", "custom"], "--version custom needs --aa-attacks"),
        (["--attack", "autoattack", "--aa-attacks", "square"], "--aa-attacks 'square': only with --version custom"),
    ]
    for args, message in cases:
        result = cli("eval", str(checkpoint), *args, "--limit", "4")
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    default = cli("eval", str(checkpoint), "--attack", "fgsm:1/255", "--limit", "4", env={"COLUMNS": "200"})
    assert default.returncode == 0 and "on (from the checkpoint's training config" in default.stdout
