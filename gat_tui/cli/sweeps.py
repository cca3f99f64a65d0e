"""Commands over many runs: `sweep`, `report` (Table 2 and the curves) and `export` (TensorBoard files, RobustBench cards)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from gat_tui.cli.app import app, check_output_file, check_output_folder, fail, headless_unless_terminal, install_stop_handlers

if TYPE_CHECKING:
    from rich.console import Console

    from gat_tui.sweep.plan import Sweep
    from gat_tui.sweep.runner import SweepProgress


@app.command()
def sweep(
    sweep_file: Path | None = typer.Argument(None, help="A sweep TOML, or the name of a shipped one (e.g. smoke_sweep, table2_cifar10; see presets/paper/)."),
    seeds: int | None = typer.Option(None, "--seeds", help="Number of seeds (default: the sweep file's)."),
    headless: bool = typer.Option(False, "--headless", help="Progress bars and log lines instead of the dashboard."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: <runs dir>/sweeps/<sweep name>)."),
    shard: str = typer.Option("0/1", "--shard", help="Run only share I of N (by seed), e.g. one Slurm array task each."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Where datasets are stored."),
    executor: str = typer.Option(
        "sequential", "--executor",
        help="sequential: every job in this process; local: a process per job (--jobs at a time); slurm: job arrays (needs the cluster extra).",
    ),
    jobs_at_once: int | None = typer.Option(None, "--jobs", help="With --executor local: jobs at a time (default: one per visible GPU, else 1)."),
    slurm_partition: str | None = typer.Option(None, "--slurm-partition", help="With --executor slurm: the partition."),
    slurm_time: str | None = typer.Option(None, "--slurm-time", help="With --executor slurm: each job's time limit, minutes or D-HH:MM:SS."),
    slurm_gpus_per_task: int | None = typer.Option(None, "--slurm-gpus-per-task", help="With --executor slurm: GPUs per job."),
    array_parallelism: int | None = typer.Option(None, "--array-parallelism", help="With --executor slurm: array tasks running at once."),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --executor slurm: print each level's sbatch script, submit nothing."),
    status: Path | None = typer.Option(None, "--status", help="Show where the sweep in this folder stands (jobs queued, running, done, failed) and exit."),
) -> None:
    """Run presets × seeds (× override grids; tuning stages first), then evaluations; re-run to resume, --shard to split.

    Exit status: 0 finished (or submitted), 1 a job failed, 3 repeat runs wait for another shard's tuning runs, 130 stopped.
    """
    from gat_tui.config import ConfigError
    from gat_tui.presets import resolve_sweep
    from gat_tui.runs.folder import default_runs_dir
    from gat_tui.sweep.executors import EXECUTORS
    from gat_tui.sweep.plan import check_runs, load_sweep, parse_shard

    if status is not None:
        show_status(status)
        raise typer.Exit(0)
    if sweep_file is None:
        fail("give a sweep file (gat-tui sweep SWEEP.toml), or --status OUT to see where a sweep stands")
    if executor not in EXECUTORS:
        fail(f"--executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    slurm_given = [name for name, value in (("--slurm-partition", slurm_partition), ("--slurm-time", slurm_time),
                   ("--slurm-gpus-per-task", slurm_gpus_per_task), ("--array-parallelism", array_parallelism)) if value is not None]
    if dry_run:
        slurm_given.append("--dry-run")
    if slurm_given and executor != "slurm":
        fail(f"{slurm_given[0]} is for --executor slurm")
    if jobs_at_once is not None and executor != "local":
        fail("--jobs is for --executor local")
    if executor != "sequential" and shard != "0/1":
        fail(f"--shard splits a sequential sweep; --executor {executor} shares the jobs out itself")
    try:
        sweep_file = resolve_sweep(str(sweep_file))
        plan = load_sweep(sweep_file, seeds)
        shard_index, shard_count = parse_shard(shard)
        check_runs(plan)
    except ConfigError as error:
        fail(str(error))
    _require_extras(sweep_file, plan)
    folder = out or default_runs_dir() / "sweeps" / plan.name
    from gat_tui.sweep.runner import check_sweep_out

    try:
        check_sweep_out(folder, plan)
    except ConfigError as error:
        fail(str(error))
    if executor == "slurm":
        submit_to_slurm(plan, folder, data_dir, slurm_partition, slurm_time, slurm_gpus_per_task, array_parallelism, dry_run)
        raise typer.Exit(0)
    if executor in ("local", "debug"):
        raise typer.Exit(run_locally(plan, folder, executor, jobs_at_once, data_dir))
    if not headless_unless_terminal(headless):
        from gat_tui.dashboard.app import GatTuiApp
        from gat_tui.dashboard.sweep_screen import SweepRequest

        request = SweepRequest(plan, folder, shard_index, shard_count, data_dir)
        app = GatTuiApp(sweep=request)
        code = app.run() or 0
        for line in app.exit_lines():  # after the app has given the terminal back: the folder and `gat-tui report`
            typer.echo(line)
        raise typer.Exit(code)

    from gat_tui.console.headless import HeadlessPrinter, output_console
    from gat_tui.sweep.runner import SweepRunner

    console = output_console()
    stop = threading.Event()
    install_stop_handlers(stop)
    printers: list[HeadlessPrinter] = []

    def subscribers_for(job: object) -> list:
        printers[:] = [HeadlessPrinter(console)]
        return printers

    console.print(f"sweep {plan.name}: {plan.seeds} seeds, shard {shard_index}/{shard_count}, into {folder}", highlight=False, soft_wrap=True)
    runner = SweepRunner(plan, folder, shard_index, shard_count, stop, data_dir, progress_printer(console), subscribers_for)
    try:
        result = runner.run()
    finally:
        for printer in printers:
            printer.close()
    console.print(f"sweep {result}; the table: gat-tui report {folder}", highlight=False, soft_wrap=True)
    raise typer.Exit({"finished": 0, "stopped": 130, "waiting": 3}.get(result, 1))


def progress_printer(console: Console) -> Callable[[SweepProgress], None]:
    def on_progress(progress: SweepProgress) -> None:
        colour = {"finished": "green", "skipped": "dim", "failed": "red", "stopped": "yellow", "waiting": "yellow"}.get(progress.state, "cyan")
        line = f"[{colour}]sweep {progress.done}/{progress.total} {progress.state}[/]: {escape(progress.job)}"
        with contextlib.suppress(OSError, UnicodeError):  # a console gone away must not fail the sweep's jobs
            console.print(line + (f" ({escape(progress.message)})" if progress.message and progress.state in ("failed", "waiting") else ""), soft_wrap=True)

    return on_progress


def run_locally(plan: Sweep, folder: Path, executor: str, jobs_at_once: int | None, data_dir: Path | None) -> int:
    """--executor local (or debug): each job through submitit, level by level; returns the exit code."""
    from gat_tui.console.headless import output_console
    from gat_tui.sweep.executors import ExecutorError, LocalSweep

    console = output_console()
    stop = threading.Event()
    try:
        local = LocalSweep(plan, folder, executor, jobs_at_once, data_dir, stop, progress_printer(console))
    except ExecutorError as error:
        fail(str(error))
    install_stop_handlers(stop)
    gpus = f" on GPUs {', '.join(local.gpus)}" if local.gpus else ""
    console.print(f"sweep {plan.name}: {plan.seeds} seeds, {executor} executor, {local.at_once} jobs at a time{gpus}, into {folder}", highlight=False, soft_wrap=True)
    result = local.run()
    console.print(f"sweep {result}; the table: gat-tui report {folder}", highlight=False, soft_wrap=True)
    return {"finished": 0, "stopped": 130}.get(result, 1)


def submit_to_slurm(
    plan: Sweep, folder: Path, data_dir: Path | None, partition: str | None, time: str | None,
    gpus_per_task: int | None, array_parallelism: int | None, dry_run: bool,
) -> None:
    from gat_tui.sweep.executors import ExecutorError, SlurmOptions, slurm_scripts, submit_slurm

    options = SlurmOptions(partition, time, gpus_per_task, array_parallelism)
    try:
        if dry_run:
            for index, (count, script) in enumerate(slurm_scripts(plan, folder, options)):
                typer.echo(f"# --- level {index}: a job array of {count} job(s); nothing submitted (--dry-run)")
                typer.echo(script)
            return
        submitted = submit_slurm(plan, folder, options, data_dir)
    except ExecutorError as error:
        fail(str(error))
    if not submitted:
        typer.echo(f"nothing to submit: every job of {plan.name} is done in {folder}")
        return
    for index, (array, count) in enumerate(submitted):
        after = f", after array {submitted[index - 1][0]} ends (afterany)" if index else ""
        typer.echo(f"level {index}: job array {array} of {count} job(s){after}")
    typer.echo(f"submitted; where it stands: gat-tui sweep --status {folder}; the table once done: gat-tui report {folder}")


def show_status(folder: Path) -> None:
    """`--status OUT`: counts by state, then each job not done yet."""
    from rich.console import Console
    from rich.table import Table

    from gat_tui.config import ConfigError
    from gat_tui.sweep.status import sweep_status

    if not (folder / "sweep.toml").exists():
        fail(f"{folder}: not a sweep folder (no sweep.toml); run gat-tui sweep first")
    try:
        result = sweep_status(folder)
    except ConfigError as error:
        fail(str(error))
    console = Console()
    counts = ", ".join(f"{count} {state}" for state, count in result.counts().items())
    executor = f" ({result.executor} executor)" if result.executor else ""
    jobs = f"{len(result.jobs)} job{'' if len(result.jobs) == 1 else 's'}"
    console.print(f"sweep {result.name}{executor} in {folder}: {jobs}: {counts}", highlight=False, soft_wrap=True)
    left = [job for job in result.jobs if job.state != "done"]
    if not left:
        return
    table = Table("job", "state", "where", "job id", "note")
    for job in left:
        table.add_row(escape(job.job), job.state, job.where, job.job_id, escape(job.message))
    console.print(table)


def _require_extras(sweep_file: Path, plan: Sweep) -> None:
    """Refuse before any training a sweep whose evaluations need pyautoattack when it is missing."""
    from gat_tui.attacks import AUTOATTACKS
    from gat_tui.attacks.autoattack import MissingExtraError, require_pyautoattack

    for index, evaluation in enumerate(plan.evaluations):
        if evaluation.attack in AUTOATTACKS:
            try:
                require_pyautoattack(evaluation.attack)
            except MissingExtraError as error:
                fail(f"{sweep_file}: evaluations[{index}] ({evaluation.name}): {error}")


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
        fail(f"{sweep_dir}: not a sweep folder (no sweep.toml); run gat-tui sweep first")
    check_output_file(markdown_path, "--markdown")
    check_output_file(json_path, "--json")
    check_output_folder(png_dir, "--png")
    try:
        result = build_report(sweep_dir)
    except ConfigError as error:
        fail(str(error))
    console = Console()
    for problem in result.skipped:
        typer.secho(f"warning: skipped {problem}", fg=typer.colors.YELLOW, err=True)
    for table in report_tables(result, console.width):
        console.print(table)
    for chart in terminal_charts(result, width=min(console.width - 2, 78), color=console.is_terminal and not console.no_color):
        console.print(chart)
    try:
        if markdown_path is not None:
            write_text_atomically(markdown_path, markdown(result))
            console.print(f"wrote {markdown_path}", highlight=False, soft_wrap=True)
        if json_path is not None:
            write_text_atomically(json_path, json.dumps(result.to_json(), indent=2) + "\n")
            console.print(f"wrote {json_path}", highlight=False, soft_wrap=True)
        if png_dir is not None:
            for path in write_pngs(result, png_dir):
                console.print(f"wrote {path}", highlight=False, soft_wrap=True)
    except OSError as error:
        fail(describe_os_error(error, "cannot write"), 1)
    except RuntimeError as error:  # no matplotlib: the message says how to install it
        fail(str(error))


@app.command()
def export(
    source: Path = typer.Argument(..., help="A run folder (--robustbench), or a run, sweep or folder of runs (--tensorboard)."),
    tensorboard: Path | None = typer.Option(
        None, "--tensorboard", help="Write TensorBoard event files here, one subfolder per run of a sweep (label/seed-k)."
    ),
    robustbench: Path | None = typer.Option(
        None, "--robustbench", help="Write the run's classifier (safetensors) and a RobustBench model card (JSON) into this new folder."
    ),
    threat_model: str = typer.Option("linf", "--threat-model", help="With --robustbench: linf or l2, the card's threat model."),
    eps: str | None = typer.Option(None, "--eps", help="With --robustbench: the card's ε (default 8/255 for linf, 0.5 for l2)."),
) -> None:
    """Rebuild TensorBoard event files from runs' metrics.jsonl, or export a run for RobustBench."""
    from gat_tui.atomic import describe_os_error

    if (tensorboard is None) == (robustbench is None):
        fail("give one of --tensorboard DIR and --robustbench DIR")
    if robustbench is not None:
        _export_robustbench(source, robustbench, threat_model, eps)
        return
    if eps is not None or threat_model != "linf":
        fail("--threat-model and --eps: only with --robustbench")
    assert tensorboard is not None
    from gat_tui.runs.tensorboard import ExportError, export_tensorboard

    check_output_folder(tensorboard, "--tensorboard")
    try:
        exported = export_tensorboard(source, tensorboard)
    except ExportError as error:
        fail(str(error))
    except OSError as error:
        fail(describe_os_error(error, "cannot write"), 1)
    for run in exported:
        results = ", hyperparameters and test figures" if run.with_results else ""
        typer.echo(f"{run.run_dir}: {run.records} metrics lines{results} -> {run.out_dir}")
    if (source / "sweep.toml").is_file() and (source / "evals").is_dir():  # a sweep with evaluations
        from gat_tui.config import ConfigError
        from gat_tui.sweep.tensorboard_curves import export_sweep_curves

        try:
            curves = export_sweep_curves(source, tensorboard)
        except ExportError as error:
            fail(str(error))
        except ConfigError as error:  # the runs are exported; only the curves need the sweep file
            typer.secho(f"warning: the evaluation curves are not exported: {error}", fg=typer.colors.YELLOW, err=True)
            curves = []
        except OSError as error:
            fail(describe_os_error(error, "cannot write"), 1)
        for curve in curves:
            typer.echo(f"evaluation {curve.evaluation}: accuracy against ε × {curve.scale} (the step), {curve.series} series -> {curve.out_dir}")
    typer.echo(f"view with: tensorboard --logdir {tensorboard}")


def _export_robustbench(run_dir: Path, out: Path, threat_model: str, eps_text: str | None) -> None:
    from gat_tui.atomic import describe_os_error
    from gat_tui.config import ConfigError
    from gat_tui.robustness.plan import EvalError, parse_sizes
    from gat_tui.runs.robustbench import RobustBenchExportError, export_robustbench

    eps = None
    if eps_text is not None:
        try:
            values = parse_sizes(eps_text, "--eps")
        except EvalError as error:
            fail(str(error))
        if len(values) != 1 or values[0] <= 0:
            fail(f"--eps {eps_text!r}: expected one size > 0, e.g. 8/255")
        eps = values[0]
    try:
        card = export_robustbench(run_dir, out, threat_model, eps)
    except (RobustBenchExportError, ConfigError) as error:
        fail(str(error))
    except OSError as error:
        fail(describe_os_error(error, "cannot write"), 1)
    typer.echo(f"wrote {out}/model.safetensors, model_card.json and config.toml")
    typer.echo(
        f"{card['dataset']} {card['threat_model']} ε={card['eps']}: clean {card['clean_acc']} %, "
        f"AutoAttack {card['autoattack_acc'] if card['autoattack_acc'] is not None else 'not recorded'}"
        + (f" % on {card['n_test_images']} test images" if card["n_test_images"] is not None else "")
    )
    for note in card["notes"]:
        typer.echo(f"note: {note}")
