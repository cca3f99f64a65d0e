"""The `gat-tui` command line. torch and the engine are imported inside commands, so that
`gat-tui --help` and `gat-tui presets` answer at once."""

from __future__ import annotations

import math
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from gat_tui.training.request import TrainingRequest

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    help="Generative Adversarial Trainer (Lee, Han, Lee 2017): train and attack robust classifiers.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _print_version(wanted: bool) -> None:
    if wanted:
        from gat_tui import __version__

        typer.echo(f"gat-tui {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    context: typer.Context,
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
) -> None:
    if context.invoked_subcommand is None:
        raise typer.Exit(_open_dashboard(None))


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
        _fail(str(error))
    from gat_tui.runs.folder import RunFolderError, check_new_run_dir, default_runs_dir, new_run_dir, remove_if_empty
    from gat_tui.runs.lock import lock_holder
    from gat_tui.training.request import TrainingRequest

    if out is not None:
        holder = lock_holder(out) if out.is_dir() else None
        if holder is not None:
            _fail(f"{out}: this run folder is being trained by {holder.describe()}; choose another --out folder")
        try:
            check_new_run_dir(out)
        except RunFolderError as error:
            _fail(str(error))
        run_dir = out
    else:
        runs_dir = default_runs_dir()
        try:
            run_dir = new_run_dir(runs_dir, config.name)
        except OSError as error:
            _fail(f"cannot create a run folder in {runs_dir}: {error.strerror}; set GAT_TUI_RUNS_DIR or pass --out DIR", 1)

    request = TrainingRequest(config, run_dir, data_dir)
    try:
        if headless:
            _train_headless(request)
        else:
            raise typer.Exit(_open_dashboard(request))
    finally:
        if out is None:  # the folder made above: a run that failed before writing anything leaves none behind
            remove_if_empty(run_dir)


def _open_dashboard(request: TrainingRequest | None) -> int:
    """Run the Textual app (on a given run, or at its start screen); returns the exit code."""
    from gat_tui.dashboard.app import GatTuiApp

    app = GatTuiApp(request)
    code = app.run() or 0
    for line in app.exit_lines():  # after the app has given the terminal back
        typer.echo(line)
    return code


def _train_headless(request: TrainingRequest) -> None:
    from gat_tui.console.headless import HeadlessPrinter
    from gat_tui.training.control import TrainingControl
    from gat_tui.training.trainer import Trainer

    stop = threading.Event()
    _install_stop_handlers(stop)
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
        _fail(str(error))
    if headless:
        _train_headless(request)
    else:
        raise typer.Exit(_open_dashboard(request))


def _check_output_file(path: Path | None, option: str) -> None:
    """Refuse an output path that cannot take a file, before any work whose results it would hold."""
    if path is None:
        return
    if path.is_dir():
        _fail(f"{option} {path}: is a folder; expected a file path")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        _fail(f"{option} {path}: {ancestor} is a file, so no file can be written below it")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        _fail(f"{option} {path}: {ancestor} is not writable")


def _check_output_folder(path: Path | None, option: str) -> None:
    if path is None:
        return
    if path.exists() and not path.is_dir():
        _fail(f"{option} {path}: is a file; expected a folder for the figures")
    _check_output_file(path / "figure.png", option)


def _parse_eps(text: str | None) -> list[float]:
    from gat_tui.robustness.plan import EvalError, parse_sizes

    if not text:
        return []
    try:
        return list(parse_sizes(text, "--eps"))
    except EvalError as error:
        _fail(str(error))


@app.command(name="eval")
def eval_command(
    checkpoint: Path = typer.Argument(..., help="The checkpoint whose classifier is attacked (a .safetensors file or a run folder)."),
    attack: list[str] = typer.Option(
        [], "--attack", metavar="NAME[:EPS,...]",
        help="fgsm, fgm-l2, random, pgd-linf, pgd-l2, gat, autoattack, apgd-ce or apgd-dlr, with its own ε values after "
        "a colon if wanted (fgsm:2/255,8/255). Repeatable. Default: fgsm, fgm-l2, random (+ gat with a generator).",
    ),
    eps: str | None = typer.Option(
        None, "--eps", help="Comma-separated sizes (8/255 allowed) for attacks without their own (default: a sweep per norm)."
    ),
    source: Path | None = typer.Option(None, "--source", help="Indirect attack: perturbations from this checkpoint's gradients."),
    generator: Path | None = typer.Option(
        None, "--generator", help="GAT attacker generator checkpoint (default: CHECKPOINT's own, if it has one)."
    ),
    split: str = typer.Option("test", "--split", help="val or test."),
    limit: int = typer.Option(0, "--limit", help="Evaluate the first N images only (0 = all)."),
    match_power: bool = typer.Option(False, "--match-power", help="Add FGM-L2 and FGSM at the GAT attacker's mean L2 power (Fig. 2)."),
    pgd_steps: int = typer.Option(10, "--pgd-steps", help="PGD iterations."),
    pgd_step_size: float | None = typer.Option(None, "--pgd-step-size", help="PGD step size (default 2.5·ε/steps)."),
    clip: bool | None = typer.Option(
        None, "--clip/--no-clip", help="Keep adversarial images in [0, 1] (default: as the checkpoint was trained, perturbation.clip)."
    ),
    norm: str = typer.Option("linf", "--norm", help="linf or l2: the norm of autoattack, apgd-ce and apgd-dlr."),
    version: str = typer.Option("standard", "--version", help="AutoAttack version: standard, plus, rand or custom."),
    aa_attacks: str | None = typer.Option(
        None, "--aa-attacks", help="With --version custom: AutoAttack's stages, e.g. apgd-ce,apgd-t,fab-t,square."
    ),
    batch_size: int = typer.Option(500, "--batch-size", help="Images per batch on the device."),
    json_path: Path | None = typer.Option(None, "--json", help="Write every figure to this JSON file."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Where datasets are stored."),
) -> None:
    """Attack a saved model: accuracy and perturbation norms per attack and ε, direct or indirect."""
    from gat_tui.robustness.plan import AttackSpec, AutoAttackOptions, EvalError, parse_attack_spec
    from gat_tui.runs.folder import RunPaths

    if checkpoint.is_dir():
        checkpoint = RunPaths(checkpoint).best_checkpoint
    if source is not None and source.is_dir():
        source = RunPaths(source).best_checkpoint
    eps_values = _parse_eps(eps)
    try:
        specs: list[AttackSpec] = [parse_attack_spec(text) for text in attack]
    except EvalError as error:
        _fail(str(error))
    if split not in ("val", "test"):
        _fail(f"--split {split!r}: expected val or test")
    if limit < 0 or batch_size < 1 or pgd_steps < 1:
        _fail("--limit must be >= 0, --batch-size and --pgd-steps >= 1")
    if pgd_step_size is not None and not (math.isfinite(pgd_step_size) and pgd_step_size > 0):
        _fail(f"--pgd-step-size {pgd_step_size}: expected a finite number > 0")
    if norm not in ("linf", "l2"):
        _fail(f"--norm {norm!r}: expected linf or l2")
    if version not in ("standard", "plus", "rand", "custom"):
        _fail(f"--version {version!r}: expected standard, plus, rand or custom")
    stages = tuple(part.strip() for part in aa_attacks.split(",") if part.strip()) if aa_attacks else ()
    _check_output_file(json_path, "--json")

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gat_tui.atomic import describe_os_error
    from gat_tui.checkpoints import CheckpointError
    from gat_tui.config import ConfigError
    from gat_tui.console.eval_tables import accuracy_charts, results_table, write_json
    from gat_tui.data import DataError
    from gat_tui.device import DeviceError
    from gat_tui.robustness.evaluate import evaluate_checkpoint

    console = Console()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console)
    task = progress.add_task("loading", total=None)

    def on_progress(what: str, done: int, total: int) -> None:
        progress.update(task, description=what, completed=done, total=total)

    try:
        with progress:
            evaluation = evaluate_checkpoint(
                checkpoint, specs, eps_values, source, generator, split, limit, data_dir, device,
                match_power, pgd_steps, pgd_step_size, batch_size, on_progress,
                clip=clip, autoattack=AutoAttackOptions(norm, version, stages),
            )
    except (CheckpointError, ConfigError, EvalError, DataError, DeviceError) as error:
        _fail(str(error))
    results, torch_device = evaluation.results, evaluation.device
    count = evaluation.count
    kind = f"indirect, perturbations from {source}" if source else "direct"
    origin = "from the checkpoint's training config; --clip/--no-clip to choose" if evaluation.clip_from_checkpoint else "as asked"
    console.print(f"clipping adversarial images to [0, 1]: {'on' if evaluation.clip else 'off'} ({origin})", highlight=False)
    if not evaluation.clip and any(row.norm is not None for row in results):
        console.print("autoattack, apgd-ce and apgd-dlr always keep images in [0, 1]", highlight=False)
    for note in evaluation.notes:
        typer.secho(f"note (AutoAttack's checks): {note}", fg=typer.colors.YELLOW, err=True)
    console.print(results_table(results, f"{checkpoint} — {split} split, {count} images, {kind}"))
    for chart in accuracy_charts(results, color=console.is_terminal and not console.no_color):
        console.print(chart)
    if json_path is not None:
        try:
            extra: dict[str, object] = {"device": str(torch_device), "clip": evaluation.clip}
            write_json(json_path, checkpoint, split, count, results, extra)
        except OSError as error:
            _fail(describe_os_error(error, "cannot write"), 1)
        console.print(f"wrote {json_path}", highlight=False)


@app.command()
def runs(
    runs_dir: Path | None = typer.Option(None, "--dir", help="Folder of runs (default: $GAT_TUI_RUNS_DIR or the user data dir)."),
) -> None:
    """List the runs: preset, status, epochs done, best validation accuracy, folder."""
    from rich.console import Console
    from rich.table import Table

    from gat_tui.console.runs_table import RUN_COLUMNS, STATUS_COLOURS, run_cells, shown_status
    from gat_tui.runs.folder import default_runs_dir
    from gat_tui.runs.index import scan_runs

    folder = runs_dir or default_runs_dir()
    scan = scan_runs(folder)
    for problem in scan.skipped:
        typer.secho(f"warning: skipped {problem}", fg=typer.colors.YELLOW, err=True)
    records = scan.records
    if not records:
        typer.echo(f"no runs in {folder}")
        return
    table = Table(title=f"runs in {folder}")
    for column in RUN_COLUMNS:
        table.add_column(column)
    for record in records:
        preset, method, status, epochs, accuracy, where = run_cells(record, shown_status(record))
        table.add_row(preset, method, f"[{STATUS_COLOURS.get(status, '')}]{status}[/]", epochs, accuracy, where)
    Console().print(table)


@app.command()
def sweep(
    sweep_file: Path = typer.Argument(..., help="A sweep TOML (see presets/paper/)."),
    seeds: int | None = typer.Option(None, "--seeds", help="Number of seeds (default: the sweep file's)."),
    headless: bool = typer.Option(False, "--headless", help="Progress bars and log lines instead of the dashboard."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: <runs dir>/sweeps/<sweep name>)."),
    shard: str = typer.Option("0/1", "--shard", help="Run only share I of N (by seed), e.g. one Slurm array task each."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Where datasets are stored."),
) -> None:
    """Run presets × seeds (× override grids; tuning stages first), then evaluations; re-run to resume, --shard to split.

    Exit status: 0 finished, 1 a job failed, 3 repeat runs wait for another shard's tuning runs, 130 stopped.
    """
    from gat_tui.config import ConfigError
    from gat_tui.runs.folder import default_runs_dir
    from gat_tui.sweep.plan import load_sweep, parse_shard

    try:
        plan = load_sweep(sweep_file, seeds)
        shard_index, shard_count = parse_shard(shard)
    except ConfigError as error:
        _fail(str(error))
    folder = out or default_runs_dir() / "sweeps" / plan.name
    if not headless:
        from gat_tui.dashboard.app import GatTuiApp
        from gat_tui.dashboard.sweep_screen import SweepRequest

        request = SweepRequest(plan, folder, shard_index, shard_count, data_dir)
        raise typer.Exit(GatTuiApp(sweep=request).run() or 0)

    from rich.console import Console

    from gat_tui.console.headless import HeadlessPrinter
    from gat_tui.sweep.runner import SweepProgress, SweepRunner

    console = Console()
    stop = threading.Event()
    _install_stop_handlers(stop)
    printers: list[HeadlessPrinter] = []

    def subscribers_for(job: object) -> list:
        printers[:] = [HeadlessPrinter(console)]
        return printers

    def on_progress(progress: SweepProgress) -> None:
        colour = {"finished": "green", "skipped": "dim", "failed": "red", "stopped": "yellow", "waiting": "yellow"}.get(progress.state, "cyan")
        line = f"[{colour}]sweep {progress.done}/{progress.total} {progress.state}[/]: {progress.job}"
        console.print(line + (f" ({progress.message})" if progress.message and progress.state in ("failed", "waiting") else ""))

    console.print(f"sweep {plan.name}: {plan.seeds} seeds, shard {shard_index}/{shard_count}, into {folder}", highlight=False)
    runner = SweepRunner(plan, folder, shard_index, shard_count, stop, data_dir, on_progress, subscribers_for)
    try:
        status = runner.run()
    finally:
        for printer in printers:
            printer.close()
    console.print(f"sweep {status}; the table: gat-tui report {folder}", highlight=False)
    raise typer.Exit({"finished": 0, "stopped": 130, "waiting": 3}.get(status, 1))


@app.command()
def report(
    sweep_dir: Path = typer.Argument(..., help="A sweep's output folder (merges every shard's results found there)."),
    markdown_path: Path | None = typer.Option(None, "--markdown", help="Also write the tables as Markdown."),
    json_path: Path | None = typer.Option(None, "--json", help="Also write every figure as JSON."),
    png_dir: Path | None = typer.Option(None, "--png", help="Also draw PNG figures here (needs the plot extra)."),
) -> None:
    """Table 2 as mean ± std over seeds beside the paper's figures, and the evaluation curves."""
    import json

    from rich.console import Console

    from gat_tui.atomic import describe_os_error, write_text_atomically
    from gat_tui.config import ConfigError
    from gat_tui.console.sweep_report import markdown, report_tables, terminal_charts, write_pngs
    from gat_tui.sweep.report import build_report

    if not (sweep_dir / "sweep.toml").exists():
        _fail(f"{sweep_dir}: not a sweep folder (no sweep.toml); run gat-tui sweep first")
    _check_output_file(markdown_path, "--markdown")
    _check_output_file(json_path, "--json")
    _check_output_folder(png_dir, "--png")
    try:
        result = build_report(sweep_dir)
    except ConfigError as error:
        _fail(str(error))
    console = Console()
    for problem in result.skipped:
        typer.secho(f"warning: skipped {problem}", fg=typer.colors.YELLOW, err=True)
    for table in report_tables(result):
        console.print(table)
    for chart in terminal_charts(result, color=console.is_terminal and not console.no_color):
        console.print(chart)
    try:
        if markdown_path is not None:
            write_text_atomically(markdown_path, markdown(result))
            console.print(f"wrote {markdown_path}", highlight=False)
        if json_path is not None:
            write_text_atomically(json_path, json.dumps(result.to_json(), indent=2) + "\n")
            console.print(f"wrote {json_path}", highlight=False)
        if png_dir is not None:
            for path in write_pngs(result, png_dir):
                console.print(f"wrote {path}", highlight=False)
    except OSError as error:
        _fail(describe_os_error(error, "cannot write"), 1)
    except RuntimeError as error:  # no matplotlib: the message says how to install it
        _fail(str(error))


@app.command()
def export(
    source: Path = typer.Argument(..., help="A run folder, a sweep folder or a folder of runs."),
    tensorboard: Path = typer.Option(
        ..., "--tensorboard", help="Write TensorBoard event files here, one subfolder per run of a sweep (label/seed-k)."
    ),
) -> None:
    """Rebuild TensorBoard event files from runs' metrics.jsonl (runs made before them, or with them off)."""
    from gat_tui.atomic import describe_os_error
    from gat_tui.runs.tensorboard import ExportError, export_tensorboard

    _check_output_folder(tensorboard, "--tensorboard")
    try:
        exported = export_tensorboard(source, tensorboard)
    except ExportError as error:
        _fail(str(error))
    except OSError as error:
        _fail(describe_os_error(error, "cannot write"), 1)
    for run in exported:
        results = ", hyperparameters and test figures" if run.with_results else ""
        typer.echo(f"{run.run_dir}: {run.records} metrics lines{results} -> {run.out_dir}")
    typer.echo(f"view with: tensorboard --logdir {tensorboard}")


def main() -> None:
    app(prog_name="gat-tui")


if __name__ == "__main__":
    main()
