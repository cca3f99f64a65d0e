"""The command line, run as users run it: the installed `gat-tui` script in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

SCRIPT = Path(sys.executable).parent / "gat-tui"


def gat_tui(*args: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "gat_tui"]
    return subprocess.run(
        command + list(args), cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


def test_synthetic_smoke_end_to_end_writes_the_run_folder_and_beats_chance(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    result = gat_tui("run", "presets/synthetic_smoke.toml", "--headless", "--out", str(out))
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
    again = gat_tui("run", "synthetic_smoke", "--headless", "--out", str(out))
    assert again.returncode == 2 and "already holds a run" in again.stderr


def test_bad_override_names_file_key_value_and_allowed(tmp_path: Path) -> None:
    result = gat_tui("run", "synthetic_smoke", "--headless", "--set", "gat.c_g=-1", "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "synthetic_smoke.toml" in result.stderr and "'gat.c_g'" in result.stderr and ">= 0.0" in result.stderr
    assert not (tmp_path / "x").exists()


def test_presets_lists_and_validates_every_shipped_preset() -> None:
    result = gat_tui("presets")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert listed == {path.stem for path in (REPO_ROOT / "presets").glob("*.toml")}


def test_presets_reports_an_invalid_preset(tmp_path: Path) -> None:
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "broken.toml").write_text('method = "nope"\n')
    result = gat_tui("presets", cwd=tmp_path)
    assert result.returncode == 1 and "INVALID" in result.stdout and "'nope'" in result.stdout


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)


def test_the_command_line_imports_torch_lazily() -> None:
    result = _python("import sys, gat_tui.cli, gat_tui.config, gat_tui.presets\nassert 'torch' not in sys.modules\n")
    assert result.returncode == 0, result.stderr
    assert gat_tui("--help").returncode == 0


def test_the_engine_imports_no_user_interface_library() -> None:
    result = _python(
        "import sys, gat_tui.training.trainer, gat_tui.training.validation, gat_tui.checkpoints, gat_tui.data, gat_tui.methods\n"
        "import gat_tui.runs.folder, gat_tui.events, gat_tui.attacks, gat_tui.models, gat_tui.training.control\n"
        "import gat_tui.training.state, gat_tui.attacks, gat_tui.robustness.evaluate, gat_tui.runs.resume, gat_tui.runs.index\n"
        "import gat_tui.sweep.plan, gat_tui.sweep.runner, gat_tui.sweep.report, gat_tui.sweep.evaluate\n"
        "ui = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'typer'))\n"
        "assert not ui, f'the engine imported {ui}'\n"
    )
    assert result.returncode == 0, result.stderr
