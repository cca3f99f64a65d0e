"""Finding presets and sweep files, and resolving a PRESET argument (a path or a preset name).

The shipped presets are package data, `gat_tui/preset_files/*.toml`, with the paper's sweep files
in its `paper/`, read through importlib.resources so that an installed wheel has them wherever it
is run. A `presets` folder in the working folder comes first: a file there overrides the shipped
preset of the same name and adds its own. (In a checkout, `./presets` is a link to the package data.)
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from gat_tui.config import ConfigError, RunConfig, load_preset

PACKAGE_DATA = "preset_files"  # the shipped presets, inside the gat_tui package
SWEEPS = "paper"  # the sweep files, a folder of each presets folder


def _working_presets() -> Path:
    return Path.cwd() / "presets"


def _shipped_data() -> Traversable:
    return resources.files("gat_tui") / PACKAGE_DATA


@cache
def _extracted() -> Path:
    """The shipped presets of a package that is not on disk (a zipped one), copied once into a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="gat-tui-presets-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)

    def copy(source: Traversable, target: Path) -> None:
        for item in source.iterdir():
            if item.is_dir():
                (target / item.name).mkdir()
                copy(item, target / item.name)
            elif item.name.endswith(".toml"):
                (target / item.name).write_bytes(item.read_bytes())

    copy(_shipped_data(), folder)
    return folder


def shipped_dir() -> Path | None:
    """The presets shipped with the package as a folder on disk, or None if the package has none."""
    data = _shipped_data()
    if not data.is_dir():
        return None
    # a package on disk (a checkout, an installed wheel) gives its folder itself; a zipped one is extracted
    return data if isinstance(data, Path) else _extracted()


def searched_places() -> str:
    """Where presets are looked for, in order, for messages that find none."""
    return f"{_working_presets()} and the package's {_shipped_data()}"


def preset_dirs() -> list[Path]:
    """Where preset names are looked up, in order: ./presets (the user's own, which win), then the shipped presets."""
    candidates = [_working_presets(), shipped_dir()]
    unique: list[Path] = []
    for candidate in candidates:
        if candidate is not None and candidate.is_dir() and candidate.resolve() not in [u.resolve() for u in unique]:
            unique.append(candidate)
    return unique


def _by_name(subfolder: str) -> dict[str, Path]:
    """Each name's file in `subfolder` of the presets folders, from the first folder that has it."""
    by_name: dict[str, Path] = {}
    for directory in preset_dirs():
        for path in (directory / subfolder).glob("*.toml"):
            by_name.setdefault(path.stem, path)
    return by_name


def shipped_presets() -> list[Path]:
    """Every preset by name, sorted: ./presets' own and the shipped ones, ./presets winning a name both have."""
    by_name = _by_name(".")
    return [by_name[name] for name in sorted(by_name)]


def _lookup(argument: str, subfolder: str, kind: str) -> Path:
    """A path to an existing file, or the name (with or without .toml) of a file in `subfolder` of the presets folders."""
    path = Path(argument).expanduser()
    if path.is_file():
        return path
    name = path.name if path.suffix == ".toml" else f"{path.name}.toml"
    if path.parent == Path("."):
        for directory in preset_dirs():
            if (directory / subfolder / name).is_file():
                return directory / subfolder / name
    if path.is_dir():  # after the name lookup: a folder ./cifar10_gat must not hide the shipped preset
        raise ConfigError(f"{argument}: is a folder, not a {kind} file")
    known = ", ".join(sorted(_by_name(subfolder))) or "none found"
    places = searched_places() if subfolder == "." else f"{subfolder}/ of {searched_places()}"
    raise ConfigError(f"{argument}: no such {kind} file or {kind} name (names are looked up in {places}); known {kind}s: {known}")


def resolve_preset(argument: str) -> Path:
    """A path to an existing file, or the name of a preset in ./presets or the shipped ones (with or without .toml)."""
    return _lookup(argument, ".", "preset")


def resolve_sweep(argument: str) -> Path:
    """A path to an existing sweep file, or the name of one in ./presets/paper or the shipped `paper/` (e.g. `smoke_sweep`)."""
    return _lookup(argument, SWEEPS, "sweep")


def load_named_preset(argument: str, overrides: list[str]) -> tuple[Path, RunConfig]:
    """The preset file an argument names, and its validated config with `KEY=VALUE` overrides applied."""
    path = resolve_preset(argument)
    return path, load_preset(path, overrides)
