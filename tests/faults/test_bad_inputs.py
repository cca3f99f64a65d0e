"""Bad inputs and broken files, as users meet them: a clean one-paragraph error, never a traceback.

Each case failed on the code before the reliability fixes, with a traceback or with results
written somewhere they were lost; the table asserts the exit code, the culprit named in the
message, and no "Traceback".
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import Cli
from PIL import Image
from safetensors.torch import load_file, save_file

from gat_tui.config import DataConfig, EvalConfig, GatConfig, RunConfig, TrainConfig
from gat_tui.data import DataError, load_splits
from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer


def tiny(method: str = "gat") -> RunConfig:
    return RunConfig(
        name=f"tiny_{method}",
        method=method,
        device="cpu",
        data=DataConfig(dataset="synthetic", image_size=8, num_classes=3, train_size=64, val_size=16, test_size=16, batch_size=16),
        train=TrainConfig(epochs=1, log_every=2),
        gat=GatConfig(lr_g=1e-3),
        eval=EvalConfig(panel_size=0),
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    assert Trainer(TrainingRequest(tiny(), root / "good")).run().status == "finished"
    return root


def _rewrite(checkpoint: Path, tensors: Callable[[dict], None] | None = None, metadata: Callable[[dict], None] | None = None) -> None:
    from gat_tui.checkpoints import read_checkpoint

    loaded, meta = read_checkpoint(checkpoint)
    values = dict(load_file(str(checkpoint)))
    assert values.keys() == loaded.keys()
    if tensors is not None:
        tensors(values)
    if metadata is not None:
        metadata(meta)
    save_file(values, str(checkpoint), metadata=meta)


def _progress(change: dict) -> Callable[[dict], None]:
    def edit(meta: dict) -> None:
        state = json.loads(meta["training_state"])
        state["progress"].update(change)
        meta["training_state"] = json.dumps(state)

    return edit


def _lr(value: object) -> Callable[[dict], None]:
    def edit(meta: dict) -> None:
        state = json.loads(meta["training_state"])
        state["param_groups"]["classifier"][0]["lr"] = value
        meta["training_state"] = json.dumps(state)

    return edit


def _cursor(position: object) -> Callable[[dict], None]:
    def edit(meta: dict) -> None:
        state = json.loads(meta["training_state"])
        state["cursors"]["train"]["position"] = position
        meta["training_state"] = json.dumps(state)

    return edit


def _group(**change: object) -> Callable[[dict], None]:
    def edit(meta: dict) -> None:
        state = json.loads(meta["training_state"])
        state["param_groups"]["classifier"][0].update(change)
        meta["training_state"] = json.dumps(state)

    return edit


def _step(value: float) -> Callable[[dict], None]:
    def edit(values: dict) -> None:
        values["optimizer.classifier.0.step"] = torch.tensor(value)

    return edit


def _shape(change: dict) -> Callable[[dict], None]:
    def edit(meta: dict) -> None:
        meta["shape"] = json.dumps({**json.loads(meta["shape"]), **change})

    return edit


def _first_moment(values: dict) -> None:
    key = next(k for k in values if k.startswith("optimizer.classifier.") and k.endswith("exp_avg"))
    values[key] = torch.zeros(3, 3)


def _as(dtype: torch.dtype) -> Callable[[dict], None]:
    def edit(values: dict) -> None:
        values["classifier.features.0.weight"] = values["classifier.features.0.weight"].to(dtype)

    return edit


def _nan(values: dict) -> None:
    values["classifier.features.0.weight"][0, 0, 0, 0] = float("nan")


# (id, command ("eval" or "resume"), tensor edit, metadata edit, fragments of the message)
CHECKPOINT_FAULTS = [
    ("num_classes-5", "eval", None, _shape({"num_classes": -5}), ["num_classes = -5", "expected an integer >= 2"]),
    ("dropout-5", "eval", None, _shape({"dropout": 5.0}), ["dropout = 5.0", "[0, 0.95]"]),
    ("no-config", "eval", None, lambda meta: meta.pop("config_toml"), ["no 'config_toml'"]),
    ("float64", "eval", _as(torch.float64), None, ["classifier.features.0.weight", "dtype torch.float64"]),
    ("int32", "eval", _as(torch.int32), None, ["classifier.features.0.weight", "dtype torch.int32"]),
    ("nan-weight", "eval", _nan, None, ["classifier.features.0.weight", "NaN or infinite"]),
    ("moment-shape", "resume", _first_moment, None, ["exp_avg", "has shape (3, 3)"]),
    ("lr-text", "resume", None, _lr("fast"), ["lr = 'fast'"]),
    ("negative-epoch", "resume", None, _progress({"epoch": -5, "epochs_done": -5}), ["epoch = -5"]),
    ("unknown-counter", "resume", None, _progress({"laps": 3}), ["unknown counter 'laps'"]),
    ("no-config-resume", "resume", None, lambda meta: meta.pop("config_toml"), ["no 'config_toml'"]),
    # hand-edited training state: NaN training, a "finished" epoch at step 11, tracebacks mid-run (issue 25)
    ("cursor-negative", "resume", None, _cursor(-5), ["position -5"]),
    ("cursor-huge", "resume", None, _cursor(10**9), ["position 1000000000"]),
    ("cursor-fraction", "resume", None, _cursor(2.5), ["position 2.5"]),
    ("cursor-text", "resume", None, _cursor("abc"), ["position 'abc'"]),
    ("betas-text", "resume", None, _group(betas="abc"), ["betas = 'abc'"]),
    ("betas-one", "resume", None, _group(betas=[1, 1]), ["betas = [1, 1]"]),
    ("amsgrad", "resume", None, _group(amsgrad=True), ["amsgrad = True"]),
    ("step-huge", "resume", _step(1e30), None, ["step count", "1.0000000150474662e+30"]),
]


@pytest.mark.slow
@pytest.mark.parametrize(("command", "tensors", "metadata", "fragments"), [case[1:] for case in CHECKPOINT_FAULTS], ids=[case[0] for case in CHECKPOINT_FAULTS])
def test_a_damaged_checkpoint_is_refused_with_the_culprit_named(
    runs: Path, tmp_path: Path, cli: Cli, command: str, tensors, metadata, fragments: list[str]  # type: ignore[no-untyped-def]
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(runs / "good", run_dir)
    checkpoint = run_dir / "checkpoints" / ("best.safetensors" if command == "eval" else "last.safetensors")
    _rewrite(checkpoint, tensors, metadata)
    args = ["eval", str(checkpoint), "--limit", "8", "--attack", "fgsm", "--eps", "0.01"] if command == "eval" else ["resume", str(run_dir), "--headless", "--epochs", "2"]
    result = cli(*args)
    output = result.stdout + result.stderr
    assert result.returncode in (1, 2), output
    assert "Traceback" not in output
    assert str(checkpoint) in output
    for fragment in fragments:
        assert fragment in output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["test_acc_clean"] is not None, "the finished run's figures were replaced"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--eps", "inf"], "'inf' is not a finite size"),
        (["--eps", "nan"], "'nan' is not a finite size"),
        (["--eps", "-1"], "'-1' is not a finite size"),
        (["--pgd-step-size", "nan", "--attack", "pgd-l2"], "--pgd-step-size nan"),
        (["--pgd-step-size", "-1", "--attack", "pgd-l2"], "--pgd-step-size -1.0"),
    ],
)
def test_eval_refuses_sizes_that_are_not_finite_and_positive(runs: Path, cli: Cli, args: list[str], fragment: str) -> None:
    result = cli("eval", str(runs / "good"), *args)
    assert result.returncode == 2 and fragment in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_output_paths_are_checked_before_the_work(runs: Path, tmp_path: Path, cli: Cli) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    result = cli("eval", str(runs / "good"), "--json", str(folder))
    assert result.returncode == 2 and "--json" in result.stderr and "is a folder" in result.stderr
    assert "accuracy" not in result.stdout, "it evaluated before refusing the output path"
    result = cli("eval", str(runs / "good"), "--json", str(a_file / "out.json"))
    assert result.returncode == 2 and "is a file, so no file can be written below it" in result.stderr
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "sweep.toml").write_text('name = "s"\nseeds = 1\n[[runs]]\npreset = "synthetic_smoke"\n')
    for option, target, fragment in (
        ("--markdown", folder, "is a folder"),
        ("--json", a_file / "x.json", "is a file"),
        ("--png", a_file, "is a file; expected a folder"),
    ):
        result = cli("report", str(sweep), option, str(target))
        assert result.returncode == 2 and option in result.stderr and fragment in result.stderr, result.stderr


BAD_RUN_FOLDERS: list[tuple[str, Callable[[Path], None], str | None]] = [
    ("summary-list", lambda run: (run / "summary.json").write_text("[]"), None),
    ("metrics-list-line", lambda run: (run / "metrics.jsonl").open("a").write("[1, 2]\n"), None),
    ("epoch-seven", lambda run: (run / "metrics.jsonl").open("a").write('{"event": "epoch", "epoch": "seven"}\n'), None),
    ("metrics-not-utf8", lambda run: (run / "metrics.jsonl").write_bytes(b"\xff\xfe\x00bad"), "not UTF-8"),
    ("config-not-utf8", lambda run: (run / "config.toml").write_bytes(b"name = \"\xff\"\n"), "config.toml: cannot be read"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("damage", "warning"), [case[1:] for case in BAD_RUN_FOLDERS], ids=[case[0] for case in BAD_RUN_FOLDERS])
def test_runs_lists_the_rest_when_one_folder_is_broken(runs: Path, tmp_path: Path, cli: Cli, damage, warning: str | None) -> None:  # type: ignore[no-untyped-def]
    listing_dir = tmp_path / "runs"
    shutil.copytree(runs / "good", listing_dir / "good")
    shutil.copytree(runs / "good", listing_dir / "broken")
    damage(listing_dir / "broken")
    result = cli("runs", "--dir", str(listing_dir), env={"COLUMNS": "250"})
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert str(listing_dir / "good") in result.stdout
    if warning is not None:
        assert "warning: skipped" in result.stderr and str(listing_dir / "broken") in result.stderr and warning in result.stderr


@pytest.mark.slow
def test_report_skips_broken_files_with_a_warning(tmp_path: Path, cli: Cli, tiny_sweep: Callable[[Path], Path]) -> None:
    out = tmp_path / "out"
    assert cli("sweep", str(tiny_sweep(tmp_path)), "--headless", "--out", str(out), "--seeds", "1").returncode == 0
    (out / "runs/gat/seed-abc").mkdir()
    (out / "runs/baseline/seed-0/summary.json").write_text("[]")
    bad_eval = out / "evals/fgm/gat/seed-0.json"
    record = json.loads(bad_eval.read_text())
    record["results"][1] = {"attack": "fgm-l2", "eps": "big"}
    bad_eval.write_text(json.dumps(record))
    result = cli("report", str(out))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "seed-abc: not a seed folder" in result.stderr
    assert "seed-0.json: results[1]" in result.stderr
    assert "gat" in result.stdout and "over one seed" in result.stdout  # the rest is reported


def _png(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((10, 10, 3), colour, dtype=np.uint8)).save(path)


def test_an_image_folder_of_one_class_is_refused(tmp_path: Path) -> None:
    for split in ("train", "test"):
        for index in range(4):
            _png(tmp_path / "data" / split / "cat" / f"{index}.png", (200, 0, 0))
    config = DataConfig(dataset="imagefolder", path=str(tmp_path / "data"), val_size=1, image_size=8)
    with pytest.raises(DataError, match="only one class folder"):
        load_splits(config)


def test_links_in_an_image_folder_never_relabel_images(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for split in ("train", "test"):
        for name, colour in (("cat", (200, 0, 0)), ("dog", (0, 200, 0))):
            for index in range(3):
                _png(root / split / name / f"{index}.png", colour)
        # a link from one class into another, and a link back to the data set's root: a loop
        (root / split / "cat" / "dogs").symlink_to(root / split / "dog", target_is_directory=True)
        (root / split / "dog" / "loop").symlink_to(root, target_is_directory=True)
    splits = load_splits(DataConfig(dataset="imagefolder", path=str(root), val_size=1, image_size=8))
    assert splits.class_names == ("cat", "dog")
    images = torch.cat([splits.train_images, splits.val_images, splits.test_images])
    labels = torch.cat([splits.train_labels, splits.val_labels, splits.test_labels])
    assert images.shape[0] == 12  # every image once: no link followed
    red = images[:, 0].float().mean(dim=(1, 2)) > images[:, 1].float().mean(dim=(1, 2))
    assert torch.equal(red, labels == 0), "an image was labelled with another class"

