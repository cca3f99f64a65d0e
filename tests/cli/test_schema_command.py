"""`gat-tui schema` prints the JSON Schema that ships beside the presets."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Cli

from gat_tui.config import PRESET_SCHEMA_FILE


def test_gat_tui_schema_prints_the_shipped_schema(cli: Cli, presets_dir: Path) -> None:
    result = cli("schema")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (presets_dir / PRESET_SCHEMA_FILE).read_text(encoding="utf-8")
    assert json.loads(result.stdout)["title"] == "gat-tui preset"
