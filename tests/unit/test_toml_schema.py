"""toml_schema on a tiny throwaway schema: every kind of field, fault and the TOML round trip."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gat_tui.toml_schema import REQUIRED, SchemaError, build, parse_override, read_text, set_dotted, setting, to_toml


@dataclass(frozen=True)
class Inner:
    rate: float = setting(0.5, "a rate, a fraction", min=0.0, max=1.0)
    flag: bool = setting(False, "a switch")


@dataclass(frozen=True, kw_only=True)
class Item:
    label: str = setting(REQUIRED, "the item's name", pattern=(r"[a-z]+", "lower-case letters"))
    sizes: tuple[int, ...] = setting((1,), "sizes, in pixels", min=1, min_items=1)
    anything: tuple[Any, ...] = setting((), "taken as is")


@dataclass(frozen=True)
class Outer:
    count: int = setting(1, "how many", min=1, max=10)
    mode: str = setting("a", "which mode", choices=("a", "b"))
    lr: float = setting(0.1, "a step size", min=0.0, min_exclusive=True)
    note: str | None = setting(None, "an optional note")
    inner: Inner = field(default_factory=Inner)
    items: tuple[Item, ...] = setting((), "the items")
    figures: dict[str, Inner] = setting({}, "an Inner per free name")


def refused(table: dict[str, Any]) -> str:
    with pytest.raises(SchemaError) as raised:
        build(Outer, table, "t.toml")
    return str(raised.value)


def test_an_empty_table_gives_the_defaults() -> None:
    assert build(Outer, {}, "t.toml") == Outer()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"nope": 1}, "t.toml: unknown key 'nope'; allowed keys here: count, mode, lr, note, inner, items, figures"),
        ({"inner": {"x": 1}}, "t.toml: unknown key 'inner.x'; allowed keys here: rate, flag"),
        ({"count": "3"}, "t.toml: key 'count' = '3' has type str; expected an integer"),
        ({"count": True}, "t.toml: key 'count' = True has type bool; expected an integer"),
        ({"count": 2.0}, "t.toml: key 'count' = 2.0 has type float; expected an integer"),
        ({"inner": {"flag": 1}}, "t.toml: key 'inner.flag' = 1 has type int; expected true or false"),
        ({"inner": {"rate": False}}, "t.toml: key 'inner.rate' = False has type bool; expected a number"),
        ({"count": 0}, "t.toml: key 'count' = 0 is out of range; expected >= 1"),
        ({"count": 11}, "t.toml: key 'count' = 11 is out of range; expected <= 10"),
        ({"lr": 0}, "t.toml: key 'lr' = 0.0 is out of range; expected > 0.0"),
        ({"lr": float("inf")}, "t.toml: key 'lr' = inf is not finite; expected a finite number"),
        ({"mode": "c"}, "t.toml: key 'mode' = 'c' is not allowed; expected one of a, b"),
        ({"inner": 3}, "t.toml: key 'inner' must be a table [inner], got 3"),
        ({"items": {"label": "x"}}, "t.toml: key 'items' = {'label': 'x'} has type dict; expected a list of tables"),
        ({"items": [{"sizes": [2]}]}, "t.toml: key 'items[0].label' is missing; expected a string: the item's name"),
        ({"items": [{"label": "AB"}]}, "t.toml: key 'items[0].label' = 'AB' is not allowed; expected lower-case letters"),
        ({"items": [{"label": "a", "sizes": 5}]}, "t.toml: key 'items[0].sizes' = 5 has type int; expected a list of integers"),
        ({"items": [{"label": "a", "sizes": [2, 0]}]}, "t.toml: key 'items[0].sizes[1]' = 0 is out of range; expected >= 1"),
        ({"items": [{"label": "a", "sizes": []}]}, "t.toml: key 'items[0].sizes' = [] has 0 items; expected at least 1"),
        ({"figures": {"x y": {"rate": 2}}}, "t.toml: key 'figures.\"x y\".rate' = 2.0 is out of range; expected <= 1.0"),
        ({"figures": {"x": "y"}}, "t.toml: key 'figures.x' must be a table [figures.x], got 'y'"),
    ],
)
def test_faults_name_where_key_value_and_allowed(table: dict[str, Any], message: str) -> None:
    assert refused(table) == message


def test_values_are_converted_to_the_declared_types() -> None:
    built = build(
        Outer,
        {"inner": {"rate": 1}, "note": "n", "items": [{"label": "a", "sizes": [2, 3], "anything": [{"x": 1}, "y"]}]},
        "t.toml",
    )
    assert built.inner.rate == 1.0 and isinstance(built.inner.rate, float)
    assert built.note == "n"
    assert built.items == (Item(label="a", sizes=(2, 3), anything=({"x": 1}, "y")),)


def test_overrides_set_dotted_keys_checked_by_build() -> None:
    table: dict[str, Any] = {"inner": {"rate": 0.1}}
    for text in ("inner.rate=0.25", "mode=b", "inner.flag=true"):
        key, value = parse_override(text)
        set_dotted(Outer, table, key, value, text)
    assert build(Outer, table, "t.toml") == Outer(mode="b", inner=Inner(rate=0.25, flag=True))
    with pytest.raises(SchemaError, match="unknown section 'nope'; allowed sections: inner"):
        set_dotted(Outer, {}, "nope.x", 1, "nope.x=1")
    with pytest.raises(SchemaError) as raised:  # the override as typed, its option named once
        set_dotted(Outer, {}, "inner", 1, "inner=1")
    assert str(raised.value) == "--set 'inner=1': 'inner' is a section; set its keys one at a time, e.g. --set inner.KEY=VALUE"

    @dataclass(frozen=True)
    class Top:
        outer: Outer = field(default_factory=Outer)

    with pytest.raises(SchemaError) as raised:  # an option that puts its keys under a section (--data: data.) says them as typed
        set_dotted(Top, {}, "outer.inner", 1, "inner=1", option="--data", prefix="outer.")
    assert str(raised.value) == "--data 'inner=1': 'inner' is a section; set its keys one at a time, e.g. --data inner.KEY=VALUE"
    with pytest.raises(SchemaError, match="unknown section 'rate'; allowed sections: none"):
        set_dotted(Outer, {}, "inner.rate.x", 1, "inner.rate.x=1")
    with pytest.raises(SchemaError, match="'inner' is not a table"):
        set_dotted(Outer, {"inner": 3}, "inner.rate", 1, "inner.rate=1")
    with pytest.raises(SchemaError, match="expected KEY=VALUE"):
        parse_override("count")
    with pytest.raises(SchemaError, match="the key before '=' is empty"):
        parse_override("=3")


def test_a_tree_round_trips_through_toml_with_help_comments() -> None:
    tree = Outer(
        count=3,
        note='say "hi"\\n',
        inner=Inner(rate=1e-6, flag=True),
        items=(Item(label="a", sizes=(2, 3)), Item(label="b", anything=(1, "x"))),
        figures={"x y": Inner(rate=0.25), "z": Inner()},
    )
    text = to_toml(tree)
    assert "count = 3  # how many" in text and "[inner]" in text and "[[items]]" in text
    assert build(Outer, tomllib.loads(text), "t.toml") == tree
    assert "note" not in to_toml(Outer())  # an absent optional key stays absent
    assert build(Outer, tomllib.loads(to_toml(Outer())), "t.toml") == Outer()


def test_reading_names_the_file_for_every_fault(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="no such thing file"):
        read_text(tmp_path / "missing.toml", "thing")
    with pytest.raises(SchemaError, match="is a folder, not a thing file"):
        read_text(tmp_path, "thing")
    latin = tmp_path / "latin.toml"
    latin.write_bytes('name = "caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(SchemaError, match=r"latin\.toml: not UTF-8 text \(byte 0xe9 at offset 11\)"):
        read_text(latin, "thing")
