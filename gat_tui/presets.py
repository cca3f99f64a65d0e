"""Finding the shipped presets and resolving a PRESET argument (a path or a preset name)."""

from __future__ import annotations

from pathlib import Path

from gat_tui.config import ConfigError, RunConfig, load_preset


def preset_dirs() -> list[Path]:
    """Where preset names are looked up: ./presets, then the presets beside the package source."""
    candidates = [Path.cwd() / "presets", Path(__file__).resolve().parent.parent / "presets"]
    unique: list[Path] = []
    for candidate in candidates:
        if candidate.is_dir() and candidate.resolve() not in [u.resolve() for u in unique]:
            unique.append(candidate)
    return unique


def shipped_presets() -> list[Path]:
    """The preset files of the first presets folder found, sorted by name."""
    for directory in preset_dirs():
        return sorted(directory.glob("*.toml"))
    return []


def resolve_preset(argument: str) -> Path:
    """A path to an existing file, or the name of a shipped preset (with or without .toml)."""
    path = Path(argument).expanduser()
    if path.is_file():
        return path
    name = path.name if path.suffix == ".toml" else f"{path.name}.toml"
    if path.parent == Path("."):
        for directory in preset_dirs():
            if (directory / name).is_file():
                return directory / name
    if path.is_dir():  # after the name lookup: a folder ./cifar10_gat must not hide the shipped preset
        raise ConfigError(f"{argument}: is a folder, not a preset file")
    known = ", ".join(p.stem for p in shipped_presets()) or "none found"
    raise ConfigError(f"{argument}: no such preset file or preset name; shipped presets: {known}")


def load_named_preset(argument: str, overrides: list[str]) -> tuple[Path, RunConfig]:
    """The preset file an argument names, and its validated config with `KEY=VALUE` overrides applied."""
    path = resolve_preset(argument)
    return path, load_preset(path, overrides)
