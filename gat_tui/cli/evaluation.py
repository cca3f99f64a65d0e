"""Commands that read saved runs: `eval` (attacks on a checkpoint) and `runs` (the list of runs)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from gat_tui.cli.app import app, check_output_file, fail

if TYPE_CHECKING:
    from rich.console import Console

    from gat_tui.robustness.external import ExternalModel


def _parse_eps(text: str | None) -> list[float]:
    from gat_tui.robustness.plan import EvalError, parse_sizes

    if not text:
        return []
    try:
        return list(parse_sizes(text, "--eps"))
    except EvalError as error:
        fail(str(error))


@app.command(name="eval")
def eval_command(
    checkpoint: Path | None = typer.Argument(
        None, help="The checkpoint whose classifier is attacked (a .safetensors file or a run folder); or --model and --weights."
    ),
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
    model: str | None = typer.Option(
        None, "--model", help="Instead of CHECKPOINT, a network gat-tui did not train: allconv, torchvision:NAME, timm:NAME or "
        "package.module:factory (imports and runs that module), with --weights."
    ),
    weights: Path | None = typer.Option(None, "--weights", help="With --model: its state dict, a .safetensors file (never a pickle)."),
    dataset: str = typer.Option(
        "cifar10", "--dataset", help="With --model: cifar10, cifar100, mnist, fashion_mnist, svhn, synthetic, imagefolder, or a preset file or run folder whose [data] to use."
    ),
    data: list[str] = typer.Option([], "--data", metavar="KEY=VALUE", help="With --model: a [data] setting, e.g. path=DIR or test_size=500. Repeatable."),
    num_classes: int | None = typer.Option(None, "--num-classes", help="With --model: the synthetic data's classes (as --data num_classes=N)."),
    image_size: int | None = typer.Option(
        None, "--image-size", help="With --model: the synthetic or imagefolder images' side in pixels (as --data image_size=N)."
    ),
    normalize: str | None = typer.Option(
        None, "--normalize", metavar="MEAN/STD", help="With --model: per-channel normalisation inside the model, e.g. "
        "0.4914,0.4822,0.4465/0.2470,0.2435,0.2616 (attacks and ε stay in pixel space)."
    ),
) -> None:
    """Attack a saved model: accuracy and perturbation norms per attack and ε, direct or indirect.

    CHECKPOINT is a gat-tui run's; --model SPEC --weights FILE.safetensors evaluates any other network.
    """
    from gat_tui.robustness.options import EvalOptions
    from gat_tui.robustness.plan import AttackSpec, AutoAttackOptions, EvalError, parse_attack_spec
    from gat_tui.runs.folder import RunPaths

    external = _external_model(checkpoint, model, weights, dataset, data, num_classes, image_size, normalize)
    if checkpoint is not None and checkpoint.is_dir():
        checkpoint = RunPaths(checkpoint).best_checkpoint
    if source is not None and source.is_dir():
        source = RunPaths(source).best_checkpoint
    eps_values = _parse_eps(eps)
    try:
        specs: list[AttackSpec] = [parse_attack_spec(text) for text in attack]
        stages = tuple(part.strip() for part in aa_attacks.split(",") if part.strip()) if aa_attacks else ()
        options = EvalOptions(
            attacks=tuple(specs), eps_values=tuple(eps_values), source=source, generator=generator, split=split, limit=limit,
            data_dir=data_dir, device_name=device, match_power=match_power, pgd_steps=pgd_steps, pgd_step_size=pgd_step_size,
            batch_size=batch_size, clip=clip, autoattack=AutoAttackOptions(norm, version, stages),
        )
    except EvalError as error:
        fail(str(error))
    check_output_file(json_path, "--json")

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gat_tui.atomic import describe_os_error
    from gat_tui.checkpoints import CheckpointError
    from gat_tui.config import ConfigError
    from gat_tui.console.eval_tables import accuracy_charts, results_table, settings_lines, write_json
    from gat_tui.data import DataError
    from gat_tui.device import DeviceError
    from gat_tui.robustness.evaluate import CheckpointEvaluation, evaluate_checkpoint
    from gat_tui.robustness.external import evaluate_model

    console = Console()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console)
    task = progress.add_task("loading", total=None)

    def on_progress(what: str, done: int, total: int) -> None:
        progress.update(task, description=what, completed=done, total=total)

    def on_notice(message: str) -> None:  # AutoAttack's state file: resumed, or one ignored
        console.print(message, highlight=False, soft_wrap=True)

    options = replace(options, progress=on_progress, on_notice=on_notice)
    try:
        with progress:
            evaluation: CheckpointEvaluation
            if external is not None:
                evaluation = evaluate_model(external, options)
            else:
                assert checkpoint is not None  # `_external_model` has checked that one of them is given
                evaluation = evaluate_checkpoint(checkpoint, options)
    except (CheckpointError, ConfigError, EvalError, DataError, DeviceError) as error:
        fail(str(error))
    results, torch_device = evaluation.results, evaluation.device
    count = evaluation.count
    kind = f"indirect, perturbations from {source}" if source else "direct"
    if clip is not None:
        origin = "as asked"
    elif external is not None:
        origin = "the default for --model; --no-clip to turn it off"
    else:
        origin = "from the checkpoint's training config; --clip/--no-clip to choose"
    evaluated = Path(f"{external.spec} with {external.weights}") if external is not None else checkpoint
    assert evaluated is not None
    console.print(f"clipping adversarial images to [0, 1]: {'on' if evaluation.clip else 'off'} ({origin})", highlight=False, soft_wrap=True)
    if not evaluation.clip and any(row.norm is not None for row in results):
        console.print("autoattack, apgd-ce and apgd-dlr always keep images in [0, 1]", highlight=False, soft_wrap=True)
    for note in evaluation.notes:
        typer.secho(f"note (AutoAttack's checks): {note}", fg=typer.colors.YELLOW, err=True)
    lines = settings_lines(evaluation.settings)
    if lines:  # once, above the table: what the figures were made with
        console.print("attack settings:\n" + "\n".join(f"  {line}" for line in lines), highlight=False)
    # the title as a line of its own: a table wraps its title to the table's (narrow) width
    console.print(f"{evaluated} — {split} split, {count} images, {kind}", highlight=False)
    console.print(results_table(results, ""))
    for chart in accuracy_charts(results, color=console.is_terminal and not console.no_color):
        console.print(chart)
    extra: dict[str, object] = {"device": str(torch_device), "clip": evaluation.clip, "settings": evaluation.settings}
    if external is not None:
        extra |= {"model": external.spec, "weights": str(external.weights), "dataset": external.dataset, "data": list(external.data)}
    if json_path is not None:
        try:
            write_json(json_path, evaluated, split, count, results, extra)
        except OSError as error:
            fail(describe_os_error(error, "cannot write"), 1)
        console.print(f"wrote {json_path}", highlight=False, soft_wrap=True)
    if external is None and source is None and checkpoint is not None:
        _record_in_run(console, checkpoint, split, count, results, extra)


def _record_in_run(console: Console, checkpoint: Path, split: str, count: int, results: list, extra: dict[str, object]) -> None:
    """A direct evaluation of a run's checkpoint is also kept in RUN/evals/ (what `export --robustbench` reads)."""
    import time

    from gat_tui.atomic import describe_os_error
    from gat_tui.console.eval_tables import write_json
    from gat_tui.runs.folder import RunPaths

    paths = RunPaths(checkpoint.parent.parent)
    if checkpoint.parent.name != "checkpoints" or not paths.config.is_file():
        return  # a checkpoint outside a run folder: nowhere to keep it
    names = "+".join(dict.fromkeys(row.attack for row in results if row.attack != "clean")) or "clean"
    path = paths.evals / f"{time.strftime('%Y%m%d-%H%M%S')}-{checkpoint.stem}-{names}.json"
    try:
        path.parent.mkdir(exist_ok=True)
        write_json(path, checkpoint, split, count, results, extra)
    except OSError as error:
        typer.secho(f"warning: not recorded in the run folder: {describe_os_error(error, 'cannot write')}", fg=typer.colors.YELLOW, err=True)
        return
    console.print(f"recorded in {path}", highlight=False, soft_wrap=True)


def _external_model(
    checkpoint: Path | None, model: str | None, weights: Path | None, dataset: str, data: list[str],
    num_classes: int | None, image_size: int | None, normalize: str | None,
) -> ExternalModel | None:
    """--model's options, checked: exactly one of CHECKPOINT and --model, and --model's options only with it."""
    from gat_tui.robustness.external import ExternalModel, parse_normalize
    from gat_tui.robustness.plan import EvalError

    if model is None:
        given = [name for name, value in (("--weights", weights), ("--num-classes", num_classes), ("--image-size", image_size),
                                          ("--normalize", normalize), ("--data", data or None)) if value is not None]
        if dataset != "cifar10":
            given.append("--dataset")
        if given:
            fail(f"{', '.join(given)}: only with --model (a CHECKPOINT's own settings rebuild its network)")
        if checkpoint is None:
            fail("give a CHECKPOINT (a run folder or .safetensors file), or --model SPEC --weights FILE.safetensors")
        return None
    if checkpoint is not None:
        fail(f"CHECKPOINT {checkpoint} and --model {model}: give one (--model evaluates a network gat-tui did not train)")
    if weights is None:
        fail(f"--model {model} needs --weights FILE.safetensors: its state dict")
    overrides = list(data)
    if num_classes is not None:
        overrides.append(f"num_classes={num_classes}")
    if image_size is not None:
        overrides.append(f"image_size={image_size}")
    try:
        normalization = parse_normalize(normalize) if normalize is not None else None
    except EvalError as error:
        fail(str(error))
    return ExternalModel(model, weights, dataset, tuple(overrides), normalization)


@app.command()
def runs(
    runs_dir: Path | None = typer.Option(None, "--dir", help="Folder of runs (default: $GAT_TUI_RUNS_DIR or the user data dir)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON list: each run's full folder, status and figures, a sweep's runs with their sweep."),
) -> None:
    """List the runs: preset, status, epochs done, best validation accuracy, folder; then each sweep's runs under it."""
    import json

    from rich.console import Console
    from rich.table import Table

    from gat_tui.console.runs_table import RUN_COLUMNS, STATUS_COLOURS, run_cells, shown_status
    from gat_tui.runs.folder import default_runs_dir
    from gat_tui.runs.index import scan_runs
    from gat_tui.sweep.folders import sweep_folders, sweep_runs

    folder = runs_dir or default_runs_dir()
    scan = scan_runs(folder)
    sweeps = [sweep for sweep in map(sweep_runs, sweep_folders(folder)) if sweep.records] if folder.is_dir() else []
    for problem in [*scan.skipped, *(problem for sweep in sweeps for problem in sweep.skipped)]:
        typer.secho(f"warning: skipped {problem}", fg=typer.colors.YELLOW, err=True)
    records = scan.records
    if as_json:
        entries = [{"sweep": None, "place": None, **_run_entry(record, shown_status(record))} for record in records]
        for sweep in sweeps:
            entries += [
                {"sweep": str(sweep.folder), "place": sweep.label(record), **_run_entry(record, shown_status(record))}
                for record in sweep.records
            ]
        typer.echo(json.dumps(entries, indent=2))
        return
    if not records and not sweeps:
        typer.echo(f"no runs in {folder}")
        return
    # the run's name (its folder's, under the folder in the title) stands for the folder: one line per run at 80
    # columns; `--json` gives whole paths
    table = Table(title=f"runs in {folder.resolve()}")
    console = Console()
    names = [record.folder.name for record in records] + [f"  └ {sweep.label(r)}" for sweep in sweeps for r in sweep.records]
    everyone = [*records, *(record for sweep in sweeps for record in sweep.records)]
    name_width = max(map(len, names), default=3)
    figures_width = 48  # status, epochs, best val acc and method, with the table's rules
    # the run's name keeps its width; the preset (the same for many runs, and in the name by default), then the
    # whole folder, show where the line has room for them (wide terminals, logs), else only in --json
    shown_columns = ["run", "status", "epochs", "best val acc", "method"]
    used = name_width + figures_width
    for optional, cells in (("preset", [r.preset for r in everyone]), ("folder", [str(r.folder) for r in everyone])):
        wanted = 3 + max(map(len, cells), default=6)
        if used + wanted <= console.width:
            shown_columns.append(optional)
            used += wanted
    for column in shown_columns:
        if column in ("run", "preset"):
            table.add_column(column, overflow="fold", min_width=min(name_width, max(12, console.width - figures_width)) if column == "run" else None)
        else:
            table.add_column(column, no_wrap=True)

    def row(cells: tuple[str, ...], first: str | None = None) -> list[str]:
        by_column = dict(zip(RUN_COLUMNS, cells))
        status = by_column["status"]
        by_column["status"] = f"[{STATUS_COLOURS.get(status, '')}]{status}[/]"
        if first is not None:
            by_column["run"] = first
        return [by_column[column] for column in shown_columns]

    for record in records:
        table.add_row(*row(run_cells(record, shown_status(record))))
    for sweep in sweeps:  # as the runs screen shows them: a heading, then its runs by label and seed
        table.add_row(f"[b]sweep {sweep.name}[/b] ({sweep.folder})", *[""] * (len(shown_columns) - 1))
        for record in sweep.records:
            table.add_row(*row(run_cells(record, shown_status(record)), first=f"  └ {sweep.label(record)}"))
    console.print(table)


def _run_entry(record: Any, status: str) -> dict[str, Any]:
    """A run for `gat-tui runs --json`: its whole folder, status and figures."""
    return {
        "folder": str(record.folder.resolve()),
        "preset": record.preset,
        "method": record.method,
        "status": status,
        "epochs_done": record.epochs_done,
        "epochs": record.epochs,
        "best_val_acc": record.best_val_acc,
    }
