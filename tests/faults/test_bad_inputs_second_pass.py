"""Silently wrong inputs, tracebacks and signals from the second fault pass (issue 25, parts 2 and 3).

Each case failed on the code before its fix: a wrong result without a word, a traceback, or a
run killed without its checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SCRIPT, Cli
from PIL import Image

from gat_tui.config import ConfigError, DataConfig, EvalConfig, GatConfig, RunConfig, TrainConfig, config_to_toml, load_preset
from gat_tui.data import DataError, load_splits
from gat_tui.sweep.plan import load_sweep
from gat_tui.sweep.runner import check_sweep_out
from gat_tui.training.request import TrainingRequest
from gat_tui.training.resume import resume_request
from gat_tui.training.trainer import Trainer


def tiny(epochs: int = 1) -> RunConfig:
    return RunConfig(
        name="tiny",
        method="gat",
        device="cpu",
        data=DataConfig(dataset="synthetic", image_size=8, num_classes=3, train_size=64, val_size=16, test_size=16, batch_size=16),
        train=TrainConfig(epochs=epochs, log_every=2),
        gat=GatConfig(lr_g=1e-3),
        eval=EvalConfig(panel_size=0),
    )


# -- images ------------------------------------------------------------------------------------


def _image_folder(root: Path, write: object) -> None:
    for split in ("train", "test"):
        for label, name in enumerate(("a", "b")):
            for index in range(3):
                path = root / split / name / f"{index}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                write(path, label)  # type: ignore[operator]


def test_16_bit_grey_images_are_scaled_to_8_bits_not_clipped_white(tmp_path: Path) -> None:
    levels = {0: 40000, 1: 10000}  # 16-bit levels: 40000 >> 8 = 156, 10000 >> 8 = 39

    def write(path: Path, label: int) -> None:
        Image.fromarray(np.full((6, 6), levels[label], dtype=np.uint16)).save(path)

    _image_folder(tmp_path / "data", write)
    assert Image.open(tmp_path / "data/train/a/0.png").mode.startswith("I")
    splits = load_splits(DataConfig(dataset="imagefolder", path=str(tmp_path / "data"), val_size=1, image_size=4))
    for images, labels in ((splits.train_images, splits.train_labels), (splits.test_images, splits.test_labels)):
        expected = np.where(labels.numpy() == 0, 156, 39)
        assert (images.numpy() == expected[:, None, None, None]).all()


def test_a_link_that_loops_in_a_class_folder_is_named(tmp_path: Path) -> None:
    def write(path: Path, label: int) -> None:
        Image.fromarray(np.full((6, 6, 3), 100 * label, dtype=np.uint8)).save(path)

    _image_folder(tmp_path / "data", write)
    loop = tmp_path / "data/train/a/loop.png"
    loop.symlink_to(loop)
    with pytest.raises(DataError, match=f"{loop}: a symbolic link that loops back on itself"):
        load_splits(DataConfig(dataset="imagefolder", path=str(tmp_path / "data"), val_size=1, image_size=4))


# -- presets and overrides ---------------------------------------------------------------------


def test_a_preset_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    preset = tmp_path / "bom.toml"
    preset.write_bytes(b"\xef\xbb\xbf" + config_to_toml(tiny()).encode())
    assert load_preset(preset) == tiny()


def test_a_preset_nested_thousands_deep_is_refused_without_a_traceback(tmp_path: Path) -> None:
    preset = tmp_path / "deep.toml"
    preset.write_text("description = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=f"{preset}: arrays or tables nested too deeply"):
        load_preset(preset)


@pytest.mark.parametrize("key", ["train.log_every", "train.max_steps_per_epoch", "checkpoint.every_steps", "gat.k"])
def test_integers_beyond_64_bits_are_refused(tmp_path: Path, key: str) -> None:
    preset = tmp_path / "p.toml"
    preset.write_text(config_to_toml(tiny()))
    with pytest.raises(ConfigError, match=f"'{key}' = {2**63} is out of range"):
        load_preset(preset, [f"{key}={2**63}"])


def test_a_table_value_for_a_section_is_refused_not_put_in_its_place(tmp_path: Path) -> None:
    preset = tmp_path / "p.toml"
    preset.write_text(config_to_toml(tiny()))
    with pytest.raises(ConfigError, match="'data' is a section; set its keys one at a time"):
        load_preset(preset, ["data={batch_size=8}"])
    assert load_preset(preset, ["data.batch_size=8"]).data.dataset == "synthetic"
    # an optional table is set whole, or key by key
    with pytest.raises(ConfigError, match="'model.normalize.std' is missing"):
        load_preset(preset, ["model.normalize.mean=[0.5, 0.5, 0.5]"])
    normalized = load_preset(preset, ["model.normalize={mean=[0.5,0.5,0.5],std=[0.2,0.2,0.2]}"])
    assert normalized.model.normalize is not None and normalized.model.normalize.std == (0.2, 0.2, 0.2)


# -- sweep folders -----------------------------------------------------------------------------


def test_a_sweep_folder_takes_only_its_own_sweep_file(tmp_path: Path) -> None:
    first, second = tmp_path / "first.toml", tmp_path / "second.toml"
    first.write_text('name = "s"\nseeds = 1\n[[runs]]\npreset = "synthetic_smoke"\n')
    second.write_text('name = "s"\nseeds = 2\n[[runs]]\npreset = "synthetic_smoke"\n')
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.toml").write_text("# the same sweep, written another way\n" + first.read_text())
    check_sweep_out(out, load_sweep(first))
    with pytest.raises(ConfigError) as raised:
        check_sweep_out(out, load_sweep(second))
    assert f"{out / 'sweep.toml'}, which differs from {second}" in str(raised.value)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match=f"--out {a_file}: is a file"):
        check_sweep_out(a_file, load_sweep(first))


@pytest.mark.slow
def test_output_paths_the_file_system_cannot_take_are_refused_cleanly(tmp_path: Path, cli: Cli) -> None:
    long_name = tmp_path / ("x" * 300)
    result = cli("run", "synthetic_smoke", "--headless", "--out", str(long_name))
    assert result.returncode == 2 and "File name too long" in result.stderr and "Traceback" not in result.stderr, result.stderr
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    result = cli("sweep", "presets/paper/smoke_sweep.toml", "--headless", "--out", str(a_file))
    assert result.returncode == 2 and f"--out {a_file}: is a file" in result.stderr and "Traceback" not in result.stderr


# -- run files replaced ------------------------------------------------------------------------


def test_a_metrics_log_replaced_by_a_folder_fails_the_resume_cleanly(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert Trainer(TrainingRequest(tiny(), run)).run().status == "finished"
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").mkdir()
    finished = Trainer(resume_request(run, ["train.epochs=2"])).run()  # raised IsADirectoryError
    assert finished.status == "failed" and str(run / "metrics.jsonl") in finished.message


# -- signals -----------------------------------------------------------------------------------


def _start(preset: Path, run: Path, ignore_hangup: bool) -> subprocess.Popen[bytes]:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "gat_tui"]

    def as_nohup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    return subprocess.Popen(
        [*command, "run", str(preset), "--headless", "--out", str(run)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=as_nohup if ignore_hangup else None,
    )


def _wait_for_steps(run: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        metrics = run / "metrics.jsonl"
        if metrics.is_file() and '"event": "step"' in metrics.read_text():
            return
        time.sleep(0.05)
    raise AssertionError("the run never logged a step")


@pytest.mark.slow
def test_a_hang_up_checkpoints_and_stops_like_sigterm_unless_nohup_ignores_it(tmp_path: Path) -> None:
    preset = tmp_path / "long.toml"
    preset.write_text(config_to_toml(tiny(epochs=500)))
    run = tmp_path / "hung-up"
    process = _start(preset, run, ignore_hangup=False)
    _wait_for_steps(run)
    process.send_signal(signal.SIGHUP)
    assert process.wait(timeout=120) == 130  # was -1: killed without a checkpoint
    assert (run / "checkpoints/last.safetensors").is_file()
    assert json.loads((run / "summary.json").read_text())["status"] == "stopped"

    under_nohup = tmp_path / "nohup"
    process = _start(preset, under_nohup, ignore_hangup=True)
    try:
        _wait_for_steps(under_nohup)
        process.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert process.poll() is None, "a run started under nohup stopped on a hang-up"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 130
    assert os.path.isfile(under_nohup / "checkpoints/last.safetensors")


# -- sweep labels from values ------------------------------------------------------------------


def test_grid_and_tune_values_never_lead_a_folder_out_of_the_sweep(tmp_path: Path) -> None:
    from gat_tui.sweep.jobstate import state_file
    from gat_tui.sweep.plan import jobs
    from gat_tui.sweep.runner import SweepLayout

    sweep_file = tmp_path / "escape.toml"
    sweep_file.write_text(
        'name = "s"\nseeds = 1\n'
        '[[runs]]\npreset = "synthetic_smoke"\ngrid = { "description" = ["../../../../../escaped_sweep_dir", "a/b"] }\n'
        '[[runs]]\npreset = "synthetic_smoke"\nlabel = "tuned"\ntune = { "description" = ["../../x", "c/d"] }\n'
    )
    sweep = load_sweep(sweep_file)
    assert [entry.label for entry in sweep.runs] == [
        "synthetic_smoke-description=__________escaped_sweep_dir", "synthetic_smoke-description=a_b", "tuned",
    ]
    assert [point.name for point in sweep.runs[2].tuning] == ["description=____x", "description=c_d"]
    root = (tmp_path / "out").resolve()
    layout = SweepLayout(root)
    for job in jobs(sweep):
        for path in (layout.job_run_dir(job), state_file(root, job)):
            assert root in path.resolve().parents, f"{path} is outside the sweep folder"


def test_a_label_that_cannot_name_a_folder_is_refused(tmp_path: Path) -> None:
    sweep_file = tmp_path / "dots.toml"
    sweep_file.write_text('name = "s"\nseeds = 1\n[[runs]]\npreset = "presets/.."\n')
    with pytest.raises(ConfigError, match="run label '..' cannot name a folder"):
        load_sweep(sweep_file)


# -- damaged figures read back -----------------------------------------------------------------


def test_report_leaves_out_figures_that_are_not_accuracies_and_names_the_file(tmp_path: Path) -> None:
    from gat_tui.sweep.report import build_report

    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / "sweep.toml").write_text(
        'name = "s"\nseeds = 4\n[[runs]]\npreset = "synthetic_smoke"\nlabel = "gat"\n[[runs]]\npreset = "synthetic_smoke"\nlabel = "base"\n'
    )
    figures = {0: 0.5, 1: 7.5, 2: -3, 3: float("nan")}
    for seed, value in figures.items():
        run = folder / f"runs/gat/seed-{seed}"
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps({"status": "finished", "test_acc_clean": value, "test_acc_adv": 0.25}))
    broken = folder / "runs/base/seed-0"
    broken.mkdir(parents=True)
    (broken / "summary.json").write_text("{")
    report = build_report(folder)
    gat = next(row for row in report.table if row.label == "gat")
    assert (gat.test_acc_clean.mean, gat.test_acc_clean.n) == (0.5, 1)  # 7.5, -3 and NaN left out, not averaged in
    assert (gat.test_acc_adv.mean, gat.test_acc_adv.n) == (0.25, 4)
    for seed, shown in ((1, "7.5"), (2, "-3"), (3, "nan")):
        expected = f"{folder}/runs/gat/seed-{seed}/summary.json: test_acc_clean = {shown} is not an accuracy"
        assert any(line.startswith(expected) for line in report.skipped), report.skipped
    assert f"{broken}/summary.json: not a readable run summary (JSON with a status); its run is left out" in report.skipped


def test_report_skips_evaluation_rows_that_are_not_accuracies(tmp_path: Path) -> None:
    from gat_tui.sweep.report import _evaluation_rows

    record = tmp_path / "seed-0.json"
    for accuracy in (1.7, -0.1, float("nan")):
        record.write_text(json.dumps({"results": [{"attack": "fgsm", "eps": 0.1, "accuracy": accuracy, "pert_l2": 0.2}]}))
        with pytest.raises(ValueError, match="accuracy in \\[0, 1\\]"):
            _evaluation_rows(record)


def test_export_leaves_out_damaged_figures_and_removes_a_killed_exports_folder(tmp_path: Path) -> None:
    from gat_tui.runs.robustbench import export_robustbench

    run = tmp_path / "run"
    assert Trainer(TrainingRequest(tiny(), run)).run().status == "finished"
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "test_acc_clean": 1.7}))
    (run / "evals").mkdir()
    rows = [{"attack": "clean", "eps": 0.0, "accuracy": 0.75, "pert_l2": 0.0},
            {"attack": "autoattack", "eps": 8 / 255, "accuracy": 1.7, "pert_l2": 0.1, "norm": "linf", "n": 100, "version": "standard"}]
    (run / "evals/edited.json").write_text(json.dumps({"checkpoint": str(run / "checkpoints/best.safetensors"), "split": "test", "results": rows}))
    stale = tmp_path / ".out.abc123"  # what a killed export of `out` leaves
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    card = export_robustbench(run, tmp_path / "out")
    assert card["clean_acc"] is None and card["autoattack_acc"] is None  # was "170.00"
    assert any(f"{run / 'summary.json'}: test_acc_clean = 1.7 is not an accuracy" in note for note in card["notes"])
    assert any("edited.json" in note and "autoattack accuracy 1.7 is not a fraction in [0, 1]" in note for note in card["notes"])
    assert not stale.exists()


# -- the image folder of a run -----------------------------------------------------------------


def _imagefolder_config(path: str) -> RunConfig:
    base = tiny()
    return RunConfig(
        name="folder", method="baseline", device="cpu",
        data=DataConfig(dataset="imagefolder", path=path, image_size=8, val_size=2, batch_size=4),
        train=TrainConfig(epochs=1, log_every=2), eval=base.eval,
    )


def _write_image_folder(root: Path) -> None:
    def write(path: Path, label: int) -> None:
        Image.fromarray(np.full((8, 8, 3), 60 + 120 * label + int(path.stem), dtype=np.uint8)).save(path)

    _image_folder(root, write)


def test_a_relative_data_path_is_stored_absolute_so_resume_works_from_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_image_folder(tmp_path / "work/images")
    monkeypatch.chdir(tmp_path / "work")
    run = tmp_path / "run"
    assert Trainer(TrainingRequest(_imagefolder_config("images"), run)).run().status == "finished"
    assert load_preset(run / "config.toml").data.path == str(tmp_path / "work/images")
    monkeypatch.chdir(tmp_path)  # another working folder: "images" is not here
    finished = Trainer(resume_request(run, ["train.epochs=2"])).run()
    assert finished.status == "finished" and finished.epochs_done == 2, finished.message


def test_resume_warns_when_the_image_folder_changed(tmp_path: Path) -> None:
    from gat_tui.events import Event, LogMessage

    _write_image_folder(tmp_path / "images")
    run = tmp_path / "run"
    assert Trainer(TrainingRequest(_imagefolder_config(str(tmp_path / "images")), run)).run().status == "finished"

    def warnings_of_resume(epochs: int) -> list[str]:
        events: list[Event] = []
        Trainer(resume_request(run, [f"train.epochs={epochs}"]), subscribers=[events.append]).run()
        return [event.text for event in events if isinstance(event, LogMessage) and event.level == "warning"]

    assert not any("data differs" in text for text in warnings_of_resume(2))  # the same images: no warning
    (tmp_path / "images/train/a/2.png").unlink()
    warnings = warnings_of_resume(3)
    assert any("the data differs from the data last.safetensors was trained on" in text for text in warnings), warnings


# -- messages ----------------------------------------------------------------------------------


def test_eval_of_a_model_on_synthetic_data_validates_and_data_errors_name_data(tmp_path: Path) -> None:
    from gat_tui.robustness.external import ExternalModel, model_config

    config = model_config(ExternalModel("allconv", tmp_path / "w.safetensors", "synthetic", ("num_classes=4", "image_size=16"), None))
    assert (config.data.num_classes, config.data.image_size) == (4, 16)  # failed: val_size 5000 >= train_size 2000
    with pytest.raises(ConfigError, match="^--data 'nokey': expected KEY=VALUE, e.g. --data test_size=500$"):
        model_config(ExternalModel("allconv", tmp_path / "w.safetensors", "synthetic", ("nokey",), None))


# -- sweeps checked whole before they start ----------------------------------------------------


@pytest.mark.parametrize(
    ("second_run", "message"),
    [
        ('preset = "no_such_preset"', "run 'no_such_preset': no_such_preset: no such preset file or preset name"),
        ('preset = "synthetic_smoke"\nlabel = "b"\nset = ["gat.nokey=1"]', "run 'b': "),
        ('preset = "synthetic_smoke"\nlabel = "b"\ngrid = { "train.nokey" = [1, 2] }', "run 'b-nokey=1': "),
        ('preset = "synthetic_smoke"\nlabel = "b"\ntune = { "gat.c_g" = [0.1, -1.0] }', "key 'gat.c_g' = -1.0 is out of range"),
    ],
    ids=["missing-preset", "unknown-set-key", "unknown-grid-key", "bad-tune-value"],
)
def test_every_run_of_a_sweep_is_validated_before_the_first_trains(tmp_path: Path, second_run: str, message: str) -> None:
    from gat_tui.sweep.plan import check_runs

    sweep_file = tmp_path / "late.toml"
    sweep_file.write_text(f'name = "s"\nseeds = 1\n[[runs]]\npreset = "synthetic_smoke"\n[[runs]]\n{second_run}\n')
    with pytest.raises(ConfigError) as raised:
        check_runs(load_sweep(sweep_file))
    assert str(raised.value).startswith(f"{sweep_file}: run '") and message in str(raised.value)


@pytest.mark.slow
def test_a_sweep_with_a_broken_run_trains_nothing(tmp_path: Path, cli: Cli) -> None:
    sweep_file = tmp_path / "late.toml"
    sweep_file.write_text('name = "s"\nseeds = 1\n[[runs]]\npreset = "synthetic_smoke"\n[[runs]]\npreset = "no_such_preset"\n')
    result = cli("sweep", str(sweep_file), "--headless", "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "no_such_preset" in result.stderr, result.stdout + result.stderr
    assert not (tmp_path / "out").exists()  # the first run used to train before the second failed


def test_a_class_folder_that_is_a_link_is_named_when_the_classes_differ(tmp_path: Path) -> None:
    def write(path: Path, label: int) -> None:
        Image.fromarray(np.full((6, 6, 3), 100 * label, dtype=np.uint8)).save(path)

    _image_folder(tmp_path / "data", write)
    elsewhere = tmp_path / "b-images"
    (tmp_path / "data/train/b").rename(elsewhere)
    (tmp_path / "data/train/b").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(DataError, match="only in test/: b; train/b: links to folders, which are not followed"):
        load_splits(DataConfig(dataset="imagefolder", path=str(tmp_path / "data"), val_size=1, image_size=4))
