"""What `gat-tui train` prints without the dashboard, driven in-process with engine events.

Off a terminal (a log file, CI): one timestamped plain line per record, step lines at most one per
`plain_every` seconds, the summary at the end. On a terminal: coloured warnings and errors, a bar
reading `epoch k/N` whose figures take the width the other columns leave, the summary table. A
console that fails is given up with one warning on stderr, never the run.
"""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from gat_tui.console import headless
from gat_tui.console.headless import HeadlessPrinter, output_console
from gat_tui.events import CheckpointSaved, EpochSummary, LogMessage, RunFinished, RunStarted, StepMetrics, StepProgress


def started(steps_per_epoch: int = 4, epochs: int = 2, start_epoch: int = 1, start_step: int = 0) -> RunStarted:
    return RunStarted(
        run_dir="runs/tiny-1", preset="tiny", method="gat", device="cpu", dataset="synthetic", num_classes=3,
        train_images=48, steps_per_epoch=steps_per_epoch, epochs=epochs, start_epoch=start_epoch, start_step=start_step,
    )


def step(number: int, **figures: float | None) -> StepMetrics:
    values: dict = dict(loss_f=1.5, loss_g=None, pert_l2=None, pert_linf=None)
    values.update(figures)
    return StepMetrics(epoch=1, step=number, time=1.0, images_per_second=7.0, **values)


def finished() -> RunFinished:
    return RunFinished(
        status="finished", epochs_done=5, step=500, wall_seconds=75.46, best_epoch=4, best_value=0.8,
        test_acc_clean=0.9, test_acc_adv=0.5, test_acc_fgm_l2=0.625, extra={"test_acc_pgd": 0.25},
    )


class Clock:
    """A stand-in for `time.monotonic` that the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(headless, "time", SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(headless, "timestamp", lambda: "2026-12-07 09:00:00")
    return fake


def plain_printer(plain_every: float = 0.0, width: int = 200) -> tuple[HeadlessPrinter, io.StringIO]:
    out = io.StringIO()
    return HeadlessPrinter(Console(file=out, force_terminal=False, width=width), plain_every=plain_every), out


def test_a_run_off_a_terminal_is_one_timestamped_line_per_record(clock: Clock) -> None:
    printer, out = plain_printer(plain_every=2.0)
    printer(started())
    printer(step(2))  # the first step report is printed
    clock.now = 101.0
    printer(step(3))  # 1 s later, within the 2 s: left out
    clock.now = 102.0
    printer(step(4))  # 2 s after the last printed: printed
    printer(EpochSummary(epoch=1, step=4, time=2.0, val_acc_clean=0.75, val_acc_adv=0.5, val_acc_fgm_l2=0.25,
                         val_pert_l2=None, val_pert_linf=None, val_loss_g=None, is_best=True, epoch_seconds=2.0))
    printer(LogMessage("warning", "low disk"))
    printer(CheckpointSaved("runs/tiny-1/epoch.safetensors", 1, 4, "epoch"))  # every epoch's: not worth a line
    printer(CheckpointSaved("runs/tiny-1/best.safetensors", 1, 4, "best"))
    printer(finished())
    printer.close()
    at = "2026-12-07 09:00:00"
    assert out.getvalue().splitlines() == [
        f"{at} tiny: method gat on synthetic (48 training images, 3 classes), device cpu",
        f"{at} run folder: runs/tiny-1",
        f"{at} epoch 1 step 2  loss_f 1.5000  7 img/s",
        f"{at} epoch 1 step 4  loss_f 1.5000  7 img/s",
        f"{at} epoch 1: val clean 75.00%  own-perturbation 50.00%  FGM-L2 25.00%  (2.0s)  [best]",
        f"{at} warning: low disk",
        f"{at} checkpoint (best): runs/tiny-1/best.safetensors",
        f"{at} run finished: 5 epochs, 500 steps, 1:15",
        f"{at} test: clean 90.00%  own perturbation 50.00%  FGM-L2 62.50%  PGD 25.00%",
        f"{at} best epoch 4 (validation)",
        f"{at} run folder: runs/tiny-1",
        f"{at} evaluate:   gat-tui eval runs/tiny-1",
        f"{at} resume:     gat-tui resume runs/tiny-1",
    ]


def test_by_default_every_step_report_is_printed(clock: Clock) -> None:
    out = io.StringIO()
    printer = HeadlessPrinter(Console(file=out, force_terminal=False, width=200))
    printer(step(1))
    printer(step(2))  # at the same instant: the default period is 0 s
    assert [line.split("  ")[0] for line in out.getvalue().splitlines()] == [
        "2026-12-07 09:00:00 epoch 1 step 1", "2026-12-07 09:00:00 epoch 1 step 2"
    ]


def test_a_run_that_failed_before_it_started_prints_no_summary(clock: Clock) -> None:
    printer, out = plain_printer()
    printer(LogMessage("error", "no such data set"))
    printer(finished())
    assert out.getvalue() == "2026-12-07 09:00:00 error: no such data set\n"


def test_a_plain_line_is_never_wrapped(clock: Clock) -> None:
    printer, out = plain_printer(width=40)
    path = "runs/" + "a-long-folder-name/" * 5 + "best.safetensors"
    printer(CheckpointSaved(path, 1, 4, "best"))
    assert out.getvalue() == f"2026-12-07 09:00:00 checkpoint (best): {path}\n"


def terminal(width: int = 60, colour: str | None = "standard") -> tuple[HeadlessPrinter, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=colour, width=width)  # type: ignore[arg-type]
    return HeadlessPrinter(console), out


def test_on_a_terminal_warnings_are_yellow_errors_bold_red_checkpoints_dim_and_nothing_else_styled() -> None:
    printer, out = terminal()
    printer(LogMessage("warning", "w"))
    printer(LogMessage("error", "e"))
    # no timestamp on a terminal; numbers not highlighted, brackets not read as markup, a long line not wrapped
    printer(LogMessage("info", "step 12 of 30 [red]x[/red] " + "y" * 60))
    printer(CheckpointSaved("runs/x/best.safetensors", 1, 4, "best"))
    assert out.getvalue().splitlines() == [
        "\x1b[33mwarning: w\x1b[0m",
        "\x1b[1;31merror: e\x1b[0m",
        "info: step 12 of 30 [red]x[/red] " + "y" * 60,
        "\x1b[2mcheckpoint (best): runs/x/best.safetensors\x1b[0m",
    ]


def test_the_bar_reads_epoch_k_of_n_and_moves_with_each_step() -> None:
    printer, out = terminal(width=100, colour=None)
    try:
        printer(started(steps_per_epoch=100, epochs=5, start_epoch=2, start_step=120))  # a resumed run
        task = printer.progress.tasks[0]
        assert (task.description, task.total, task.completed, task.fields) == ("epoch 2/5", 500, 120, {"figures": ""})
        printer(StepProgress(epoch=3, step=230))
        assert (task.description, task.completed, task.fields["figures"]) == ("epoch 3/5", 230, "")
        printer(step(260, loss_g=0.25))
        assert (task.description, task.completed, task.fields["figures"]) == ("epoch 1/5", 260, "L_F 1.500 L_G 0.250")
        # as drawn: the description, a 12-column bar, the steps, elapsed, ETA, then the figures
        drawn = Console(width=100, file=io.StringIO(), record=True)
        drawn.print(printer.progress.get_renderable())
        assert re.fullmatch(r"epoch 1/5 [━╸ ]{12} 260/500 \d:\d\d:\d\d \S+ L_F 1\.500 L_G 0\.250\n", drawn.export_text())
    finally:
        printer.close()
    assert printer.task is None and not printer.progress.live.is_started
    # the bar was drawn on the printer's console and its last state stays there (not erased at the end)
    assert "\x1b[2K" not in out.getvalue().rsplit("260/500", 1)[1]


def figures_at(width: int, event: StepMetrics, steps_per_epoch: int, epochs: int) -> str:
    printer, _ = terminal(width=width, colour=None)
    try:
        printer(started(steps_per_epoch=steps_per_epoch, epochs=epochs))
        printer(event)
        return str(printer.progress.tasks[0].fields["figures"])
    finally:
        printer.close()


def test_the_bars_figures_take_the_columns_the_rest_leaves() -> None:
    # 5 epochs of 100 steps: "epoch 5/5" (9) + 1 + bar 12 + 1 + "500/500" (2 × 3 + 1) + 1 + elapsed 7 + 1 + ETA 7 + 1
    # = 47 columns, and one spare: a console of 48 + 19 leaves 19, exactly "L_F 1.500 adv 50.0%"
    two = step(5, train_acc_adv=0.5)
    assert figures_at(48 + 19, two, 100, 5) == "L_F 1.500 adv 50.0%"
    assert figures_at(48 + 18, two, 100, 5) == "L_F 1.500"
    # "L_F 1.500 adv 50.0% L_G 0.250" is 29: not in 28 columns
    three = step(5, train_acc_adv=0.5, loss_g=0.25)
    assert figures_at(48 + 28, three, 100, 5) == "L_F 1.500 adv 50.0%"
    assert figures_at(48 + 29, three, 100, 5) == "L_F 1.500 adv 50.0% L_G 0.250"


def test_a_run_of_one_step_per_epoch_counts_its_steps_for_the_bar() -> None:
    # 500 epochs of 1 step: "epoch 500/500" (13) + 1 + 12 + 1 + "500/500" (7) + 1 + 7 + 1 + 7 + 1 = 51, one spare
    assert figures_at(52 + 19, step(5, train_acc_adv=0.5), 1, 500) == "L_F 1.500 adv 50.0%"
    assert figures_at(52 + 18, step(5, train_acc_adv=0.5), 1, 500) == "L_F 1.500"


def test_a_narrow_terminal_still_shows_twelve_columns_of_figures() -> None:
    assert figures_at(40, step(5, loss_f=None, pert_linf=12.3456), 100, 5) == ""  # "|d|inf 12.346" is 13
    assert figures_at(40, step(5, loss_f=None, pert_linf=0.0314), 100, 5) == "|d|inf 0.031"  # 12


def test_on_a_terminal_the_run_ends_with_its_table_and_the_commands() -> None:
    printer, out = terminal(width=80, colour=None)
    printer(started())
    printer(finished())
    text = out.getvalue()
    table = text[text.index("run finished"):].splitlines()
    assert [line.strip() for line in table] == [
        "run finished",
        "┌─────────────────────────────────┬────────┐",
        "│ epochs done                     │ 5      │",
        "│ steps                           │ 500    │",
        "│ wall time                       │ 75.5 s │",
        "│ best epoch (validation)         │ 4      │",
        "│ test accuracy, clean            │ 90.00% │",
        "│ test accuracy, own perturbation │ 50.00% │",
        "│ test accuracy, FGM-L2           │ 62.50% │",
        "│ test accuracy, PGD              │ 25.00% │",
        "└─────────────────────────────────┴────────┘",
        "run folder: runs/tiny-1",
        "evaluate:   gat-tui eval runs/tiny-1",
        "resume:     gat-tui resume runs/tiny-1",
    ]
    assert printer.task is None


def test_the_table_of_a_run_without_test_figures_or_best_epoch() -> None:
    printer, out = terminal(width=80, colour=None)
    printer(started())
    printer(RunFinished(status="stopped", epochs_done=1, step=4, wall_seconds=2.0, best_epoch=None, best_value=None))
    text = out.getvalue()
    assert [line.strip() for line in text[text.index("run stopped"):].splitlines()[:6]] == [
        "run stopped",
        "┌─────────────┬───────┐",
        "│ epochs done │ 1     │",
        "│ steps       │ 4     │",
        "│ wall time   │ 2.0 s │",
        "└─────────────┴───────┘",
    ]


class BrokenPipe(io.StringIO):
    """Standard output whose reader has gone."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_is_given_up_with_one_warning_naming_the_run_folder(capsys: pytest.CaptureFixture[str]) -> None:
    printer = HeadlessPrinter(output_console(BrokenPipe()))
    printer(started())
    printer(LogMessage("info", "still training"))  # not written, not raised
    printer.close()
    assert capsys.readouterr().err == (
        "warning: the console's output failed (BrokenPipeError: the reader of standard output has gone); "
        "training goes on without it; its record is in runs/tiny-1\n"
    )
    assert printer.console_lost and printer.task is None
    assert printer.console.file.name == os.devnull
    printer.console.file.write("δ ━")  # the rest of the run writes to nothing, in any character


def test_a_console_lost_before_the_run_started_names_no_folder(capsys: pytest.CaptureFixture[str]) -> None:
    printer = HeadlessPrinter(output_console(BrokenPipe()))
    printer(LogMessage("error", "no such preset"))
    assert capsys.readouterr().err == (
        "warning: the console's output failed (BrokenPipeError: the reader of standard output has gone); "
        "training goes on without it\n"
    )


def test_a_bar_that_cannot_be_stopped_loses_the_console_not_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    printer, _ = terminal(colour=None)
    printer(started())
    live_stop = printer.progress.stop

    def full_disk() -> None:
        live_stop()
        raise OSError(28, "No space left on device")

    printer.progress.stop = full_disk  # type: ignore[method-assign]
    printer.close()
    assert printer.console_lost and printer.task is None
    assert "(OSError: [Errno 28] No space left on device); training goes on" in capsys.readouterr().err


def test_the_run_console_replaces_characters_its_encoding_lacks() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    console = output_console(stream)
    console.print("|δ|₂ 0.5 ━")
    stream.flush()
    assert raw.getvalue() == b"|?|? 0.5 ?\n"


def test_a_stream_that_cannot_be_reconfigured_is_used_as_it_is() -> None:
    class Fixed(io.StringIO):
        def __init__(self, error: Exception) -> None:
            super().__init__()
            self.error = error

        def reconfigure(self, **_: object) -> None:
            raise self.error

    for error in (ValueError("detached"), OSError("closed")):
        stream = Fixed(error)
        output_console(stream).print("ok")
        assert stream.getvalue() == "ok\n"


def test_the_run_console_is_standard_output_made_tolerant_and_never_wraps(capsys: pytest.CaptureFixture[str]) -> None:
    console = output_console()
    assert console.file is sys.stdout and sys.stdout.errors == "replace"
    wide = output_console(io.StringIO())
    wide.print("word " * 40)
    assert wide.file.getvalue() == "word " * 40 + "\n"  # type: ignore[attr-defined]


def test_lost_standard_output_is_pointed_at_nothing_for_the_interpreters_last_flush(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "stdout"
    with open(target, "wb") as descriptor:

        class Stdout(BrokenPipe):
            def fileno(self) -> int:
                return descriptor.fileno()

        stdout = Stdout()
        monkeypatch.setattr(sys, "stdout", stdout)
        printer = HeadlessPrinter(output_console(stdout))
        printer(LogMessage("info", "x"))
        os.write(descriptor.fileno(), b"the interpreter's last flush")
    assert printer.console_lost and target.read_bytes() == b""
    assert "training goes on without it" in capsys.readouterr().err


@pytest.mark.parametrize("error", [ValueError("I/O operation on closed file"), OSError(9, "Bad file descriptor")])
def test_a_closed_standard_output_and_error_do_not_fail_the_run_either(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    class Closed(BrokenPipe):
        def fileno(self) -> int:
            raise error

        def flush(self) -> None:
            raise error

    class ClosedErr(io.StringIO):
        def write(self, text: str) -> int:
            raise error

    stdout = Closed()
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", ClosedErr())
    printer = HeadlessPrinter(output_console(stdout))
    printer(LogMessage("info", "x"))  # neither the redirection nor the warning raises
    assert printer.console_lost
