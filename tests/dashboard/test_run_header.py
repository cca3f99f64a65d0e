"""The training header's rows and clock, without an App: what fits at 60 and 80 columns, and when the clock runs."""

from __future__ import annotations

import pytest

from gat_tui.dashboard.widgets.run_header import HeaderState, middle_ellipsis

LONG_NAME = "cifar100_dropout_gat-wide-20261207-090000"  # 41 characters


def running_state(name: str = LONG_NAME) -> HeaderState:
    state = HeaderState(run_name=name, method="gat", device="cuda:0", epoch=12, epochs=40, step=4321, total_steps=12800,
                        start_step=0, images_per_second=1234.0, state="stopping")
    state.start(0.0, now=0.0)
    state.sync(3700.0, now=3700.0)  # past an hour: the clocks take their longest form; ETA 8479 steps × 3700/4321 s = 2:01:00
    state.note_validation(11, 0.8765)
    return state


@pytest.mark.parametrize("width", [58, 60, 78, 118])
def test_the_progress_row_keeps_all_six_fields_within_the_width(width: int) -> None:
    row = running_state().progress_row(width, now=3700.0)
    assert len(row) <= width
    for field in ("12/40", "4321", "1", "/s", "1:01:40", "ETA 2:01:00", "stopping"):
        assert field in row, (field, row)
    assert row.startswith(("epoch 12/40", "ep 12/40"))


def test_the_widest_form_is_used_where_it_fits() -> None:
    state = running_state()
    assert state.progress_row(200, now=3700.0) == (
        "epoch 12/40  step 4321/12800  1,234 img/s  elapsed 1:01:40  ETA 2:01:00  stopping"
    )


@pytest.mark.parametrize("width", [30, 40, 58, 78])
def test_a_long_run_name_is_shortened_in_the_middle_never_wrapped(width: int) -> None:
    name, rest = running_state().title_row(width)
    assert len(name) + len(rest) <= width
    assert ("…" in name) == (width < len(LONG_NAME))
    assert name.startswith("cifar100") and name.endswith("090000")


def test_middle_ellipsis() -> None:
    assert middle_ellipsis("abcdefghij", 10) == "abcdefghij"
    assert middle_ellipsis("abcdefghij", 7) == "abc…hij"
    assert middle_ellipsis("abcdefghij", 6) == "abc…ij"


def test_the_clock_stands_still_while_paused_and_the_eta_leaves_the_pause_out() -> None:
    state = HeaderState(epoch=1, epochs=2, step=0, total_steps=200)
    state.start(0.0, now=100.0)
    state.step = 50
    state.sync(10.0, now=110.0)  # 50 steps in 10 s of training
    state.hold(now=112.0)  # paused
    assert state.elapsed_seconds(now=500.0) == 12.0
    assert state.eta_seconds(now=500.0) == pytest.approx(150 * 12.0 / 50)
    state.resume(now=500.0)
    assert state.elapsed_seconds(now=503.0) == 15.0


def test_a_resumed_run_continues_from_its_training_time_and_rates_only_this_session() -> None:
    state = HeaderState(step=100, start_step=100, total_steps=400)
    state.start(600.0, now=10.0)  # ten minutes of training before the checkpoint
    assert state.elapsed_seconds(now=13.0) == 603.0
    state.step = 200
    state.sync(620.0, now=30.0)  # 100 steps in this session's 20 s
    assert state.eta_seconds(now=30.0) == pytest.approx(200 * 20.0 / 100)


def test_the_clock_stops_when_the_run_ends() -> None:
    state = HeaderState(step=10, total_steps=20)
    state.start(0.0, now=0.0)
    state.end(now=5.0)
    assert state.elapsed_seconds(now=50.0) == 5.0
    assert state.eta_seconds(now=50.0) is None


def test_before_the_run_starts_the_title_names_no_device() -> None:
    assert HeaderState(run_name="run", method="gat").title_row(80) == ("run", "  gat")  # it read `gat on `
