"""A schema-agnostic validator of TOML tables against trees of frozen dataclasses.

A schema is a frozen dataclass whose fields are declared with `setting(default, help, ...)`:
a default (or `REQUIRED`), a help text saying what the key means and in what unit, and its
limits (`min`/`max`, `choices`, `pattern`, `min_items`). The field's type annotation says
what TOML value it takes:

    bool, int, float, str    a TOML scalar (bool is refused where a number is meant, and back)
    T | None                 T, or absent from the table (TOML has no null)
    tuple[T, ...]            a TOML array; limits apply to each item, `min_items` to its length
    dict[str, T]             a table of free keys (e.g. run labels); limits apply to each value
    another schema class     a sub-table [section]; `tuple[Schema, ...]` is an array [[section]]
    Any                      any TOML value, taken as is: the hook for a caller that checks it
                             itself (a sweep's grid values become overrides checked later)

`build` turns a parsed table into the dataclass tree, refusing the first fault with one
`SchemaError` that names where (a file), the dotted key, the value and what is allowed;
`to_toml` writes a tree back with each key's help as a comment; `parse_override` and
`set_dotted` apply a `KEY=VALUE` override to a parsed table before it is built.

Imports nothing else of gat_tui: it sits at the bottom layer, under the run configuration.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, Field, field, fields
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# A field's default when the key must be given: `setting(REQUIRED, "...")`.
REQUIRED: Any = MISSING

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_PLURAL_NAMES = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}


class SchemaError(ValueError):
    """A table or override that does not validate; the message names where, key, value and what is allowed."""


def setting(
    default: Any,
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    min_exclusive: bool = False,
    choices: tuple[str, ...] | None = None,
    pattern: tuple[str, str] | None = None,
    min_items: int | None = None,
) -> Any:
    """A schema field: its default (`REQUIRED` for none), help text and limits.

    `pattern` is (regular expression the whole string must match, its description for the
    error message). A mutable default (a dict or list) is copied for each instance.
    """
    metadata = {
        "help": help, "min": min, "max": max, "min_exclusive": min_exclusive,
        "choices": choices, "pattern": pattern, "min_items": min_items,
    }
    if isinstance(default, (dict, list)):
        return field(default_factory=functools.partial(type(default), default), metadata=metadata)
    return field(default=default, metadata=metadata)


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of `path`; any fault reading it is a SchemaError naming the file (`what`: 'preset')."""
    where = str(path)
    if path.is_dir():  # checked first: reading a folder fails differently per platform
        raise SchemaError(f"{where}: is a folder, not a {what} file")
    try:
        return path.read_text(encoding="utf-8-sig")  # a byte-order mark (some Windows editors write one) is not TOML
    except FileNotFoundError:
        raise SchemaError(f"{where}: no such {what} file") from None
    except UnicodeDecodeError as error:
        raise SchemaError(
            f"{where}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start}); "
            f"save the {what} file as UTF-8"
        ) from None
    except OSError as error:
        raise SchemaError(f"{where}: cannot read {what}: {error.strerror}") from None


def parse_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SchemaError(f"{where}: not valid TOML: {error}") from None
    except RecursionError:
        raise SchemaError(f"{where}: arrays or tables nested too deeply to be a preset") from None


# --- building a tree from a table -------------------------------------------------------------


@functools.cache
def _resolved_hints(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)


def schema_hints(schema: Any) -> dict[str, Any]:
    """The resolved type annotations of a schema class's fields, by name."""
    # resolved once per class: the annotations are strings under `from __future__ import annotations`
    return _resolved_hints(typing.cast(type, schema))


def unwrap_optional(hint: Any) -> Any:
    """`T` for `T | None`; any other hint as it is."""
    if _is_union(hint):
        others = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(others) == 1:
            return others[0]
    return hint


def _is_union(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    return origin is typing.Union or origin is types.UnionType


def _describe(hint: Any) -> str:
    """What a value of this type looks like, for 'expected ...'."""
    hint = unwrap_optional(hint)
    if dataclasses.is_dataclass(hint) or typing.get_origin(hint) is dict:
        return "a table"
    if typing.get_origin(hint) is tuple:
        item = unwrap_optional(typing.get_args(hint)[0])
        if dataclasses.is_dataclass(item):
            return "a list of tables"
        return f"a list of {_PLURAL_NAMES.get(item, 'values')}"
    return _SCALAR_NAMES.get(hint, "a value")


def _wrong_type(where: str, key: str, value: Any, hint: Any) -> SchemaError:
    return SchemaError(f"{where}: key '{key}' = {value!r} has type {type(value).__name__}; expected {_describe(hint)}")


def _coerce(value: Any, kind: type, where: str, key: str) -> Any:
    # TOML's bool is a Python int subclass: refuse it where a number is meant, and vice versa.
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                raise SchemaError(f"{where}: key '{key}' = {value!r} is not finite; expected a finite number")
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    raise _wrong_type(where, key, value, kind)


def _check_limits(value: Any, spec: Mapping[str, Any], where: str, key: str) -> None:
    choices = spec.get("choices")
    if choices is not None and value not in choices:
        raise SchemaError(f"{where}: key '{key}' = {value!r} is not allowed; expected one of {', '.join(choices)}")
    pattern = spec.get("pattern")
    if pattern is not None and isinstance(value, str) and not re.fullmatch(pattern[0], value):
        raise SchemaError(f"{where}: key '{key}' = {value!r} is not allowed; expected {pattern[1]}")
    low, high = spec.get("min"), spec.get("max")
    if low is not None:
        too_low = value <= low if spec.get("min_exclusive") else value < low
        if too_low:
            bound = f"> {low}" if spec.get("min_exclusive") else f">= {low}"
            raise SchemaError(f"{where}: key '{key}' = {value!r} is out of range; expected {bound}")
    if high is not None and value > high:
        raise SchemaError(f"{where}: key '{key}' = {value!r} is out of range; expected <= {high}")


def _subkey(key: str, name: str) -> str:
    # a free key such as "gat.c_g" is quoted, as TOML would, so the dotted path stays readable
    return f"{key}.{name}" if _BARE_KEY.fullmatch(name) else f'{key}."{name}"'


def _parse(value: Any, hint: Any, spec: Mapping[str, Any], where: str, key: str) -> Any:
    """One value of type `hint` at dotted `key`, checked against the field's `spec`."""
    hint = unwrap_optional(hint)
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise SchemaError(f"{where}: key '{key}' must be a table [{key}], got {value!r}")
        return build(typing.cast(type, hint), value, where, f"{key}.")
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list):
            raise _wrong_type(where, key, value, hint)
        least = spec.get("min_items")
        if least is not None and len(value) < least:
            raise SchemaError(f"{where}: key '{key}' = {value!r} has {len(value)} items; expected at least {least}")
        item = typing.get_args(hint)[0]
        return tuple(_parse(one, item, spec, where, f"{key}[{index}]") for index, one in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise SchemaError(f"{where}: key '{key}' must be a table [{key}], got {value!r}")
        item = typing.get_args(hint)[1]
        return {name: _parse(one, item, spec, where, _subkey(key, name)) for name, one in value.items()}
    coerced = _coerce(value, hint, where, key)
    _check_limits(coerced, spec, where, key)
    # TOML's integers are 64-bit; tomllib reads larger ones, which fail later (tensorboardX, torch)
    if hint is int and not -(2**63) <= coerced < 2**63:
        raise SchemaError(f"{where}: key '{key}' = {coerced} is out of range; expected a 64-bit integer (below 2**63)")
    return coerced


def _required(spec_field: Field[Any]) -> bool:
    return spec_field.default is MISSING and spec_field.default_factory is MISSING


def build(schema: type[T], table: Mapping[str, Any], where: str, prefix: str = "") -> T:
    """The `schema` instance a parsed TOML table stands for; `where` (a file) and `prefix` name the keys."""
    known = {f.name: f for f in fields(typing.cast(Any, schema))}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise SchemaError(f"{where}: unknown key '{prefix}{unknown[0]}'; allowed keys here: {', '.join(known)}")
    hints = schema_hints(schema)
    values = {key: _parse(value, hints[key], known[key].metadata, where, f"{prefix}{key}") for key, value in table.items()}
    for name, spec_field in known.items():
        if name not in values and _required(spec_field):
            raise SchemaError(f"{where}: key '{prefix}{name}' is missing; expected {_describe(hints[name])}: {spec_field.metadata['help']}")
    return schema(**values)


# --- overrides --------------------------------------------------------------------------------


def parse_override(text: str, option: str = "--set") -> tuple[str, Any]:
    """`gat.c_g=0.01` -> ("gat.c_g", 0.01); the value is read as TOML, else as a bare string.

    `option` names where the text came from in an error (`--set`, `--data`).
    """
    example = "--set gat.c_g=0.01" if option == "--set" else f"{option} test_size=500"
    if "=" not in text:
        raise SchemaError(f"{option} {text!r}: expected KEY=VALUE, e.g. {example}")
    key, raw = (part.strip() for part in text.split("=", 1))
    if not key:
        raise SchemaError(f"{option} {text!r}: the key before '=' is empty")
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw  # lets `--set device=cuda` work without TOML quotes
    return key, value


def _sections(schema: type, optional: bool = True) -> dict[str, type]:
    """The fields of `schema` that are sub-tables, by name; `optional=False` leaves out `Schema | None` ones."""
    sections = {}
    for name, hint in schema_hints(schema).items():
        inner = unwrap_optional(hint)
        if dataclasses.is_dataclass(inner) and (optional or inner is hint):
            sections[name] = typing.cast(type, inner)
    return sections


def set_dotted(
    schema: type, table: dict[str, Any], key: str, value: Any, original: str, option: str = "--set", prefix: str = ""
) -> None:
    """Put `value` at dotted `key` of a parsed table of `schema`; `build` then checks the leaf key.

    Errors name the override as typed, `option 'original'`; `prefix` is the part of `key` the
    option adds itself (`--data` puts its keys under `data.`), left out of the hint.
    """
    shown = f"{option} {original!r}"
    *path, leaf = key.split(".")
    node, level = table, schema
    for section in path:
        sections = _sections(level)
        if section not in sections:
            allowed = ", ".join(sections) or "none"
            raise SchemaError(f"{shown}: unknown section '{section}'; allowed sections: {allowed}")
        node = node.setdefault(section, {})
        if not isinstance(node, dict):
            raise SchemaError(f"{shown}: '{section}' is not a table")
        level = sections[section]
    if leaf in _sections(level, optional=False):
        # a whole table would replace the section, silently resetting every key it does not name
        # (an optional table such as model.normalize is set whole: its keys go together)
        raise SchemaError(
            f"{shown}: '{key.removeprefix(prefix)}' is a section; set its keys one at a time, "
            f"e.g. {option} {key.removeprefix(prefix)}.KEY=VALUE"
        )
    node[leaf] = value


# --- rendering --------------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    """One value as TOML: scalars, lists (from tuples) and inline tables (from dicts or dataclasses)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in fields(value) if getattr(value, f.name) is not None}
    if isinstance(value, dict):
        items = ", ".join(f"{_toml_key(name)} = {toml_value(item)}" for name, item in value.items())
        return "{ " + items + " }" if items else "{}"
    return _toml_string(str(value))


# TOML's short escapes; every other control character is written as \uXXXX (a raw one is invalid TOML)
_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(text: str) -> str:
    """A TOML basic string that parses back to `text`, whatever characters it holds."""
    parts = []
    for char in text:
        if char in _SHORT_ESCAPES:
            parts.append(_SHORT_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            parts.append(f"\\u{ord(char):04X}")
        else:
            parts.append(char)
    return '"' + "".join(parts) + '"'


def _toml_key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else toml_value(name)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, tuple) and bool(value) and all(dataclasses.is_dataclass(item) for item in value)


def _render(tree: Any, header: str, lines: list[str]) -> None:
    """`tree`'s keys with their help, then its sub-tables [a.b] and arrays of tables [[a.b]]."""
    nested: list[tuple[str, Any]] = []
    for spec_field in fields(tree):
        value = getattr(tree, spec_field.name)
        if dataclasses.is_dataclass(value) or _is_table_list(value):
            nested.append((spec_field.name, value))
        elif value is not None:  # an absent optional key stays absent: TOML has no null
            lines.append(f"{_toml_key(spec_field.name)} = {toml_value(value)}  # {spec_field.metadata['help']}")
    for name, value in nested:
        path = f"{header}.{_toml_key(name)}" if header else _toml_key(name)
        for item in value if isinstance(value, tuple) else (value,):
            lines.append("")
            lines.append(f"[[{path}]]" if isinstance(value, tuple) else f"[{path}]")
            _render(item, path, lines)


def to_toml(tree: Any) -> str:
    """A schema instance as TOML that `build` reads back to an equal instance, each key's help as a comment."""
    lines: list[str] = []
    _render(tree, "", lines)
    return "\n".join(lines) + "\n"
