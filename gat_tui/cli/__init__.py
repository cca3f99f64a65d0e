"""The `gat-tui` command line: one module per group of commands, all on one Typer app."""

from __future__ import annotations

import importlib

from gat_tui.cli.app import app

# each module registers its commands on `app`; this order is the order of `gat-tui --help`
for _group in ("training", "evaluation", "sweeps"):
    importlib.import_module(f"gat_tui.cli.{_group}")


def main() -> None:
    app(prog_name="gat-tui")


__all__ = ["app", "main"]
