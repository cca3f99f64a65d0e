"""Fixtures of the unit tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def pyautoattack() -> object:
    """The pyautoattack package, or the test skipped with how to install it (an optional extra)."""
    return pytest.importorskip("pyautoattack", reason='pyautoattack is not installed: pip install -e ".[autoattack]" (the test extra has it)')
