"""Where presets and sweep files are found: package data (so a wheel has them), ./presets first.

The wheel itself is built and installed outside the checkout by `.ci/wheel_check.sh`; these tests
check, without a build, that the package data is complete and that names resolve from a folder
without ./presets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gat_tui.presets as presets_module
from gat_tui.config import ConfigError
from gat_tui.presets import load_named_preset, resolve_preset, resolve_sweep, shipped_presets


def _shipped_files(presets_dir: Path) -> list[Path]:
    files = sorted(path.relative_to(presets_dir) for path in presets_dir.rglob("*.toml"))
    assert len(files) > 20 and Path("paper/table2_cifar10.toml") in files  # the presets and the paper's sweep files
    return files


def test_every_preset_and_sweep_file_is_package_data(presets_dir: Path, repo_root: Path) -> None:
    # readable through importlib.resources from the importable package, byte for byte
    data = resources.files("gat_tui") / "preset_files"
    for relative in _shipped_files(presets_dir):
        assert (data / relative.as_posix()).read_bytes() == (presets_dir / relative).read_bytes(), relative
    # and named by the package-data patterns that put them into the wheel
    patterns = tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gat_tui"]
    package = repo_root / "gat_tui"
    in_wheel = {path.relative_to(package) for pattern in patterns for path in package.glob(pattern)}
    assert in_wheel >= {Path("preset_files") / relative for relative in _shipped_files(presets_dir)}


def test_checkout_presets_folder_is_the_package_data(repo_root: Path, presets_dir: Path) -> None:
    # one home for each preset: README's `gat-tui run presets/NAME.toml` reads the package's file
    assert (repo_root / "presets").resolve() == presets_dir.resolve()


def test_names_resolve_to_the_shipped_files_without_a_presets_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, presets_dir: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_preset("synthetic_smoke").resolve() == (presets_dir / "synthetic_smoke.toml").resolve()
    assert resolve_preset("cifar10_gat.toml").resolve() == (presets_dir / "cifar10_gat.toml").resolve()
    assert resolve_sweep("table2_cifar10").resolve() == (presets_dir / "paper" / "table2_cifar10.toml").resolve()
    assert [path.stem for path in shipped_presets()] == sorted(path.stem for path in presets_dir.glob("*.toml"))
    path, config = load_named_preset("synthetic_smoke", ["train.epochs=1"])
    assert config.name == "synthetic_smoke" and config.train.epochs == 1


def test_presets_in_the_working_folder_override_by_name_and_add_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, presets_dir: Path
) -> None:
    own = tmp_path / "presets"
    (own / "paper").mkdir(parents=True)
    smoke = (presets_dir / "synthetic_smoke.toml").read_text()
    (own / "synthetic_smoke.toml").write_text(smoke.replace('description = "', 'description = "mine: '))
    (own / "my_smoke.toml").write_text(smoke.replace('name = "synthetic_smoke"', 'name = "my_smoke"'))
    (own / "paper" / "smoke_sweep.toml").write_text((presets_dir / "paper" / "smoke_sweep.toml").read_text())
    monkeypatch.chdir(tmp_path)

    assert resolve_preset("synthetic_smoke") == own / "synthetic_smoke.toml"
    assert load_named_preset("synthetic_smoke", [])[1].description.startswith("mine: ")
    assert resolve_preset("cifar10_gat").resolve() == (presets_dir / "cifar10_gat.toml").resolve()  # not in ./presets
    assert resolve_sweep("smoke_sweep") == own / "paper" / "smoke_sweep.toml"
    assert resolve_sweep("table2_cifar10").resolve() == (presets_dir / "paper" / "table2_cifar10.toml").resolve()
    listed = {path.stem: path for path in shipped_presets()}
    assert set(listed) == {path.stem for path in presets_dir.glob("*.toml")} | {"my_smoke"}
    assert listed["synthetic_smoke"] == own / "synthetic_smoke.toml" and listed["my_smoke"] == own / "my_smoke.toml"


def test_nothing_found_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gat_tui.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(presets_module, "PACKAGE_DATA", "no_such_folder")  # a package built without its data
    assert shipped_presets() == []
    with pytest.raises(ConfigError) as refused:
        resolve_preset("synthetic_smoke")
    message = str(refused.value)
    assert "synthetic_smoke: no such preset file or preset name" in message
    assert str(tmp_path / "presets") in message and str(Path("gat_tui", "no_such_folder")) in message
    assert message.endswith("known presets: none found")
    result = CliRunner().invoke(app, ["presets"])
    assert result.exit_code == 2
    assert "no presets found" in result.output and str(tmp_path / "presets") in result.output and "no_such_folder" in result.output


def test_an_unknown_sweep_name_is_refused_with_the_known_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gat_tui.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["sweep", "table9_mnist", "--headless"])
    assert result.exit_code == 2
    assert "table9_mnist: no such sweep file or sweep name" in result.output
    assert str(tmp_path / "presets") in result.output and "table2_cifar10" in result.output and "smoke_sweep" in result.output


@pytest.mark.slow
def test_a_zipped_package_extracts_its_presets(tmp_path: Path, presets_dir: Path, repo_root: Path) -> None:
    # importlib.resources gives a zipped package's data as zip entries, not files: they are copied out once
    archive = tmp_path / "gat_tui.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in (repo_root / "gat_tui").rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                bundle.write(path, path.relative_to(repo_root).as_posix())
    (tmp_path / "empty").mkdir()
    code = (
        "import sys, gat_tui, gat_tui.presets as p\n"
        "assert gat_tui.__file__.startswith(sys.argv[1]), gat_tui.__file__\n"
        "folder = p.shipped_dir()\n"
        "print(folder)\n"
        "print(' '.join(x.stem for x in p.shipped_presets()))\n"
        "print(p.resolve_preset('synthetic_smoke').read_text() == (folder / 'synthetic_smoke.toml').read_text())\n"
        "print(p.resolve_sweep('smoke_sweep').relative_to(folder))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(archive)], cwd=tmp_path / "empty", capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(archive)},
    )
    assert result.returncode == 0, result.stderr
    folder, names, same, sweep = result.stdout.splitlines()
    assert names.split() == sorted(path.stem for path in presets_dir.glob("*.toml"))
    assert same == "True" and sweep == "paper/smoke_sweep.toml"
    assert not Path(folder).is_relative_to(archive) and not Path(folder).exists()  # removed when the process ended
