"""A sweep's report for people: Rich tables, Markdown, terminal charts (plotext) and PNG files (matplotlib, optional).

The tables are made to be pasted: a column empty for every row is left out, n is said once in
the title when every cell has the same n, a cell drops its spaces (`99.80±0.28`) only when the
table would not fit the terminal otherwise, and the evaluations are pivoted (one table per
evaluation, a row per run, a column per ε, clean accuracy first). `--json` stays long-form.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gat_tui.console.accuracy_chart import accuracy_chart
from gat_tui.console.eps_text import attack_norm, eps_text
from gat_tui.sweep.report import Cell, CurvePoint, SweepReport, TableRow
from gat_tui.sweep.tuning import PointResult, Tuning

TUNING_COLUMNS = ("grid point", "best val acc (%), mean ± std (n)", "failed", "not finished", "")
Z_HEADER = "z"
Z_NOTE = f"{Z_HEADER} = (ours − paper) / paper std"
OTHER_N = "*"
CHOSEN_BY = "chosen by"


def cell_text(cell: Cell, usual_n: int | None, compact: bool = False) -> str:
    """`99.80 ± 0.28`, marked `*` when its n is not the table's usual one (a note lists those);
    `99.80±0.28` where space is short."""
    if cell.mean is None:
        return "-"
    text = f"{100 * cell.mean:.2f}" if cell.n == 1 else f"{100 * cell.mean:.2f} ± {100 * (cell.std or 0):.2f}"
    if cell.n != usual_n:
        text += OTHER_N
    return text.replace(" ± ", "±") if compact else text


def other_n_note(cells: Sequence[tuple[str, Cell]], usual: int | None) -> list[str]:
    """`* another n: gat_t clean (n=2), ...` for the named cells whose n is not the usual one."""
    others = [f"{name} (n={cell.n})" for name, cell in cells if cell.mean is not None and cell.n != usual]
    return [f"{OTHER_N} another number of seeds: " + ", ".join(others)] if others else []


def usual_n(cells: Sequence[Cell]) -> int | None:
    """The n most cells with a figure have (the largest on a tie), said once in the title; None without figures."""
    counts = Counter(cell.n for cell in cells if cell.mean is not None)
    if not counts:
        return None
    return max(counts, key=lambda n: (counts[n], n))


def _seeds_text(n: int | None, cells: Sequence[Cell]) -> str:
    if n is None:
        return "over seeds"
    text = "over one seed" if n == 1 else f"over {n} seeds"
    others = any(cell.n != n for cell in cells if cell.mean is not None)
    return text + (f" ({OTHER_N}: another n, listed below)" if others else "")


@dataclass(frozen=True)
class _Column:
    header: str
    cell: Callable[[TableRow, bool], str]  # (row, compact) -> text
    shown: Callable[[TableRow], bool]  # whether this row has something in the column


def _main_columns(rows: Sequence[TableRow]) -> list[_Column]:
    """Table 2's columns that hold something for at least one row."""
    ours = usual_n(_figures(rows))
    paper_n = usual_n([row.paper for row in rows if row.paper is not None])

    def figure(pick: Callable[[TableRow], Cell]) -> Callable[[TableRow, bool], str]:
        return lambda row, compact: cell_text(pick(row), ours, compact)

    def paper(row: TableRow, compact: bool) -> str:
        return "-" if row.paper is None else cell_text(row.paper, paper_n, compact)

    columns = [
        _Column("run", lambda row, compact: row.label, lambda row: True),
        _Column("clean", figure(lambda row: row.test_acc_clean), lambda row: row.test_acc_clean.mean is not None),
        _Column("own pert.", figure(lambda row: row.test_acc_adv), lambda row: row.test_acc_adv.mean is not None),
        _Column("FGM-L2", figure(lambda row: row.test_acc_fgm_l2), lambda row: row.test_acc_fgm_l2.mean is not None),
        _Column("paper", paper, lambda row: row.paper is not None and row.paper.mean is not None),
        _Column(Z_HEADER, lambda row, compact: "-" if row.paper_z is None else f"{row.paper_z:+.2f}", lambda row: row.paper_z is not None),
        _Column("tuned", lambda row, compact: row.tuned or "-", lambda row: row.tuned is not None),
    ]
    if len(_selection_rules(rows)) > 1:  # one rule for all is said once, under the table (notes)
        columns.append(_Column(CHOSEN_BY, lambda row, compact: row.selected_by, lambda row: True))
    return [column for column in columns if any(column.shown(row) for row in rows)]


def _selection_rules(rows: Sequence[TableRow]) -> list[str]:
    """The validation figures that chose the rows' checkpoints (train.select_best_by), in row order."""
    return list(dict.fromkeys(row.selected_by for row in rows))


def _figures(rows: Sequence[TableRow]) -> list[Cell]:
    return [cell for row in rows for cell in (row.test_acc_clean, row.test_acc_adv, row.test_acc_fgm_l2)]


def main_title(report: SweepReport) -> str:
    figures = _figures(report.table)
    return f"{report.name}: test accuracy (%), mean ± std {_seeds_text(usual_n(figures), figures)}"


def _main_table(report: SweepReport, compact: bool) -> Table:
    columns = _main_columns(report.table)
    table = _table()
    for column in columns:
        table.add_column(column.header, justify="left" if column.header in ("run", "tuned") else "right")
    for row in report.table:
        table.add_row(*(column.cell(row, compact) for column in columns))
    return table


def notes(report: SweepReport) -> list[str]:
    """What the short headers mean, for the columns shown."""
    headers = {column.header for column in _main_columns(report.table)}
    named = [(f"{row.label} {name}", cell) for row in report.table
             for name, cell in (("clean", row.test_acc_clean), ("own pert.", row.test_acc_adv), ("FGM-L2", row.test_acc_fgm_l2))]
    lines = other_n_note(named, usual_n(_figures(report.table)))
    if "own pert." in headers:
        lines.append("own pert.: under the perturbation each run trained with")
    if "paper" in headers:
        papers = [(f"{row.label} paper", row.paper) for row in report.table if row.paper is not None]
        n = usual_n([cell for _, cell in papers])
        lines.append(f"paper: the published clean test accuracy, mean ± std over {n} runs")
        lines += [line.replace("seeds", "runs (paper)") for line in other_n_note(papers, n)]
    if Z_HEADER in headers:
        lines.append(Z_NOTE + ", clean accuracy")
    rules = _selection_rules(report.table)
    if CHOSEN_BY in headers:
        lines.append(f"{CHOSEN_BY}: the validation figure whose best epoch gave the run's checkpoint (train.select_best_by)")
    elif rules and rules[0] != "-":  # "-": summaries from before the rule was recorded
        lines.append(f"checkpoints chosen by {rules[0]} (the best epoch's; train.select_best_by)")
    return lines


def _ranked(labels: list[str], means: dict[str, float]) -> str:
    """`a = b > c`: labels best first, equal means joined by `=`."""
    text = labels[0]
    for before, label in zip(labels, labels[1:]):
        text += (" = " if means[label] == means[before] else " > ") + label
    return text


def _paper_mean(row: TableRow) -> float:
    return (row.paper.mean if row.paper is not None else None) or 0.0


def ordering_lines(report: SweepReport) -> list[str]:
    """The method ordering of ours and of the paper, and whether the paper's first is still first (ties said)."""
    if len(report.order_paper) < 2:
        return []
    rows = {row.label: row for row in report.table}
    ours = {label: rows[label].test_acc_clean.mean or 0.0 for label in report.order_ours}
    paper = {label: _paper_mean(rows[label]) for label in report.order_paper}
    lines = [
        "ordering by mean clean test accuracy (runs with both figures):",
        "  ours:  " + _ranked(report.order_ours, ours),
        "  paper: " + _ranked(report.order_paper, paper),
    ]
    first = report.order_paper[0]
    best = ours[report.order_ours[0]]
    tied = [label for label in report.order_ours if ours[label] == best]
    if tied == [first]:
        verdict = "is also our first"
    elif first in tied:
        verdict = f"is tied for our first (with {', '.join(label for label in tied if label != first)})"
    else:
        verdict = f"is not our first (ours: {' = '.join(tied)})"
    lines.append(f"  the paper's first ({first}) {verdict}")
    return lines


def _point_cells(point: PointResult, tuning: Tuning) -> tuple[str, ...]:
    figure = Cell(point.mean, point.std, point.finished).text()
    return (point.point, figure, str(point.failed), str(point.pending), "chosen" if point.point == tuning.chosen else "")


def tuning_tables(report: SweepReport) -> list[Table | Text]:
    """Each tuning grid: its title, the table, then its rule (plain lines, wrapped at the terminal's width)."""
    shown: list[Table | Text] = []
    for tuning in report.tuning:
        chosen = tuning.chosen or f"none yet ({tuning.waiting})"
        table = _table()
        for column in TUNING_COLUMNS:
            table.add_column(column)
        for point in tuning.points:
            table.add_row(*_point_cells(point, tuning))
        shown += [Text(f"tuning {tuning.label}: {tuning.tune_seeds} seeds per point, compared on {tuning.metric}; chosen: {chosen}"), table,
                  Text(f"rule: {tuning.rule}; tie: {tuning.tie_break}")]
    return shown


# --- the evaluations, pivoted: a row per run (and attack), a column per ε ------------------------


@dataclass(frozen=True)
class Pivot:
    """One evaluation as a table: `rows` of (name, cells by column), `columns` in order (clean first)."""

    evaluation: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, dict[str, Cell]], ...]
    n: int | None  # the usual n, said in the title

    def notes(self) -> list[str]:
        return other_n_note([(f"{name} {column}", cell) for name, cells in self.rows for column, cell in cells.items()], self.n)


def _point_column(point: CurvePoint) -> str:
    """The ε column of an attack's point (the clean points have their own column, filled by `pivots`)."""
    if point.eps is None:  # the GAT attacker: its generator's own power, no ε
        return "own power"
    return eps_text(point.eps, attack_norm(point.attack, point.norm))


def pivots(report: SweepReport) -> list[Pivot]:
    """Each evaluation's points as a pivot; the columns' ε in increasing order."""
    found: list[Pivot] = []
    for evaluation in dict.fromkeys(point.evaluation for point in report.curves):
        points = [point for point in report.curves if point.evaluation == evaluation]
        attacks = list(dict.fromkeys(point.attack_text for point in points if point.attack != "clean"))
        eps_order = sorted({(point.eps or 0.0, _point_column(point)) for point in points if point.attack != "clean"})
        columns = ("clean", *dict.fromkeys(text for _, text in eps_order)) if any(p.attack == "clean" for p in points) else tuple(
            dict.fromkeys(text for _, text in eps_order)
        )
        rows: dict[str, dict[str, Cell]] = {}
        for point in points:
            if point.attack == "clean":  # the clean figure belongs to every attack row of its run
                for attack in attacks or ["clean"]:
                    rows.setdefault(_row_name(point.label, attack, attacks), {})["clean"] = point.accuracy
            else:
                rows.setdefault(_row_name(point.label, point.attack_text, attacks), {})[_point_column(point)] = point.accuracy
        every = [cell for cells in rows.values() for cell in cells.values()]
        n = usual_n(every)
        what = attacks[0] if len(attacks) == 1 else "attack"
        found.append(Pivot(evaluation, f"{evaluation}: accuracy (%) under {what}, mean ± std {_seeds_text(n, every)}",
                           columns, tuple(rows.items()), n))
    return found


def _row_name(label: str, attack: str, attacks: list[str]) -> str:
    return label if len(attacks) <= 1 else f"{label}: {attack}"


def _pivot_table(pivot: Pivot, compact: bool) -> Table:
    table = _table()
    table.add_column("run \\ ε", justify="left")
    for column in pivot.columns:
        table.add_column(column, justify="right")
    for name, cells in pivot.rows:
        table.add_row(name, *(cell_text(cells[column], pivot.n, compact) if column in cells else "" for column in pivot.columns))
    return table


# --- putting it together ----------------------------------------------------------------------


def _table() -> Table:
    # no vertical rules and collapsed padding: a column costs its width plus two spaces, so Table 2
    # fits 80 columns; titles and notes are printed as lines of their own (a table wraps its title
    # to the table's width)
    return Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)


def _fitted(build: Callable[[bool], Table], width: int) -> Table:
    """The table with `mean ± std` cells, or with `mean±std` when that one is wider than `width`."""
    table = build(False)
    if Console(width=10_000).measure(table).maximum <= width:
        return table
    return build(True)


def report_tables(report: SweepReport, width: int = 80) -> list[Table | Text]:
    """Table 2 (test accuracy, mean ± std over seeds, beside the paper's) with its notes and
    orderings, the tuning grids and, if any, one pivoted table per evaluation."""
    shown: list[Table | Text] = [Text(main_title(report)), _fitted(lambda compact: _main_table(report, compact), width)]
    below = notes(report) + ordering_lines(report)
    if below:
        shown.append(Text("\n".join(below)))
    shown += tuning_tables(report)
    for pivot in pivots(report):
        shown += [Text(pivot.title), _fitted(lambda compact, pivot=pivot: _pivot_table(pivot, compact), width)]  # type: ignore[misc]
        if pivot.notes():
            shown.append(Text("\n".join(pivot.notes())))
    return shown


def _escaped(text: str) -> str:
    """The other-n mark as a literal `*` in Markdown (not a list item or emphasis)."""
    return text.replace(OTHER_N, "\\" + OTHER_N)


def markdown(report: SweepReport) -> str:
    columns = _main_columns(report.table)
    figures = _figures(report.table)
    lines = [
        f"# {report.name}",
        "",
        f"Test accuracy (%), mean ± standard deviation {_escaped(_seeds_text(usual_n(figures), figures))}.",
        "",
        "| " + " | ".join(column.header for column in columns) + " |",
        "|" + " --- |" * len(columns),
    ]
    for row in report.table:
        lines.append("| " + " | ".join(_escaped(column.cell(row, False)) for column in columns) + " |")
    below = notes(report)
    if below:
        lines += [""] + [f"{_escaped(line)}." for line in below]
    ordering = ordering_lines(report)
    if ordering:
        lines += ["", ordering[0], ""] + [f"- {line.strip()}" for line in ordering[1:]]
    for tuning in report.tuning:
        lines += [
            "", f"Tuning {tuning.label} ({tuning.tune_seeds} seeds per point, compared on {tuning.metric}): "
            f"chosen **{tuning.chosen or 'none yet: ' + tuning.waiting}**.",
            f"Rule: {tuning.rule}. Tie: {tuning.tie_break}.", "",
            "| " + " | ".join(TUNING_COLUMNS[:-1]) + " | chosen |", "|" + " --- |" * len(TUNING_COLUMNS),
        ]
        lines += ["| " + " | ".join(_point_cells(point, tuning)) + " |" for point in tuning.points]
    for pivot in pivots(report):
        lines += ["", f"Evaluation {_escaped(pivot.title)}.", "",
                  "| run \\ ε | " + " | ".join(pivot.columns) + " |", "|" + " --- |" * (len(pivot.columns) + 1)]
        for name, cells in pivot.rows:
            lines.append(f"| {name} | " + " | ".join(_escaped(cell_text(cells[c], pivot.n)) if c in cells else "" for c in pivot.columns) + " |")
        lines += ["", *(f"{_escaped(line)}." for line in pivot.notes())] if pivot.notes() else []
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Curve:
    """One line of an evaluation's chart: (ε, mean accuracy %, std %) sorted by ε."""

    points: tuple[tuple[float, float, float], ...]
    norm: str | None


def curves(report: SweepReport) -> dict[str, dict[str, Curve]]:
    """evaluation -> 'label attack' -> its curve, for swept attacks only (2 or more ε)."""
    found: dict[str, dict[str, list[tuple[float, float, float]]]] = {}
    norms: dict[tuple[str, str], str | None] = {}
    for point in report.curves:
        if point.eps is None or point.matched_to is not None or point.accuracy.mean is None or point.attack == "clean":
            continue
        name = f"{point.label} {point.attack}"
        found.setdefault(point.evaluation, {}).setdefault(name, []).append(
            (point.eps, 100 * point.accuracy.mean, 100 * (point.accuracy.std or 0.0))
        )
        norms[(point.evaluation, name)] = attack_norm(point.attack, point.norm)
    return {
        evaluation: {name: Curve(tuple(sorted(points)), norms[(evaluation, name)]) for name, points in lines.items() if len(points) >= 2}
        for evaluation, lines in found.items()
    }


def terminal_charts(report: SweepReport, width: int = 78, height: int = 18, color: bool = True) -> list[Text]:
    charts = []
    for evaluation, lines in curves(report).items():
        if not lines:
            continue
        norm = next(iter(lines.values())).norm
        ticks = sorted({eps for curve in lines.values() for eps, _, _ in curve.points})
        charts.append(
            accuracy_chart(
                {name: [(eps, mean) for eps, mean, _ in curve.points] for name, curve in lines.items()},
                f"{evaluation}: mean accuracy (%) against ε", None, width, height, color,
                x_ticks=[(eps, eps_text(eps, norm)) for eps in ticks],
            )
        )
    return charts


def write_pngs(report: SweepReport, folder: Path) -> list[Path]:
    """One PNG per evaluation, accuracy against ε with a line per run and ± std bars, like the paper's figures."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        raise RuntimeError("PNG figures need matplotlib: pip install -e \".[plot]\"") from None
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for evaluation, lines in curves(report).items():
        figure, axes = pyplot.subplots(figsize=(5, 4))
        ticks: set[float] = set()
        norm = None
        for label, curve in lines.items():
            xs = [eps for eps, _, _ in curve.points]
            ticks.update(xs)
            norm = curve.norm
            axes.errorbar(xs, [mean for _, mean, _ in curve.points], yerr=[std for _, _, std in curve.points],
                          marker="o", capsize=3, label=label)
        axes.set_xticks(sorted(ticks), [eps_text(eps, norm) for eps in sorted(ticks)])
        axes.set_xlabel("ε")
        axes.set_ylabel("accuracy (%), mean ± std over seeds")
        axes.set_ylim(0, 100)
        axes.set_title(f"{report.name}: {evaluation}")
        axes.legend(fontsize="small")
        figure.tight_layout()
        path = folder / f"{evaluation}.png"
        figure.savefig(path, dpi=150)
        pyplot.close(figure)
        written.append(path)
    return written
