"""The command line, run as users run it: the installed `gat-tui` script in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import Cli


def test_synthetic_smoke_end_to_end_writes_the_run_folder_and_beats_chance(tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "smoke"
    result = cli("run", "presets/synthetic_smoke.toml", "--headless", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "run finished" in result.stdout
    for name in ("config.toml", "metrics.jsonl", "summary.json", "checkpoints/last.safetensors", "checkpoints/best.safetensors"):
        assert (out / name).is_file(), name
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines if line["event"] == "epoch"] == [1, 2, 3]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished"
    chance = 1 / 4  # the smoke preset has 4 balanced classes
    assert summary["test_acc_clean"] > chance + 0.25
    # a second run into the same folder is refused rather than mixed into it
    again = cli("run", "synthetic_smoke", "--headless", "--out", str(out))
    assert again.returncode == 2 and "already holds a run" in again.stderr


def test_without_a_terminal_run_and_resume_train_headless_and_say_so(tmp_path: Path, cli: Cli) -> None:
    # no --headless, output captured: the dashboard would write escape codes into the pipe and
    # then wait for a key nobody can press
    out = tmp_path / "piped"
    small = ("--set", "data.train_size=128", "--set", "data.val_size=32", "--set", "data.test_size=32")
    result = cli("run", "synthetic_smoke", "--epochs", "1", *small, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "standard output is not a terminal: running headless, as with --headless" in result.stderr
    assert "run finished" in result.stdout and "\x1b[?1049h" not in result.stdout  # no alternate screen
    resumed = cli("resume", str(out), "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "running headless" in resumed.stderr and "run finished" in resumed.stdout
    assert json.loads((out / "summary.json").read_text())["epochs_done"] == 2


def test_the_bare_dashboard_without_a_terminal_says_how_to_train_instead(cli: Cli) -> None:
    result = cli()
    assert result.returncode == 2
    assert "the dashboard needs a terminal (standard output is not a terminal)" in result.stderr
    assert "gat-tui run PRESET --headless" in result.stderr


def test_bad_override_names_file_key_value_and_allowed(tmp_path: Path, cli: Cli) -> None:
    result = cli("run", "synthetic_smoke", "--headless", "--set", "gat.c_g=-1", "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "synthetic_smoke.toml" in result.stderr and "'gat.c_g'" in result.stderr and ">= 0.0" in result.stderr
    assert not (tmp_path / "x").exists()


def test_presets_lists_and_validates_every_shipped_preset(cli: Cli, presets_dir: Path) -> None:
    result = cli("presets")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert listed == {path.stem for path in presets_dir.glob("*.toml")}


def test_presets_reports_an_invalid_preset(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "broken.toml").write_text('method = "nope"\n')
    result = cli("presets", cwd=tmp_path)
    assert result.returncode == 1 and "INVALID" in result.stdout and "'nope'" in result.stdout


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_the_command_line_imports_torch_lazily(cli: Cli) -> None:
    result = _python("import sys, gat_tui.cli, gat_tui.config, gat_tui.presets\nassert 'torch' not in sys.modules\n")
    assert result.returncode == 0, result.stderr
    assert cli("--help").returncode == 0


def test_the_engine_imports_no_user_interface_library() -> None:
    # every module outside the user interfaces, found by walking the package (no hand-kept list)
    result = _python(
        "import importlib, pkgutil, sys, gat_tui\n"
        "ui = ('gat_tui.cli', 'gat_tui.console', 'gat_tui.dashboard', 'gat_tui.__main__')\n"
        # walk_packages would import the UI packages to look inside them: descend by hand instead
        "def walk(path, prefix):\n"
        "    for m in pkgutil.iter_modules(path, prefix):\n"
        "        if m.name in ui: continue\n"
        "        yield m.name\n"
        "        if m.ispkg: yield from walk(importlib.import_module(m.name).__path__, m.name + '.')\n"
        "engine = list(walk(gat_tui.__path__, 'gat_tui.'))\n"
        "assert len(engine) > 30, engine\n"
        "for name in engine: importlib.import_module(name)\n"
        "ui = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'typer'))\n"
        "assert not ui, f'the engine imported {ui}'\n"
    )
    assert result.returncode == 0, result.stderr


def test_piped_headless_output_is_one_timestamped_record_a_line_with_paths_whole(tmp_path: Path, cli: Cli) -> None:
    # a pipe used to be hard-wrapped at 80 columns, splitting paths (`…/best.safetenso` / `rs`)
    import re

    out = tmp_path / ("cifar100_dropout_gat-20261207-090000-" + "long" * 12)
    small = ("--set", "data.train_size=128", "--set", "data.val_size=32", "--set", "data.test_size=32", "--set", "train.log_every=1")
    result = cli("run", "synthetic_smoke", "--headless", "--epochs", "1", *small, "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) >= 8 and max(len(line) for line in lines) > 120  # long records stay on one line
    stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S")
    assert all(stamp.match(line) for line in lines), [line for line in lines if not stamp.match(line)]
    with_path = [line for line in lines if out.name[:20] in line]
    assert len(with_path) >= 3 and all(str(out) in line for line in with_path), with_path
    assert any(line.endswith(f"gat-tui resume {out}") for line in lines)
    assert [line.split()[5] for line in lines if " step " in line and "epoch 1 step" in line] == ["1", "2", "3"]  # every report (96 images: 3 steps)


def test_help_shows_flags_without_a_value_type(cli: Cli) -> None:
    result = cli("run", "--help", env={"COLUMNS": "120"})
    assert result.returncode == 0
    headless = next(line for line in result.stdout.splitlines() if "--headless" in line)
    assert "<bool>" not in result.stdout, headless  # `--headless <bool>` read as an option that takes a value
    assert "<int>" in result.stdout  # options that take one still say what
