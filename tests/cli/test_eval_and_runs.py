"""`gat-tui eval` and `gat-tui runs` on runs trained here on tiny synthetic data."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import Cli

from gat_tui.config import DataConfig, EvalConfig, GatConfig, RunConfig, TrainConfig
from gat_tui.events import Event, StepMetrics
from gat_tui.runs.index import list_runs
from gat_tui.training.control import TrainingControl
from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer


def tiny(method: str, name: str) -> RunConfig:
    return RunConfig(
        name=name,
        method=method,
        device="cpu",
        data=DataConfig(dataset="synthetic", image_size=8, num_classes=3, train_size=160, val_size=32, test_size=64, batch_size=16),
        train=TrainConfig(epochs=2, log_every=4),
        gat=GatConfig(lr_g=1e-3),
        eval=EvalConfig(panel_size=0),
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    assert Trainer(TrainingRequest(tiny("gat", "tiny_gat"), root / "gat")).run().status == "finished"
    assert Trainer(TrainingRequest(tiny("baseline", "tiny_baseline"), root / "baseline")).run().status == "finished"
    return root


def test_direct_and_indirect_sweeps_write_the_json(trained: Path, tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "direct.json"
    result = cli("eval", str(trained / "gat/checkpoints/best.safetensors"), "--attack", "fgm-l2", "--attack", "gat",
                     "--eps", "0.5,1", "--json", str(out), "--limit", "48")
    assert result.returncode == 0, result.stderr
    assert "fgm-l2" in result.stdout and "accuracy" in result.stdout
    # piped, the paths stay whole on their lines (they used to wrap at 80 columns, splitting the file name)
    lines = result.stdout.splitlines()
    assert f"wrote {out}" in lines
    recorded = [line.removeprefix("recorded in ") for line in lines if line.startswith("recorded in ")]
    assert len(recorded) == 1 and len(recorded[0]) > 80 and Path(recorded[0]).is_file(), result.stdout
    record = json.loads(out.read_text())
    assert record["split"] == "test" and record["n"] == 48
    assert [(r["attack"], r["eps"]) for r in record["results"]] == [("clean", 0.0), ("fgm-l2", 0.5), ("fgm-l2", 1.0), ("gat", None)]
    for row in record["results"]:
        assert {"attack", "eps", "accuracy", "pert_l2", "pert_linf", "source"} <= set(row)
        assert row["accuracy"] * 48 == pytest.approx(round(row["accuracy"] * 48)) and row["source"] is None
    clean, fgm_small, fgm_large = (row["accuracy"] for row in record["results"][:3])
    assert fgm_large <= fgm_small <= clean  # a larger ε is no weaker
    assert record["results"][1]["pert_l2"] == pytest.approx(0.5, abs=0.05)  # clipping trims a little
    assert record["results"][2]["pert_l2"] == pytest.approx(1.0, abs=0.1)
    assert record["results"][1]["pert_l2"] <= 0.5 + 1e-6 and record["results"][2]["pert_l2"] <= 1.0 + 1e-6

    indirect = tmp_path / "indirect.json"
    result = cli("eval", str(trained / "gat"), "--source", str(trained / "baseline"), "--attack", "fgsm",
                     "--eps", "0.03", "--split", "val", "--json", str(indirect))
    assert result.returncode == 0, result.stderr
    rows = json.loads(indirect.read_text())["results"]
    assert rows[1]["source"].endswith("baseline/checkpoints/best.safetensors")


def test_eval_errors_name_the_option(trained: Path, cli: Cli) -> None:
    checkpoint = str(trained / "baseline/checkpoints/best.safetensors")
    bad_attack = cli("eval", checkpoint, "--attack", "cw")
    assert bad_attack.returncode == 2 and "--attack 'cw'" in bad_attack.stderr
    bad_eps = cli("eval", checkpoint, "--eps", "0.1,big")
    assert bad_eps.returncode == 2 and "'big' is not a number" in bad_eps.stderr
    no_generator = cli("eval", checkpoint, "--attack", "gat")
    assert no_generator.returncode == 2 and "needs a generator" in no_generator.stderr
    missing = cli("eval", str(trained / "nope.safetensors"))
    assert missing.returncode == 2 and "no such checkpoint file" in missing.stderr


def test_runs_lists_status_epochs_and_best_accuracy(trained: Path, tmp_path: Path, cli: Cli) -> None:
    stop = threading.Event()

    def stop_soon(event: Event) -> None:
        if isinstance(event, StepMetrics):
            stop.set()

    Trainer(TrainingRequest(tiny("baseline", "tiny_stopped"), trained / "stopped"), subscribers=[stop_soon], control=TrainingControl(stop=stop)).run()
    (trained / "running").mkdir()
    (trained / "running/config.toml").write_text('name = "tiny_running"\nmethod = "gat"\n')
    # another process holds the run's lock, as a training does
    holder = (
        "import sys, time; from pathlib import Path; from gat_tui.runs.lock import RunLock\n"
        f"lock = RunLock(Path({str(trained / 'running')!r})); lock.acquire(); print('locked', flush=True); time.sleep(60)\n"
    )
    sleeper = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert sleeper.stdout is not None and sleeper.stdout.readline().strip() == "locked"
        records = {record.preset: record for record in list_runs(trained)}
        assert records["tiny_gat"].status == "finished" and records["tiny_gat"].epochs_done == 2
        assert records["tiny_gat"].best_val_acc is not None
        assert records["tiny_stopped"].status == "stopped"
        assert records["tiny_running"].status == "running"
        listing = cli("runs", "--dir", str(trained), env={"COLUMNS": "200"})
        assert listing.returncode == 0 and "tiny_gat" in listing.stdout and "running" in listing.stdout
    finally:
        sleeper.kill()
        sleeper.wait()
    assert {r.preset: r for r in list_runs(trained)}["tiny_running"].status == "failed"  # died with no checkpoint


def test_runs_json_gives_whole_folders_and_a_sweeps_runs_with_their_sweep(tmp_path: Path, cli: Cli) -> None:
    import json

    def write_run(folder: Path, method: str) -> None:
        folder.mkdir(parents=True)
        (folder / "config.toml").write_text(f'name = "synthetic_smoke"\nmethod = "{method}"\n[train]\nepochs = 2\n')
        lines = [{"event": "epoch", "epoch": epoch, "step": 10 * epoch, "val_acc_clean": 0.5 + 0.1 * epoch} for epoch in (1, 2)]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        (folder / "summary.json").write_text(json.dumps({"status": "finished"}))

    runs = tmp_path / "runs"
    own = runs / ("synthetic_smoke-20261207-090000-" + "a" * 40)
    write_run(own, "gat")
    write_run(runs / "sweeps" / "demo" / "runs" / "baseline" / "seed-0", "baseline")
    (runs / "sweeps" / "demo" / "sweep.toml").write_text('name = "demo"\n')

    listed = json.loads(cli("runs", "--dir", str(runs), "--json").stdout)
    assert [(entry["folder"], entry["sweep"], entry["place"]) for entry in listed] == [
        (str(own.resolve()), None, None),
        (str((runs / "sweeps/demo/runs/baseline/seed-0").resolve()), str(runs / "sweeps" / "demo"), "baseline/seed-0"),
    ]
    assert listed[0]["status"] == "finished" and listed[0]["epochs_done"] == 2 and listed[0]["best_val_acc"] == 0.7
    wide = cli("runs", "--dir", str(runs), env={"COLUMNS": "200"}).stdout
    assert "sweep demo" in wide and "└ baseline/seed-0" in wide  # grouped as the runs screen shows them
    narrow = cli("runs", "--dir", str(runs), env={"COLUMNS": "80"}).stdout
    assert "…" not in narrow and "aaaa" in narrow  # the long folder folded onto more lines, not cut with …


def test_runs_at_80_columns_tell_runs_of_one_preset_apart_on_one_line_each(tmp_path: Path, cli: Cli) -> None:
    """Six runs of one preset used to read "synthetic_smoke gat" six times, their folders cut: the name comes first, whole."""
    import json

    runs = tmp_path / "runs"
    names = [f"synthetic_smoke-20261207-09000{index}" for index in range(6)]
    for index, name in enumerate(names):
        folder = runs / name
        folder.mkdir(parents=True)
        (folder / "config.toml").write_text('name = "synthetic_smoke"\nmethod = "gat"\n[train]\nepochs = 2\n')
        line = {"event": "epoch", "epoch": 1, "step": 10, "val_acc_clean": 0.5 + index / 100}
        (folder / "metrics.jsonl").write_text(json.dumps(line) + "\n")
    listing = cli("runs", "--dir", str(runs), env={"COLUMNS": "80"}).stdout
    lines = listing.splitlines()
    assert all(len(line) <= 80 for line in lines), listing
    for index, name in enumerate(names):
        row = next(line for line in lines if name in line)  # the whole name on one line, with its figure
        assert row.split("│")[1].strip() == name and f"{50 + index:.2f}%" in row
