"""`gat-tui --version`."""

from __future__ import annotations

from conftest import Cli

from gat_tui import __version__


def test_version_prints_the_package_version(cli: Cli) -> None:
    done = cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"gat-tui {__version__}"
