"""MkDocs hook: pages and files generated from the project itself when the site is built.

- `reference/config.md`: every preset key with its type, default, limits and help text, read from
  the config schema (`gat_tui/config.py`, the fields the validator checks), so it cannot drift.
- `captures/*.svg`: the dashboard's SVG snapshots (tests/dashboard/__snapshots__), the very
  screens the snapshot tests compare, under plain names.

Imports only `gat_tui.config` (no torch), so the docs build needs neither torch nor an install.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = ROOT / "tests" / "dashboard" / "__snapshots__" / "test_snapshots"
# each capture the docs show: its name on the site, and the snapshot test's file
CAPTURES = {
    "training_120x40.svg": "test_training_screen[120x40].svg",
    "training_80x24.svg": "test_training_screen[80x24].svg",
    "start_120x40.svg": "test_start_screen[120x40].svg",
    "runs_120x40.svg": "test_runs_screen[120x40].svg",
    "sweep_120x40.svg": "test_sweep_screen[120x40].svg",
}


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, "reference/config.md", content=config_reference()))
    for name, snapshot in CAPTURES.items():
        files.append(File.generated(config, f"captures/{name}", abs_src_path=str(SNAPSHOTS / snapshot)))
    return files


# --- the configuration reference --------------------------------------------------------------


def config_reference() -> str:
    sys.path.insert(0, str(ROOT))
    from gat_tui.config import RunConfig
    from gat_tui.toml_schema import schema_hints, unwrap_optional

    lines = [
        "# Configuration reference",
        "",
        "Every key of a preset (and of a run's `config.toml`), generated from the config schema",
        "(`gat_tui/config.py`) when this site is built: the same fields the validator checks. Set them",
        "in a preset file, with `gat-tui run PRESET --set KEY=VALUE` (dotted keys, e.g. `gat.c_g=0.01`),",
        "with `overrides={...}` in [`gt.train`](../python-api.md), or in a sweep's `set`, `grid` and `tune`.",
        "A key left out takes its default. `gat-tui schema` prints the same as a JSON Schema",
        "([Presets](../presets.md#editor-support-the-json-schema)).",
    ]
    sections: list[tuple[str, type, str]] = []  # dotted name, schema, the line under its heading
    rows = []
    hints = schema_hints(RunConfig)
    for spec_field in dataclasses.fields(RunConfig):
        inner = unwrap_optional(hints[spec_field.name])
        if dataclasses.is_dataclass(inner):
            sections.append((spec_field.name, typing.cast(type, inner), ""))
        else:
            rows.append(_row(spec_field, hints[spec_field.name]))
    lines += ["", "## Top level", "", *_table(rows)]
    while sections:
        name, schema, intro = sections.pop(0)
        rows = []
        schema_fields = schema_hints(schema)
        nested = []
        for spec_field in dataclasses.fields(schema):
            inner = unwrap_optional(schema_fields[spec_field.name])
            if dataclasses.is_dataclass(inner):
                nested.append((f"{name}.{spec_field.name}", typing.cast(type, inner), f"An inline table: {spec_field.metadata['help']}."))
            rows.append(_row(spec_field, schema_fields[spec_field.name]))
        lines += ["", f"## [{name}]", "", *([intro, ""] if intro else []), *_table(rows)]
        sections[:0] = nested
    return "\n".join(lines) + "\n"


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    return ["| key | type | default | allowed | meaning |", "| --- | --- | --- | --- | --- |"] + [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows
    ]


def _row(spec_field: dataclasses.Field[Any], hint: Any) -> tuple[str, ...]:
    from gat_tui.toml_schema import toml_value, unwrap_optional

    spec = spec_field.metadata
    if spec_field.default is not dataclasses.MISSING:
        default = "(none)" if spec_field.default is None else f"`{toml_value(spec_field.default)}`"
    elif spec_field.default_factory is not dataclasses.MISSING:
        default = "(table)"
    else:
        default = "required"
    return (f"`{spec_field.name}`", _type_name(unwrap_optional(hint)), default, _allowed(spec), spec.get("help", ""))


def _type_name(hint: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if dataclasses.is_dataclass(hint):
        return "table"
    if typing.get_origin(hint) is tuple:
        return f"array of {names.get(typing.get_args(hint)[0], 'value')}s"
    return names.get(hint, "any")


def _allowed(spec: typing.Mapping[str, Any]) -> str:
    parts = []
    if spec.get("choices"):
        parts.append("one of " + ", ".join(f"`{choice}`" for choice in spec["choices"]))
    if spec.get("pattern"):
        parts.append(spec["pattern"][1])
    if spec.get("min") is not None:
        parts.append(f"{'>' if spec.get('min_exclusive') else '≥'} {_number(spec['min'])}")
    if spec.get("max") is not None:
        parts.append(f"≤ {_number(spec['max'])}")
    if spec.get("min_items") is not None:
        parts.append(f"at least {spec['min_items']} item(s)")
    return "; ".join(parts)


def _number(value: float) -> str:
    """A limit as written in a preset: whole numbers in full (2**63 - 1, not 9.22337e+18)."""
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(value)
