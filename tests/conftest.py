"""Shared test settings: small, seeded, CPU only, never the network or the user's folders."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # datasets and runs go to the test's own folder, never the user's cache or data dir
    monkeypatch.setenv("GAT_TUI_DATA_DIR", str(tmp_path / "datasets"))
    monkeypatch.setenv("GAT_TUI_RUNS_DIR", str(tmp_path / "runs"))
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never touch the network: any connection attempt fails at once, as offline."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr("gat_tui.data.cifar.download_and_extract_archive", refuse)


REPO_ROOT = Path(__file__).resolve().parent.parent
PRESETS_DIR = REPO_ROOT / "presets"
