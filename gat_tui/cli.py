"""The `gat-tui` command line. torch and the engine are imported inside commands, so that
`gat-tui --help` and `gat-tui presets` answer at once."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:
    from gat_tui.config import RunConfig

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    help="Generative Adversarial Trainer (Lee, Han, Lee 2017): train and attack robust classifiers.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.callback(invoke_without_command=True)
def _root(context: typer.Context) -> None:
    if context.invoked_subcommand is None:
        typer.echo(context.get_help())
        typer.echo("\nThe dashboard is not built yet: train with `gat-tui run PRESET --headless`.")


@app.command()
def presets() -> None:
    """List the shipped presets with a one-line description each, validating every one."""
    from gat_tui.config import ConfigError, load_preset
    from gat_tui.presets import shipped_presets

    files = shipped_presets()
    if not files:
        _fail("no presets folder found (looked in ./presets and beside the package)")
    errors = 0
    width = max(len(path.stem) for path in files)
    for path in files:
        try:
            config = load_preset(path)
        except ConfigError as error:
            errors += 1
            typer.secho(f"{path.stem:<{width}}  INVALID: {error}", fg=typer.colors.RED)
            continue
        typer.echo(f"{path.stem:<{width}}  {config.description}")
    if errors:
        raise typer.Exit(1)


def _install_stop_handlers(stop: threading.Event) -> None:
    """First Ctrl-C (or SIGTERM) asks the engine to save and stop; a second Ctrl-C aborts."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        typer.secho("\nstopping after this step and saving a checkpoint (Ctrl-C again to abort)", err=True)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


@app.command()
def run(
    preset: str = typer.Argument(..., help="A preset file, or the name of a shipped preset (see `gat-tui presets`)."),
    headless: bool = typer.Option(False, "--headless", help="Train with a progress bar and log lines, no dashboard."),
    set_: list[str] = typer.Option(
        [], "--set", metavar="KEY=VALUE", help="Override a preset key, dotted (e.g. gat.c_g=0.01). Repeatable."
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", help="The run folder to write (default: <user data dir>/runs/<preset>-<timestamp>)."
    ),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or mps (default: the preset's)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of initialisation, data order and noise."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Number of epochs (overrides train.epochs)."),
    data_dir: Optional[Path] = typer.Option(
        None, "--data-dir", help="Where datasets are stored (default: $GAT_TUI_DATA_DIR or the user cache dir)."
    ),
) -> None:
    """Train a preset. With --headless: a progress bar; Ctrl-C stops cleanly after a checkpoint."""
    from gat_tui.config import ConfigError
    from gat_tui.presets import load_named_preset

    overrides = list(set_)
    for key, value in (("device", device), ("seed", seed), ("train.epochs", epochs)):
        if value is not None:
            overrides.append(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}")
    try:
        _, config = load_named_preset(preset, overrides)
    except ConfigError as error:
        _fail(str(error))
    if not headless:
        _fail("the dashboard is not built yet; add --headless to train with a progress bar", code=2)

    from gat_tui.run_folder import default_runs_dir, new_run_dir

    if out is not None:
        if (out / "metrics.jsonl").exists():
            _fail(f"{out} already holds a run (metrics.jsonl); choose another --out folder")
        run_dir = out
    else:
        run_dir = new_run_dir(default_runs_dir(), config.name)

    _train_headless(config, run_dir, data_dir, resume_from=None)


def _train_headless(config: "RunConfig", run_dir: Path, data_dir: Optional[Path], resume_from: Optional[Path]) -> None:
    from gat_tui.headless import HeadlessPrinter
    from gat_tui.trainer import Trainer

    stop = threading.Event()
    _install_stop_handlers(stop)
    printer = HeadlessPrinter()
    trainer = Trainer(config, run_dir, subscribers=[printer], stop=stop, data_dir=data_dir, resume_from=resume_from)
    try:
        finished = trainer.run()
    finally:
        printer.close()
    if finished.status == "failed":
        raise typer.Exit(1)
    if finished.status == "stopped":
        typer.echo(f"stopped; continue with: gat-tui resume {run_dir} --headless")
        raise typer.Exit(130)


@app.command()
def resume(
    target: Path = typer.Argument(..., help="A run folder (resumes its last checkpoint) or a checkpoint file."),
    headless: bool = typer.Option(False, "--headless", help="Train with a progress bar and log lines, no dashboard."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Train up to this many epochs in all (extends the run)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or mps (default: the run's)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where datasets are stored."),
) -> None:
    """Continue a stopped or interrupted run where its checkpoint left it, appending to its metrics."""
    from gat_tui.checkpoints import CheckpointError
    from gat_tui.config import ConfigError
    from gat_tui.resume import ResumeError, resume_plan

    overrides = [f"train.epochs={epochs}"] if epochs is not None else []
    if device is not None:
        overrides.append(f"device={device!r}")
    try:
        plan = resume_plan(target, overrides)
    except (ResumeError, CheckpointError, ConfigError) as error:
        _fail(str(error))
    if not headless:
        _fail("the dashboard is not built yet; add --headless to train with a progress bar", code=2)
    _train_headless(plan.config, plan.run_dir, data_dir, resume_from=plan.checkpoint)


def main() -> None:
    app(prog_name="gat-tui")


if __name__ == "__main__":
    sys.exit(main())
