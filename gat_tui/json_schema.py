"""A JSON Schema (draft 7) of a TOML schema tree (`gat_tui.toml_schema`), for editors' TOML servers.

taplo (Even Better TOML in VS Code, and the editors that run taplo's language server) completes
and checks a TOML file's keys against the schema its first line names, `#:schema PATH-OR-URL`.
The JSON Schema is generated from the same `setting(...)` fields the validator reads (help text,
default, type and limits), so it cannot drift from what `gat-tui` accepts; the validator stays
the authority for the checks that span keys (`gat_tui.config._check_consistency`).

Imports nothing else of gat_tui but the schema module beside it.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any

from gat_tui.toml_schema import schema_hints, unwrap_optional

DRAFT = "http://json-schema.org/draft-07/schema#"
_SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string"}


def json_schema(schema: type, title: str, description: str) -> dict[str, Any]:
    """The JSON Schema of TOML files that `toml_schema.build(schema, ...)` reads."""
    return {"$schema": DRAFT, "title": title, "description": description, **_table(schema)}


def _table(schema: type) -> dict[str, Any]:
    hints = schema_hints(schema)
    properties: dict[str, Any] = {}
    required = []
    for spec_field in fields(typing.cast(Any, schema)):
        properties[spec_field.name] = _property(spec_field, hints[spec_field.name])
        if spec_field.default is MISSING and spec_field.default_factory is MISSING:
            required.append(spec_field.name)
    table: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        table["required"] = required
    return table


def _property(spec_field: dataclasses.Field[Any], hint: Any) -> dict[str, Any]:
    spec = spec_field.metadata
    # a sub-table declared with dataclasses.field (no `setting`) has no help of its own
    described: dict[str, Any] = {"description": spec["help"]} if "help" in spec else {}
    described.update(_value(unwrap_optional(hint), spec))
    default = spec_field.default
    if default is not MISSING and default is not None and not dataclasses.is_dataclass(default):
        described["default"] = list(default) if isinstance(default, tuple) else default
    return described


def _value(hint: Any, spec: Mapping[str, Any]) -> dict[str, Any]:
    """One value of type `hint` with the field's limits (which apply to each item of an array or table)."""
    if hint is Any:
        return {}
    if dataclasses.is_dataclass(hint):
        return _table(typing.cast(type, hint))
    origin = typing.get_origin(hint)
    if origin is tuple:
        array: dict[str, Any] = {"type": "array", "items": _value(unwrap_optional(typing.get_args(hint)[0]), spec)}
        if spec.get("min_items") is not None:
            array["minItems"] = spec["min_items"]
        return array
    if origin is dict:
        return {"type": "object", "additionalProperties": _value(unwrap_optional(typing.get_args(hint)[1]), spec)}
    value: dict[str, Any] = {"type": _SCALARS[hint]}
    if spec.get("choices") is not None:
        value["enum"] = list(spec["choices"])
    if spec.get("pattern") is not None:
        value["pattern"] = f"^(?:{spec['pattern'][0]})$"  # the validator matches the whole string
    if spec.get("min") is not None:
        value["exclusiveMinimum" if spec.get("min_exclusive") else "minimum"] = spec["min"]
    if spec.get("max") is not None:
        value["maximum"] = spec["max"]
    return value
