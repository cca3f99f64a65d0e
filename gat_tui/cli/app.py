"""The `gat-tui` Typer app and what its commands share: errors, stop signals, output paths, the dashboard.

torch and the engine are imported inside commands, so that `gat-tui --help` and `gat-tui
presets` answer at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

import typer
import typer.core

if TYPE_CHECKING:
    from gat_tui.training.request import TrainingRequest

def _flag_type(self: typer.core.TyperOption, ctx: Any) -> str | None:
    """A flag takes no value: its help row shows no `<bool>` (which read as an option that takes one)."""
    return None if self.is_flag else _option_type(self, ctx)


_option_type = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    help="Generative Adversarial Trainer (Lee, Han, Lee 2017): train and attack robust classifiers.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` to stderr and exit with `code` (2: bad arguments or input; 1: it failed)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _print_version(wanted: bool) -> None:
    if wanted:
        from gat_tui._version import __version__

        typer.echo(f"gat-tui {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    context: typer.Context,
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
) -> None:
    apply_allocator_setting()
    if context.invoked_subcommand is None:
        reason = no_terminal()
        if reason is not None:
            fail(f"the dashboard needs a terminal ({reason}); train with `gat-tui run PRESET --headless`")
        raise typer.Exit(open_dashboard(None))


def apply_allocator_setting() -> None:
    """glibc's malloc thresholds for this process (gat_tui.allocator), before torch allocates anything.

    Every command and the dashboard pass here first; `GAT_TUI_MALLOC=default` opts out.
    """
    from gat_tui.allocator import AllocatorError, tune_allocator

    try:
        tune_allocator()
    except AllocatorError as error:
        fail(str(error))


def no_terminal() -> str | None:
    """Why the dashboard cannot be drawn here, or None: it needs standard input and output to be a terminal."""
    for name, stream in (("standard output", sys.stdout), ("standard input", sys.stdin)):
        try:
            is_terminal = stream is not None and stream.isatty()
        except (AttributeError, ValueError):  # replaced or closed streams
            is_terminal = False
        if not is_terminal:
            return f"{name} is not a terminal"
    return None


def headless_unless_terminal(headless: bool) -> bool:
    """True for --headless, and also where the dashboard cannot be drawn (a pipe, a log file, nohup,
    cron): then a line on stderr says so. The dashboard would otherwise write escape codes into
    the file and, once done, wait for a key nobody can press."""
    if headless:
        return True
    reason = no_terminal()
    if reason is None:
        return False
    typer.echo(f"{reason}: running headless, as with --headless (pass --headless to leave this line out)", err=True)
    return True


def open_dashboard(request: TrainingRequest | None, exit_on_finish: bool = False) -> int:
    """Run the Textual app (on a given run, or at its start screen); returns the exit code.

    `exit_on_finish`: leave as soon as the run ends, rather than wait on its summary for a key.
    """
    from gat_tui.dashboard.app import GatTuiApp

    app = GatTuiApp(request, exit_on_finish=exit_on_finish)
    code = app.run() or 0
    for line in app.exit_lines():  # after the app has given the terminal back
        typer.echo(line)
    return code


def install_stop_handlers(stop: threading.Event) -> None:
    """First Ctrl-C (or SIGTERM, or SIGHUP: the SSH session or terminal went away) asks the engine to
    save and stop; a second Ctrl-C aborts."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            typer.secho("\nstopping after this step and saving a checkpoint (Ctrl-C again to abort)", err=True)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    # not on Windows; and under `nohup` (SIGHUP ignored) a hang-up must go on being ignored
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, handle)


def check_output_file(path: Path | None, option: str) -> None:
    """Refuse an output path that cannot take a file, before any work whose results it would hold."""
    if path is None:
        return
    if path.is_dir():
        fail(f"{option} {path}: is a folder; expected a file path")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        fail(f"{option} {path}: {ancestor} is a file, so no file can be written below it")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        fail(f"{option} {path}: {ancestor} is not writable")


def check_output_folder(path: Path | None, option: str) -> None:
    if path is None:
        return
    if path.exists() and not path.is_dir():
        fail(f"{option} {path}: is a file; expected a folder for the figures")
    check_output_file(path / "figure.png", option)
