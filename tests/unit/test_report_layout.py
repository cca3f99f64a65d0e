"""`gat-tui report`'s tables and notes as printed, on a report built here by hand: alignment, the
notes on cells of another n (ours and the paper's), orderings with two and three runs, several
tuning grids and evaluations, a pivot without a clean column or with gaps, the compact cells'
threshold. The figures are in test_report_figures.py; this file pins how they are laid out."""

from __future__ import annotations

from rich.console import Console

from gat_tui.console.sweep_report import main_title, markdown, notes, ordering_lines, pivots, report_tables, tuning_tables
from gat_tui.sweep.report import Cell, CurvePoint, SweepReport, TableRow
from gat_tui.sweep.tuning import PointResult, Tuning

NONE = Cell(None, None, 0)
ROWS = [
    # baseline's own-perturbation cell has n = 2 and its FGM-L2 cell n = 1: the usual n is 3 (4 cells of 6)
    TableRow("baseline", Cell(1.0, 0.0, 3), Cell(0.25, 0.05, 2), Cell(0.125, 0.0, 1), Cell(0.7748, 0.0046, 50), 1.5, "lr_g=0.01"),
    # the paper's n: 50 and 10 once each, the tie goes to the larger
    TableRow("gat", Cell(0.8, 0.02, 3), Cell(0.5, 0.0, 3), Cell(0.5, 0.0, 3), Cell(0.8033, 0.0044, 10), -0.75, "-"),
]


def point(label: str, attack: str, eps: float | None, mean: float, evaluation: str = "ev") -> CurvePoint:
    return CurvePoint(evaluation, label, attack, eps, None, Cell(mean, 0.01, 3), Cell(0.1, 0.0, 3))


# gat's clean point comes last (the rows are made as points come); base has no clean point and one ε only
CURVES = [point("gat", "gat", None, 0.5), point("gat", "fgsm", 2 / 255, 0.25), point("gat", "fgsm", 1 / 255, 0.375),
          point("gat", "clean", 0.0, 0.75), point("base", "fgsm", 1 / 255, 0.125)]
REPORT = SweepReport("s", 3, ROWS, CURVES, order_ours=["baseline", "gat"], order_paper=["gat", "baseline"])


def printed(shown: list[object], width: int = 120) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    for item in shown:
        console.print(item)
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_table_2_names_to_the_left_figures_to_the_right_and_its_notes() -> None:
    lines = printed(report_tables(REPORT, 120))
    assert lines[:2] == ["s: test accuracy (%), mean ± std over 3 seeds (*: another n, listed below)",
                         "run               clean      own pert.        FGM-L2          paper      z  tuned"]
    assert lines[3:14] == [
        "baseline  100.00 ± 0.00  25.00 ± 5.00*        12.50*   77.48 ± 0.46  +1.50  lr_g=0.01",
        "gat        80.00 ± 2.00   50.00 ± 0.00  50.00 ± 0.00  80.33 ± 0.44*  -0.75  -",
        "* another number of seeds: baseline own pert. (n=2), baseline FGM-L2 (n=1)",
        "own pert.: under the perturbation each run trained with",
        "paper: the published clean test accuracy, mean ± std over 50 runs",
        "* another number of runs (paper): gat paper (n=10)",
        "z = (ours − paper) / paper std, clean accuracy",
        "ordering by mean clean test accuracy (runs with both figures):",
        "  ours:  baseline > gat",
        "  paper: gat > baseline",
        "  the paper's first (gat) is not our first (ours: baseline)",
    ]


def test_the_evaluation_pivot_own_power_first_gaps_left_blank() -> None:
    lines = printed(report_tables(REPORT, 120))
    start = lines.index("ev: accuracy (%) under attack, mean ± std over 3 seeds")
    # the GAT attacker's own power has no ε: its column comes before every ε
    assert lines[start + 1] == "run \\ ε            clean     own power         1/255         2/255"
    assert lines[start + 3:] == [
        "gat: gat    75.00 ± 1.00  50.00 ± 1.00",
        "gat: fgsm   75.00 ± 1.00                37.50 ± 1.00  25.00 ± 1.00",
        "base: fgsm                              12.50 ± 1.00",
    ]


def test_a_pivot_without_clean_points_has_no_clean_column() -> None:
    report = SweepReport("s", 3, [], [point("a", "fgsm", 2 / 255, 0.25), point("a", "fgsm", 1 / 255, 0.5)])
    (pivot,) = pivots(report)
    assert pivot.columns == ("1/255", "2/255") and pivot.rows == (("a", {"2/255": Cell(0.25, 0.01, 3), "1/255": Cell(0.5, 0.01, 3)}),)


def test_the_seeds_in_the_title_one_or_unknown() -> None:
    one = TableRow("a", Cell(0.5, 0.0, 1), NONE, NONE, None)
    assert main_title(SweepReport("s", 1, [one], [])) == "s: test accuracy (%), mean ± std over one seed"
    assert main_title(SweepReport("s", 2, [TableRow("a", NONE, NONE, NONE, None)], [])) == "s: test accuracy (%), mean ± std over seeds"


def test_without_a_recorded_selection_rule_no_checkpoint_note() -> None:
    rows = [TableRow("a", Cell(0.5, 0.0, 2), NONE, NONE, None)]
    assert notes(SweepReport("s", 2, rows, [])) == []
    rows = [TableRow("a", Cell(0.5, 0.0, 2), NONE, NONE, None, selected_by="val_acc_adv")]
    assert notes(SweepReport("s", 2, rows, [])) == ["checkpoints chosen by val_acc_adv (the best epoch's; train.select_best_by)"]


def test_orderings_of_two_runs_and_three_way_ties() -> None:
    rows = [TableRow(label, Cell(mean, 0.0, 2), NONE, NONE, Cell(paper, 0.01, 50))
            for label, mean, paper in (("a", 0.5, 0.7), ("b", 0.5, 0.8), ("c", 0.5, 0.6), ("d", 0.25, 0.9))]
    two = SweepReport("s", 2, rows[:2], [], order_ours=["a", "b"], order_paper=["b", "a"])
    assert ordering_lines(two)[1:] == ["  ours:  a = b", "  paper: b > a", "  the paper's first (b) is tied for our first (with a)"]
    three = SweepReport("s", 2, rows[:3], [], order_ours=["a", "b", "c"], order_paper=["b", "a", "c"])
    assert ordering_lines(three)[-1] == "  the paper's first (b) is tied for our first (with a, c)"
    four = SweepReport("s", 2, rows, [], order_ours=["a", "b", "c", "d"], order_paper=["d", "b", "a", "c"])
    assert ordering_lines(four)[-1] == "  the paper's first (d) is not our first (ours: a = b = c)"
    assert ordering_lines(SweepReport("s", 2, rows[:1], [], order_ours=["a"], order_paper=["a"])) == []


def tuning(label: str, chosen: str | None, waiting: str = "") -> Tuning:
    points = (PointResult("lr_g=0.01", ("gat.lr_g=0.01",), (0.5, 0.75), 0.625, 0.125, 2, 0, 0),)
    return Tuning(label, 2, (0, 1), points, chosen, (), waiting=waiting)


def test_every_tuning_grid_is_shown_and_a_waiting_one_says_why() -> None:
    report = SweepReport("s", 2, [], [], tuning=[tuning("g1", "lr_g=0.01"), tuning("g2", None, "1 run not finished")])
    shown = [item for item in tuning_tables(report) if not hasattr(item, "columns")]
    assert [str(item).split(":")[0] for item in shown] == ["tuning g1", "rule", "tuning g2", "rule"]
    assert str(shown[2]).endswith("chosen: none yet (1 run not finished)")
    assert "chosen **none yet: 1 run not finished**." in markdown(report)


def test_every_evaluation_gets_a_pivot_and_notes_are_lines() -> None:
    curves = [point("a", "fgsm", 1 / 255, 0.5, "e1"), point("a", "fgm-l2", 0.5, 0.5, "e2"),
              CurvePoint("e2", "b", "fgm-l2", 0.5, None, Cell(0.25, 0.0, 1), Cell(0.1, 0.0, 1))]
    report = SweepReport("s", 3, ROWS, curves)
    texts = [str(item) for item in report_tables(report, 120) if not hasattr(item, "columns")]
    assert texts[0].startswith("s: test accuracy") and texts[1].split("\n")[:2] == [
        "* another number of seeds: baseline own pert. (n=2), baseline FGM-L2 (n=1)",
        "own pert.: under the perturbation each run trained with",
    ]
    assert [text.split(":")[0] for text in texts[2:]] == ["e1", "e2", "* another number of seeds"]
    # e2's cells: n = 3 and n = 1 once each, the tie goes to 3; b's is the other
    assert texts[-1] == "* another number of seeds: b 0.5 (n=1)"


def test_cells_drop_their_spaces_only_when_the_table_is_wider_than_the_terminal() -> None:
    report = SweepReport("s", 3, [TableRow("a", Cell(0.5, 0.25, 3), NONE, NONE, None)], [])
    full = printed(report_tables(report, 200))[1:]
    width = max(len(line) for line in full)  # "run        clean" over "a    50.00 ± 25.00"
    assert "a    50.00 ± 25.00" in printed(report_tables(report, width), width)  # it fits exactly: spaces kept
    assert "a    50.00±25.00" in printed(report_tables(report, width - 1), width - 1)


def test_the_markdown_pivot_leaves_gaps_blank_and_sets_its_notes_apart() -> None:
    text = markdown(REPORT)
    assert "| run \\ ε | clean | own power | 1/255 | 2/255 |\n| --- | --- | --- | --- | --- |\n" in text
    assert "| base: fgsm |  |  | 12.50 ± 1.00 |  |\n" in text
    other = CurvePoint("ev", "base", "fgsm", 2 / 255, None, Cell(0.25, 0.0, 1), Cell(0.1, 0.0, 1))
    text = markdown(SweepReport("s", 3, [], [*CURVES, other]))
    assert text.endswith("| base: fgsm |  |  | 12.50 ± 1.00 | 25.00\\* |\n\n\\* another number of seeds: base: fgsm 2/255 (n=1).\n")


def test_the_charts_lines_leave_out_matched_and_unmeasured_points_and_keep_their_norm() -> None:
    from gat_tui.console.sweep_report import curves, terminal_charts

    def aa(eps: float, mean: float | None, matched_to: str | None = None) -> CurvePoint:
        return CurvePoint("aa", "g", "autoattack", eps, matched_to, Cell(mean, 0.0, 2), Cell(0.1, 0.0, 2), "linf")

    points = [aa(8 / 255, 0.25), aa(4 / 255, 0.5), aa(2 / 255, None), aa(1 / 255, 0.75, matched_to="fgsm"), aa(6 / 255, 0.5, "fgsm"),
              point("g", "clean", 0.0, 0.875, "aa"), point("g", "fgsm", 1 / 255, 0.5, "single")]
    found = curves(SweepReport("s", 2, [], points))
    assert found["single"] == {}
    found = found["aa"]
    assert {name: (curve.points, curve.norm) for name, curve in found.items()} == {
        "g autoattack": (((4 / 255, 50.0, 0.0), (8 / 255, 25.0, 0.0)), "linf")  # autoattack's own norm: ε in 255ths
    }
    # "single" (one ε) has no chart, and does not stop the ones after it
    report = SweepReport("s", 2, [], [point("g", "fgsm", 1 / 255, 0.5, "single"), *points[:2]])
    (chart,) = terminal_charts(report, width=44, height=12, color=False)
    lines = chart.plain.split("\n")
    assert [len(line) for line in lines[:12]] == [44] * 12 and lines[11].split() == ["4/255", "8/255"]


def test_the_defaults_80_columns_for_tables_78_by_18_coloured_charts() -> None:
    from gat_tui.console.sweep_report import terminal_charts

    def report(label: str) -> SweepReport:
        return SweepReport("s", 3, [TableRow(label, Cell(0.5, 0.25, 3), Cell(0.5, 0.25, 3), Cell(0.5, 0.25, 3), None)], [])

    # the row's line is the table's width; the run column is as wide as "run" for a label of one letter
    rest = len(printed(report_tables(report("a"), 200))[3]) - len("run")
    wide = report("a" * (81 - rest))  # a label that makes the table 81 columns wide with spaces in the cells
    assert len(printed(report_tables(wide, 200))[3]) == 81
    assert "50.00±25.00" in printed(report_tables(wide))[3]  # 81 > 80: compact
    (chart,) = terminal_charts(SweepReport("s", 2, [], [point("g", "fgsm", 1 / 255, 0.5), point("g", "fgsm", 2 / 255, 0.25)]))
    lines = chart.plain.split("\n")
    assert [len(line) for line in lines[:18]] == [78] * 18 and lines[18] == "" and chart.spans
