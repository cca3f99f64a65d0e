"""gat_tui.allocator: when glibc's malloc thresholds are set, and that every command sets them first."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

import gat_tui.allocator as allocator
from gat_tui.allocator import (
    M_MMAP_THRESHOLD,
    M_TRIM_THRESHOLD,
    THRESHOLD_BYTES,
    AllocatorError,
    AllocatorSetting,
    tune_allocator,
)


class FakeMallopt:
    """Records the calls instead of changing this test process's allocator."""

    def __init__(self, answer: int = 1) -> None:
        self.calls: list[tuple[int, int]] = []
        self.answer = answer

    def __call__(self, parameter: int, value: int) -> int:
        self.calls.append((parameter, value))
        return self.answer


@pytest.mark.parametrize("environ", [{}, {"GAT_TUI_MALLOC": "tuned"}, {"GAT_TUI_MALLOC": " Tuned "}, {"GAT_TUI_MALLOC": ""}])
def test_tuned_by_default_sets_both_thresholds(environ: dict[str, str]) -> None:
    mallopt = FakeMallopt()
    setting = tune_allocator(environ, mallopt)
    assert setting.applied
    assert mallopt.calls == [(M_MMAP_THRESHOLD, THRESHOLD_BYTES), (M_TRIM_THRESHOLD, THRESHOLD_BYTES)]
    # glibc's numbers for these parameters (<malloc.h>), and above a 50 MB activation
    assert (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD) == (-3, -1)
    assert THRESHOLD_BYTES >= 256 * 2**20


def test_opting_out_leaves_the_allocator_alone() -> None:
    mallopt = FakeMallopt()
    setting = tune_allocator({"GAT_TUI_MALLOC": "default"}, mallopt)
    assert setting == AllocatorSetting(False, "GAT_TUI_MALLOC=default")
    assert mallopt.calls == []


def test_an_unknown_value_names_the_variable_the_value_and_the_choices() -> None:
    mallopt = FakeMallopt()
    with pytest.raises(AllocatorError) as error:
        tune_allocator({"GAT_TUI_MALLOC": "jemalloc"}, mallopt)
    message = str(error.value)
    assert "GAT_TUI_MALLOC='jemalloc'" in message and "'tuned'" in message and "'default'" in message
    assert mallopt.calls == []


@pytest.mark.parametrize("name", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES", "LD_PRELOAD"])
def test_the_users_own_allocator_settings_win(name: str) -> None:
    mallopt = FakeMallopt()
    setting = tune_allocator({name: "1"}, mallopt)
    assert not setting.applied and name in setting.reason
    assert mallopt.calls == []


def test_a_refused_threshold_is_reported_not_claimed() -> None:
    setting = tune_allocator({}, FakeMallopt(answer=0))
    assert not setting.applied and "refused" in setting.reason


def test_without_glibc_it_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "glibc_mallopt", lambda: None)
    assert tune_allocator({}) == AllocatorSetting(False, "not glibc: nothing to tune")
    monkeypatch.undo()
    monkeypatch.setattr(sys, "platform", "darwin")
    assert allocator.glibc_mallopt() is None


def test_every_command_tunes_the_allocator_first(monkeypatch: pytest.MonkeyPatch) -> None:
    from gat_tui.cli import app

    calls: list[None] = []

    def record(*args: object, **kwargs: object) -> AllocatorSetting:
        calls.append(None)
        return AllocatorSetting(False, "recorded")

    monkeypatch.setattr(allocator, "tune_allocator", record)
    result = CliRunner().invoke(app, ["presets"])
    assert result.exit_code == 0, result.output
    assert len(calls) == 1


def test_a_bad_setting_stops_the_command_with_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from gat_tui.cli import app

    monkeypatch.setenv("GAT_TUI_MALLOC", "bogus")
    result = CliRunner().invoke(app, ["presets"])
    assert result.exit_code == 2
    assert "GAT_TUI_MALLOC='bogus'" in result.output
