"""Commands that train: `presets`, `run` and `resume`."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gat_tui.cli.app import app, fail, headless_unless_terminal, install_stop_handlers, open_dashboard

if TYPE_CHECKING:
    from gat_tui.training.request import TrainingRequest


@app.command()
def presets() -> None:
    """List the presets (./presets' own and the shipped ones) with a one-line description each, validating every one."""
    from gat_tui.config import ConfigError, load_preset
    from gat_tui.presets import searched_places, shipped_presets

    files = shipped_presets()
    if not files:
        fail(f"no presets found (looked in {searched_places()})")
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


@app.command()
def schema() -> None:
    """Print the JSON Schema of the preset format, for editors' TOML language servers (taplo, Even Better TOML)."""
    import json

    from gat_tui.config import preset_json_schema

    typer.echo(json.dumps(preset_json_schema(), indent=2, ensure_ascii=False))


@app.command()
def run(
    preset: str = typer.Argument(..., help="A preset file, or the name of a shipped preset (see `gat-tui presets`)."),
    headless: bool = typer.Option(False, "--headless", help="Train with a progress bar and log lines instead of the dashboard."),
    set_: list[str] = typer.Option(
        [], "--set", metavar="KEY=VALUE", help="Override a preset key, dotted (e.g. gat.c_g=0.01). Repeatable."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="The run folder to write (default: <user data dir>/runs/<preset>-<timestamp>)."
    ),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or mps (default: the preset's)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of initialisation, data order and noise."),
    epochs: int | None = typer.Option(None, "--epochs", help="Number of epochs (overrides train.epochs)."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Where datasets are stored (default: $GAT_TUI_DATA_DIR or the user cache dir)."
    ),
    exit_on_finish: bool = typer.Option(
        False, "--exit-on-finish", help="Dashboard: leave when the run ends instead of waiting for a key (for scripts and `script`)."
    ),
) -> None:
    """Train a preset in the dashboard, or with --headless a progress bar; Ctrl-C stops after a checkpoint."""
    from gat_tui.config import ConfigError
    from gat_tui.presets import load_named_preset

    overrides = list(set_)
    for key, value in (("device", device), ("seed", seed), ("train.epochs", epochs)):
        if value is not None:
            overrides.append(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}")
    try:
        _, config = load_named_preset(preset, overrides)
    except ConfigError as error:
        fail(str(error))
    from gat_tui.atomic import describe_os_error
    from gat_tui.runs.folder import RunFolderError, check_new_run_dir, default_runs_dir, new_run_dir, remove_if_empty
    from gat_tui.runs.lock import lock_holder
    from gat_tui.training.request import TrainingRequest

    if out is not None:
        try:
            holder = lock_holder(out) if out.is_dir() else None
            if holder is not None:
                fail(f"{out}: this run folder is being trained by {holder.describe()}; choose another --out folder")
            check_new_run_dir(out)
        except RunFolderError as error:
            fail(str(error))
        except OSError as error:  # e.g. a name longer than the file system takes
            fail(f"--out: {describe_os_error(error, 'cannot use')}")
        run_dir = out
    else:
        runs_dir = default_runs_dir()
        try:
            run_dir = new_run_dir(runs_dir, config.name)
        except OSError as error:
            fail(f"cannot create a run folder in {runs_dir}: {error.strerror}; set GAT_TUI_RUNS_DIR or pass --out DIR", 1)

    request = TrainingRequest(config, run_dir, data_dir)
    try:
        if headless_unless_terminal(headless):
            _train_headless(request)
        else:
            raise typer.Exit(open_dashboard(request, exit_on_finish))
    finally:
        if out is None:  # the folder made above: a run that failed before writing anything leaves none behind
            remove_if_empty(run_dir)


def _train_headless(request: TrainingRequest) -> None:
    from gat_tui.console.headless import HeadlessPrinter
    from gat_tui.training.control import TrainingControl
    from gat_tui.training.trainer import Trainer

    stop = threading.Event()
    install_stop_handlers(stop)
    printer = HeadlessPrinter()
    trainer = Trainer(request, subscribers=[printer], control=TrainingControl(stop=stop))
    try:
        finished = trainer.run()
    finally:
        printer.close()
    if finished.status == "failed":
        raise typer.Exit(1)
    if finished.status == "stopped":
        typer.echo(f"stopped; continue with: gat-tui resume {request.run_dir} --headless")
        raise typer.Exit(130)


@app.command()
def resume(
    target: Path = typer.Argument(..., help="A run folder (resumes its last checkpoint) or a checkpoint file."),
    headless: bool = typer.Option(False, "--headless", help="Train with a progress bar and log lines, no dashboard."),
    epochs: int | None = typer.Option(None, "--epochs", help="Train up to this many epochs in all (extends the run)."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or mps (default: the run's)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Where datasets are stored."),
    exit_on_finish: bool = typer.Option(
        False, "--exit-on-finish", help="Dashboard: leave when the run ends instead of waiting for a key (for scripts and `script`)."
    ),
) -> None:
    """Continue a stopped or interrupted run where its checkpoint left it, appending to its metrics."""
    from gat_tui.checkpoints import CheckpointError
    from gat_tui.config import ConfigError
    from gat_tui.training.resume import ResumeError, resume_request

    overrides = [f"train.epochs={epochs}"] if epochs is not None else []
    if device is not None:
        overrides.append(f"device={device!r}")
    try:
        request = resume_request(target, overrides, data_dir)
    except (ResumeError, CheckpointError, ConfigError) as error:
        fail(str(error))
    if headless_unless_terminal(headless):
        _train_headless(request)
    else:
        raise typer.Exit(open_dashboard(request, exit_on_finish))
