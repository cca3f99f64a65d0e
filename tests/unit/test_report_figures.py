"""`gat-tui report`'s figures against a hand computation, on a sweep folder written here.

Every accuracy below is a multiple of 1/64, so the means are exact and the ties are ties. The
expected means, sample standard deviations (n - 1), z scores and orderings are worked out by
hand in the comments; nothing here calls the report's own arithmetic to get an expected value.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from gat_tui.sweep.report import Cell, build_report

# label -> seed -> (clean, own perturbation, FGM-L2); None: the summary has no such figure
SUMMARIES: dict[str, dict[int, tuple[float | None, float | None, float | None]]] = {
    "baseline": {0: (0.6875, None, 0.25), 1: (0.75, None, 0.375), 2: (0.71875, None, 0.5)},
    "fg_l2": {0: (0.765625, 0.5, 0.4375), 1: (0.796875, 0.5, 0.4375), 2: (0.78125, 0.625, 0.4375)},
    "gat": {0: (0.8125, 0.625, 0.5), 1: (0.78125, 0.6875, 0.5), 2: (0.75, 0.75, 0.5625)},
}
PAPER = {"baseline": (0.7748, 0.0046), "fg_l2": (0.79, 0.005), "gat": (0.8033, 0.0044)}
ONE, TWO = 1 / 255, 2 / 255
# the FGSM evaluation: label -> seed -> accuracy (clean, at 1/255, at 2/255)
EVALUATIONS = {
    "baseline": {0: (0.75, 0.5, 0.25), 1: (0.6875, 0.5, 0.375), 2: (0.8125, 0.5, 0.125)},
    "gat": {0: (0.8125, 0.625, 0.5), 1: (0.8125, 0.75, 0.5), 2: (0.75, 0.6875, 0.625)},
}
EVALUATION = f"""[[evaluations]]
name = "fgsm_sweep"
attack = "fgsm"
eps = [{ONE!r}, {TWO!r}]
runs = ["baseline", "gat"]
"""
TUNING = {  # grid point -> the best validation accuracy of tuning seeds 0 and 1; None: that run failed
    "lr_g=0.001": (0.5, 0.75),
    "lr_g=0.01": (0.625, 0.625),  # the same mean as lr_g=0.001: the tie goes to the point listed first
    "lr_g=0.1": (0.875, None),  # best, but a failed run excludes it
}


def write_summary(run: Path, figures: dict[str, object]) -> None:
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps(figures))


def write_sweep(folder: Path, tuned: bool = True, evaluations: bool = True, paper: bool = True) -> Path:
    """The sweep file and the run summaries (and evaluation files) a finished sweep would hold."""
    folder.mkdir()
    entries = "".join(f'[[runs]]\npreset = "synthetic_smoke"\nlabel = "{label}"\n' for label in SUMMARIES)
    if tuned:
        entries += '[[runs]]\npreset = "synthetic_smoke"\nlabel = "gat_t"\ntune = { "gat.lr_g" = [0.001, 0.01, 0.1] }\ntune_seeds = 2\n'
    published = "".join(f"{label} = {{ mean = {mean}, std = {std}, n = 50 }}\n" for label, (mean, std) in PAPER.items())
    paper_table = f"[paper]\n{published}" if paper else ""
    (folder / "sweep.toml").write_text(f'name = "hand"\nseeds = 3\n{entries}{EVALUATION if evaluations else ""}{paper_table}')
    if evaluations:
        for label, seeds in EVALUATIONS.items():
            for seed, (clean, one, two) in seeds.items():
                rows = [{"attack": "clean", "eps": 0.0, "accuracy": clean, "pert_l2": 0.0},
                        {"attack": "fgsm", "eps": ONE, "accuracy": one, "pert_l2": 0.2},
                        {"attack": "fgsm", "eps": TWO, "accuracy": two, "pert_l2": 0.4}]
                path = folder / f"evals/fgsm_sweep/{label}/seed-{seed}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({"results": rows}))
    for label, seeds in SUMMARIES.items():
        for seed, (clean, adv, fgm) in seeds.items():
            figures = {"status": "finished", "test_acc_clean": clean, "test_acc_adv": adv, "test_acc_fgm_l2": fgm}
            write_summary(folder / f"runs/{label}/seed-{seed}", {k: v for k, v in figures.items() if v is not None})
    if tuned:
        for point, values in TUNING.items():
            for index, value in enumerate(values):
                summary = {"status": "failed"} if value is None else {"status": "finished", "best_value": value}
                write_summary(folder / f"tuning/runs/gat_t/{point}/seed-{index}", summary)
        write_summary(folder / "runs/gat_t/seed-0", {"status": "finished", "test_acc_clean": 0.5})
        write_summary(folder / "runs/gat_t/seed-1", {"status": "finished", "test_acc_clean": 0.625})
        write_summary(folder / "runs/gat_t/seed-2", {"status": "stopped", "test_acc_clean": 0.0})  # not counted
    return folder


def cells(folder: Path) -> dict[str, tuple[Cell, Cell, Cell]]:
    return {row.label: (row.test_acc_clean, row.test_acc_adv, row.test_acc_fgm_l2) for row in build_report(folder).table}


def close(cell: Cell, mean: float | None, std: float | None, n: int) -> bool:
    if mean is None or std is None:
        return (cell.mean, cell.std, cell.n) == (mean, std, n)
    return cell.n == n and cell.mean == pytest.approx(mean, abs=1e-12) and cell.std == pytest.approx(std, abs=1e-12)


def test_means_sample_stds_and_counts_by_hand(tmp_path: Path) -> None:
    table = cells(write_sweep(tmp_path / "s"))
    # baseline clean: 0.6875, 0.75, 0.71875 -> mean 0.71875; deviations -1/32, +1/32, 0 -> var (2/1024)/2 -> std 1/32
    assert close(table["baseline"][0], 0.71875, 0.03125, 3)
    assert close(table["baseline"][1], None, None, 0)  # a baseline has no own perturbation
    # 0.25, 0.375, 0.5 -> mean 0.375, std 0.125 (the population std would be 0.102)
    assert close(table["baseline"][2], 0.375, 0.125, 3)
    # fg_l2: clean 49/64, 51/64, 50/64 -> mean 50/64, std 1/64; own 0.5, 0.5, 0.625 -> mean 13/24,
    # deviations -1/24, -1/24, +2/24 -> var (6/576)/2 = 1/192; FGM-L2 three times 0.4375 -> std 0
    assert close(table["fg_l2"][0], 0.78125, 0.015625, 3)
    assert close(table["fg_l2"][1], 13 / 24, math.sqrt(1 / 192), 3)
    assert close(table["fg_l2"][2], 0.4375, 0.0, 3)
    # gat: clean 52/64, 50/64, 48/64 -> 50/64, std 2/64; own 40/64, 44/64, 48/64 -> 44/64, std 4/64;
    # FGM-L2 0.5, 0.5, 0.5625 -> mean 25/48, deviations -1/48, -1/48, 2/48 -> var 3/2304
    assert close(table["gat"][0], 0.78125, 0.03125, 3)
    assert close(table["gat"][1], 0.6875, 0.0625, 3)
    assert close(table["gat"][2], 25 / 48, math.sqrt(3 / 2304), 3)
    # the tuned entry's repeat runs: two finished (0.5, 0.625), seed 2 only stopped
    assert close(table["gat_t"][0], 0.5625, math.sqrt(2 * 0.0625**2), 2)


def test_cell_text_is_percent_with_two_decimals() -> None:
    assert Cell(0.71875, 0.03125, 3).text() == "71.88 ± 3.12 (n=3)"
    assert Cell(0.5, 0.0, 1).text() == "50.00 (n=1)"
    assert Cell(None, None, 0).text() == "-"
    assert Cell(1.25, 0.5, 2).text(percent=False) == "1.25 ± 0.50 (n=2)"


def test_distance_from_the_paper_in_its_stds_with_its_sign(tmp_path: Path) -> None:
    report = build_report(write_sweep(tmp_path / "s"))
    z = {row.label: row.paper_z for row in report.table}
    # (ours - paper) / paper std: (0.71875 - 0.7748) / 0.0046, (0.78125 - 0.79) / 0.005, (0.78125 - 0.8033) / 0.0044
    assert z["baseline"] == pytest.approx(-12.184782608695652)
    assert z["fg_l2"] == pytest.approx(-1.75)
    assert z["gat"] == pytest.approx(-5.011363636363636)
    assert z["gat_t"] is None  # no published figure
    paper = {row.label: row.paper for row in report.table}
    assert paper["gat"] == Cell(0.8033, 0.0044, 50) and paper["gat_t"] is None


def test_orderings_with_a_tie_and_the_verdict(tmp_path: Path) -> None:
    from gat_tui.console.sweep_report import ordering_lines

    report = build_report(write_sweep(tmp_path / "s"))
    # ours: fg_l2 and gat tie at 50/64 (fg_l2 is listed first), then baseline; paper: gat 80.33 > fg_l2 79.00 > baseline 77.48
    assert report.order_ours == ["fg_l2", "gat", "baseline"]
    assert report.order_paper == ["gat", "fg_l2", "baseline"]
    text = "\n".join(ordering_lines(report))
    assert "ours:  fg_l2 = gat > baseline" in text  # a tie is shown as one
    assert "paper: gat > fg_l2 > baseline" in text
    assert "the paper's first (gat) is tied for our first (with fg_l2)" in text


def test_the_verdict_when_the_paper_s_first_is_not_ours(tmp_path: Path) -> None:
    from gat_tui.console.sweep_report import ordering_lines

    folder = write_sweep(tmp_path / "s", tuned=False)
    # gat's seed 2 now 0.5 instead of 0.75: gat's mean drops to 0.6979, below fg_l2 and baseline
    write_summary_path = folder / "runs/gat/seed-2/summary.json"
    write_summary_path.write_text(json.dumps({"status": "finished", "test_acc_clean": 0.5}))
    report = build_report(folder)
    assert report.order_ours == ["fg_l2", "baseline", "gat"]
    assert "the paper's first (gat) is not our first (ours: fg_l2)" in "\n".join(ordering_lines(report))
    folder.joinpath("runs/gat/seed-2/summary.json").write_text(json.dumps({"status": "finished", "test_acc_clean": 0.875}))
    report = build_report(folder)
    assert report.order_ours == ["gat", "fg_l2", "baseline"]  # gat: (52 + 50 + 56) / 192
    assert "the paper's first (gat) is also our first" in "\n".join(ordering_lines(report))


def test_tuning_table_means_stds_failures_and_the_tie_break(tmp_path: Path) -> None:
    report = build_report(write_sweep(tmp_path / "s"))
    (tuning,) = report.tuning
    points = {point.point: point for point in tuning.points}
    # lr_g=0.001: 0.5, 0.75 -> mean 0.625, std sqrt(2 * 0.125^2) = 0.1768; lr_g=0.01: 0.625 twice -> 0.625, 0
    assert (points["lr_g=0.001"].mean, points["lr_g=0.001"].std, points["lr_g=0.001"].finished) == (0.625, pytest.approx(0.17677669529663687), 2)
    assert (points["lr_g=0.01"].mean, points["lr_g=0.01"].std, points["lr_g=0.01"].failed) == (0.625, 0.0, 0)
    assert (points["lr_g=0.1"].mean, points["lr_g=0.1"].finished, points["lr_g=0.1"].failed) == (0.875, 1, 1)
    assert tuning.chosen == "lr_g=0.001" and tuning.chosen_overrides == ("gat.lr_g=0.001",)
    assert tuning.seeds == (1_000_000, 1_000_001)
    assert next(row.tuned for row in report.table if row.label == "gat_t") == "lr_g=0.001"


# --- what is printed: the tables as a reader sees them -------------------------------------------


def rendered(folder: Path, width: int = 80) -> list[str]:
    from rich.console import Console

    from gat_tui.console.sweep_report import report_tables

    console = Console(width=width, record=True, color_system=None)
    for table in report_tables(build_report(folder), width):
        console.print(table)
    return console.export_text().splitlines()


def columns_of(lines: list[str], header_start: str) -> dict[str, list[str]]:
    """The rows under the header line that starts with `header_start`, split into cells (two or more spaces apart)."""
    start = next(index for index, line in enumerate(lines) if line.startswith(header_start))
    rows = {}
    for line in lines[start + 2:]:
        if not line.strip() or line.startswith(("─", " ")) or "  " not in line.strip():
            break
        label, *found = re.split(r"\s{2,}", line.strip())
        rows[label] = found
    return rows


def test_table_2_as_printed_hides_empty_columns_and_says_n_once(tmp_path: Path) -> None:
    lines = rendered(write_sweep(tmp_path / "s", tuned=False, evaluations=False, paper=False))
    assert lines[0].strip() == "hand: test accuracy (%), mean ± std over 3 seeds"
    assert lines[1].split() == ["run", "clean", "own", "pert.", "FGM-L2"]  # no paper, z or tuned column: all empty
    assert columns_of(lines, "run") == {
        "baseline": ["71.88 ± 3.12", "-", "37.50 ± 12.50"],
        "fg_l2": ["78.12 ± 1.56", "54.17 ± 7.22", "43.75 ± 0.00"],
        "gat": ["78.12 ± 3.12", "68.75 ± 6.25", "52.08 ± 3.61"],
    }
    assert "(n=" not in "\n".join(lines)
    assert max(len(line) for line in lines) <= 80


def test_table_2_with_the_paper_its_z_and_a_tuned_run(tmp_path: Path) -> None:
    lines = rendered(write_sweep(tmp_path / "s", evaluations=False))
    assert lines[0].strip() == "hand: test accuracy (%), mean ± std over 3 seeds (*: another n, listed below)"
    assert lines[1].split() == ["run", "clean", "own", "pert.", "FGM-L2", "paper", "z", "tuned"]
    # `mean±std`: with spaces this table would be wider than 80 columns
    assert columns_of(lines, "run") == {
        "baseline": ["71.88±3.12", "-", "37.50±12.50", "77.48±0.46", "-12.18", "-"],
        "fg_l2": ["78.12±1.56", "54.17±7.22", "43.75±0.00", "79.00±0.50", "-1.75", "-"],
        "gat": ["78.12±3.12", "68.75±6.25", "52.08±3.61", "80.33±0.44", "-5.01", "-"],
        "gat_t": ["56.25±8.84*", "-", "-", "-", "-", "lr_g=0.001"],  # 0.5, 0.625: mean 0.5625, std 0.0884
    }
    text = "\n".join(lines)
    assert "* another number of seeds: gat_t clean (n=2)" in text
    assert "paper: the published clean test accuracy, mean ± std over 50 runs" in text
    assert "z = (ours − paper) / paper std, clean accuracy" in text
    assert max(len(line) for line in lines) <= 80


def test_the_evaluation_pivot_by_hand(tmp_path: Path) -> None:
    from gat_tui.console.sweep_report import markdown

    folder = write_sweep(tmp_path / "s", tuned=False, paper=False)
    lines = rendered(folder)
    title = next(line for line in lines if line.startswith("fgsm_sweep"))
    assert title.strip() == "fgsm_sweep: accuracy (%) under fgsm, mean ± std over 3 seeds"
    assert lines[lines.index(title) + 1].split() == ["run", "\\", "ε", "clean", "1/255", "2/255"]
    # baseline: clean 0.75, 0.6875, 0.8125 -> 75.00, std 6.25; 1/255: 0.5 x 3; 2/255: 0.25, 0.375, 0.125 -> 25.00, std 12.50
    # gat: clean 52/64, 52/64, 48/64 -> 79.17, std sqrt(3/2304) = 3.61; 1/255: 40/64, 48/64, 44/64 -> 68.75, 6.25;
    # 2/255: 0.5, 0.5, 0.625 -> 54.17, std sqrt(1/192) = 7.22
    expected = {
        "baseline": ["75.00 ± 6.25", "50.00 ± 0.00", "25.00 ± 12.50"],
        "gat": ["79.17 ± 3.61", "68.75 ± 6.25", "54.17 ± 7.22"],
    }
    assert columns_of(lines, "run \\ ε") == expected
    text = markdown(build_report(folder))
    assert "| run \\ ε | clean | 1/255 | 2/255 |" in text
    for label, row in expected.items():
        assert f"| {label} | " + " | ".join(row) + " |" in text


def test_json_stays_long_form(tmp_path: Path) -> None:
    report = build_report(write_sweep(tmp_path / "s", tuned=False, paper=False))
    points = {(p["label"], p["attack"], p["eps"]): p for p in report.to_json()["curves"]}
    assert len(points) == 2 * 3
    assert points[("gat", "fgsm", TWO)]["accuracy"]["mean"] == pytest.approx(13 / 24)
    assert points[("baseline", "clean", 0.0)]["accuracy"] == {"mean": 0.75, "std": 0.0625, "n": 3}


@pytest.mark.parametrize(
    ("eps", "norm", "text"),
    [(1 / 255, "linf", "1/255"), (8 / 255, "linf", "8/255"), (0.5, "linf", "0.5"), (0.03, "linf", "0.03"),
     (2 / 255, "l2", "0.00784314"), (1.0, "l2", "1"), (0.0, "linf", "0"), (None, "linf", "-")],
)
def test_eps_as_papers_write_it(eps: float | None, norm: str, text: str) -> None:
    from gat_tui.console.eps_text import eps_text

    assert eps_text(eps, norm) == text


def test_the_norm_of_an_attack() -> None:
    from gat_tui.console.eps_text import attack_norm

    assert (attack_norm("fgsm"), attack_norm("fgm-l2"), attack_norm("gat")) == ("linf", "l2", None)
    assert attack_norm("autoattack", "l2") == "l2" and attack_norm("not-an-attack") is None


def test_the_chart_s_ticks_legend_and_hidden_curves(tmp_path: Path) -> None:
    from rich.console import Console

    from gat_tui.console.sweep_report import terminal_charts

    folder = write_sweep(tmp_path / "s", tuned=False, paper=False)
    for seed in (0, 1, 2):  # gat's curve now equals the baseline's at 1/255 (50 %) only
        path = folder / f"evals/fgsm_sweep/gat/seed-{seed}.json"
        record = json.loads(path.read_text())
        record["results"][1]["accuracy"] = 0.5
        path.write_text(json.dumps(record))
    (chart,) = terminal_charts(build_report(folder), width=60, height=18, color=False)
    console = Console(width=80, record=True, color_system=None)
    console.print(chart)
    lines = console.export_text().splitlines()
    bottom = max(index for index, line in enumerate(lines) if "└" in line)
    assert lines[bottom + 1].split() == ["1/255", "2/255"]  # ticks at the evaluated ε, as papers write them
    plot = "\n".join(lines[:bottom])
    assert "baseline" not in plot and "gat" not in plot  # no legend over the data
    assert [line.rstrip() for line in lines[bottom + 2:]] == ["", "o baseline fgsm (hidden under x at ε 1/255)", "x gat fgsm"]


def test_png_error_bars_are_the_stds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    from gat_tui.console.sweep_report import write_pngs

    drawn: list[tuple[list[float], list[float], list[float], str]] = []
    original = Axes.errorbar

    def errorbar(self, x, y, yerr=None, **kwargs):  # type: ignore[no-untyped-def]
        drawn.append((list(x), list(y), list(yerr), kwargs["label"]))
        return original(self, x, y, yerr=yerr, **kwargs)

    monkeypatch.setattr(Axes, "errorbar", errorbar)
    (path,) = write_pngs(build_report(write_sweep(tmp_path / "s", tuned=False, paper=False)), tmp_path / "png")
    assert path.name == "fgsm_sweep.png" and path.stat().st_size > 0
    by_label = {label: (x, y, err) for x, y, err, label in drawn}
    x, y, err = by_label["baseline fgsm"]
    assert x == [ONE, TWO] and y == pytest.approx([50.0, 25.0]) and err == pytest.approx([0.0, 12.5])
    x, y, err = by_label["gat fgsm"]
    assert y == pytest.approx([68.75, 100 * 13 / 24]) and err == pytest.approx([6.25, 100 * math.sqrt(1 / 192)])


def test_the_sweep_s_evaluation_curves_in_tensorboard(tmp_path: Path) -> None:
    from tensorboard_events import scalars

    from gat_tui.runs.tensorboard import ExportError
    from gat_tui.sweep.tensorboard_curves import eps_scale, export_sweep_curves

    folder = write_sweep(tmp_path / "s", tuned=False, paper=False)
    (exported,) = export_sweep_curves(folder, tmp_path / "tb")
    assert (exported.evaluation, exported.scale, exported.series) == ("fgsm_sweep", 255, 2)
    found = {tag: ([step for step, _ in points], [value for _, value in points]) for tag, points in scalars(tmp_path / "tb/evaluations/fgsm_sweep").items()}
    # ε = 0 (clean), 1/255, 2/255 as steps 0, 1, 2; the means and stds of the pivot above
    expected = {
        "accuracy_vs_eps_x255/baseline": [75.0, 50.0, 25.0],
        "accuracy_vs_eps_x255/gat": [100 * 19 / 24, 68.75, 100 * 13 / 24],
        "accuracy_std_vs_eps_x255/baseline": [6.25, 0.0, 12.5],
        "accuracy_std_vs_eps_x255/gat": [100 * math.sqrt(3 / 2304), 6.25, 100 * math.sqrt(1 / 192)],
    }
    assert found.keys() == expected.keys()
    for tag, values in expected.items():
        assert found[tag][0] == [0, 1, 2] and found[tag][1] == pytest.approx(values, rel=1e-6), tag
    assert eps_scale([0.25, 0.5, 2.0]) == 1000 and eps_scale([8 / 255, 0.0]) == 255
    with pytest.raises(ExportError, match="already holds TensorBoard event files"):
        export_sweep_curves(folder, tmp_path / "tb")


def test_the_tuning_table_as_printed(tmp_path: Path) -> None:
    lines = rendered(write_sweep(tmp_path / "s", evaluations=False))
    assert "tuning gat_t: 2 seeds per point, compared on val_acc_clean; chosen: lr_g=0.001" in lines
    start = next(index for index, line in enumerate(lines) if line.startswith("grid point"))
    assert lines[start].split("  ")[:2] == ["grid point", "best val acc (%), mean ± std (n)"]
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[start + 2:start + 5]]
    # (point, mean ± std over the finished tuning seeds, failed, not finished, the choice)
    assert rows == [
        ["lr_g=0.001", "62.50 ± 17.68 (n=2)", "0", "0", "chosen"],
        ["lr_g=0.01", "62.50 ± 0.00 (n=2)", "0", "0"],
        ["lr_g=0.1", "87.50 (n=1)", "1", "0"],
    ]
    rule = " ".join(line.strip() for line in lines[start + 5:start + 9])
    assert rule.startswith("rule: highest mean over the tuning seeds of best_value") and "tie: equal means: the grid point listed first" in rule


def test_the_markdown_whole(tmp_path: Path) -> None:
    """The figures are those checked by hand above; here, where each one goes in the Markdown."""
    from gat_tui.console.sweep_report import markdown

    expected = r"""# hand

Test accuracy (%), mean ± standard deviation over 3 seeds (\*: another n, listed below).

| run | clean | own pert. | FGM-L2 | paper | z | tuned |
| --- | --- | --- | --- | --- | --- | --- |
| baseline | 71.88 ± 3.12 | - | 37.50 ± 12.50 | 77.48 ± 0.46 | -12.18 | - |
| fg_l2 | 78.12 ± 1.56 | 54.17 ± 7.22 | 43.75 ± 0.00 | 79.00 ± 0.50 | -1.75 | - |
| gat | 78.12 ± 3.12 | 68.75 ± 6.25 | 52.08 ± 3.61 | 80.33 ± 0.44 | -5.01 | - |
| gat_t | 56.25 ± 8.84\* | - | - | - | - | lr_g=0.001 |

\* another number of seeds: gat_t clean (n=2).
own pert.: under the perturbation each run trained with.
paper: the published clean test accuracy, mean ± std over 50 runs.
z = (ours − paper) / paper std, clean accuracy.
checkpoints chosen by val_acc_clean (the best epoch's; train.select_best_by).

ordering by mean clean test accuracy (runs with both figures):

- ours:  fg_l2 = gat > baseline
- paper: gat > fg_l2 > baseline
- the paper's first (gat) is tied for our first (with fg_l2)

Tuning gat_t (2 seeds per point, compared on val_acc_clean): chosen **lr_g=0.001**.
Rule: highest mean over the tuning seeds of best_value (each run's best validation accuracy, clean: val_acc_clean); points with a failed run are excluded; no choice until every tuning run has finished or failed. Tie: equal means: the grid point listed first in the file's order (last key varies fastest).

| grid point | best val acc (%), mean ± std (n) | failed | not finished | chosen |
| --- | --- | --- | --- | --- |
| lr_g=0.001 | 62.50 ± 17.68 (n=2) | 0 | 0 | chosen |
| lr_g=0.01 | 62.50 ± 0.00 (n=2) | 0 | 0 |  |
| lr_g=0.1 | 87.50 (n=1) | 1 | 0 |  |

Evaluation fgsm_sweep: accuracy (%) under fgsm, mean ± std over 3 seeds.

| run \ ε | clean | 1/255 | 2/255 |
| --- | --- | --- | --- |
| baseline | 75.00 ± 6.25 | 50.00 ± 0.00 | 25.00 ± 12.50 |
| gat | 79.17 ± 3.61 | 68.75 ± 6.25 | 54.17 ± 7.22 |
"""
    assert markdown(build_report(write_sweep(tmp_path / "s"))) == expected
    # seed 2 of gat missing from the evaluation: the pivot marks its cells and lists them
    folder = write_sweep(tmp_path / "t", tuned=False, paper=False)
    (folder / "evals/fgsm_sweep/gat/seed-2.json").unlink()
    text = markdown(build_report(folder))
    assert "| gat | 81.25 ± 0.00\\* | 68.75 ± 8.84\\* | 50.00 ± 0.00\\* |" in text
    assert "\\* another number of seeds: gat clean (n=2), gat 1/255 (n=2), gat 2/255 (n=2)." in text


def test_cells_n_and_the_usual_n_by_hand() -> None:
    from gat_tui.console.sweep_report import cell_text, usual_n

    assert cell_text(Cell(0.5, 0.0, 1), 1) == "50.00"  # one seed: no spread to show
    assert cell_text(Cell(0.5, 0.0, 1), 2) == "50.00*"  # not the table's n: marked
    assert cell_text(Cell(0.505, 0.1, 3), 3, compact=True) == "50.50±10.00"
    assert cell_text(Cell(None, None, 0), 3) == "-"
    assert usual_n([Cell(0.5, 0.0, 2), Cell(0.5, 0.0, 2), Cell(0.5, 0.0, 3)]) == 2  # the most common
    assert usual_n([Cell(0.5, 0.0, 2), Cell(0.5, 0.0, 3)]) == 3  # a tie: the larger
    assert usual_n([Cell(None, None, 0)]) is None and usual_n([]) is None


def test_an_evaluation_with_two_attacks_pivots_a_row_per_run_and_attack() -> None:
    from rich.console import Console

    from gat_tui.console.sweep_report import report_tables, terminal_charts
    from gat_tui.sweep.report import CurvePoint, SweepReport

    def point(attack: str, eps: float, mean: float, std: float, n: int = 2) -> CurvePoint:
        return CurvePoint("aa", "gat", attack, eps, None, Cell(mean, std, n), Cell(0.1, 0.0, n), None if attack == "clean" else "linf", 100)

    curves = [point("clean", 0.0, 0.9, 0.01), point("autoattack", 4 / 255, 0.5, 0.1), point("autoattack", 8 / 255, 0.25, 0.05),
              point("apgd-ce", 4 / 255, 0.625, 0.125), point("apgd-ce", 8 / 255, 0.375, 0.0, n=1)]
    report = SweepReport("aa_sweep", 2, [], curves)
    console = Console(width=50, record=True, color_system=None)
    for shown in report_tables(report, 50):
        console.print(shown)
    lines = console.export_text().splitlines()
    assert "aa: accuracy (%) under attack, mean ± std over 2 seeds (*: another n, listed below)" in " ".join(line.strip() for line in lines)
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines if line.startswith("gat")]
    # 50 columns: the cells lose their spaces; L∞ ε of AutoAttack rows in 255ths (their own norm)
    header = next(line for line in lines if line.startswith("run"))
    assert header.split()[-3:] == ["clean", "4/255", "8/255"]
    assert [row[-3:] for row in rows] == [["90.00±1.00", "50.00±10.00", "25.00±5.00"], ["90.00±1.00", "62.50±12.50", "37.50*"]]
    assert "* another number of seeds: gat: apgd-ce (linf, 100 images) 8/255 (n=1)" in " ".join(line.strip() for line in lines)
    (chart,) = terminal_charts(report, width=50, height=14, color=True)
    assert "aa: mean accuracy (%) against ε" in chart.plain and chart.spans  # coloured when asked
    (plain,) = terminal_charts(report, width=50, height=14, color=False)
    assert not plain.spans


def test_the_tuning_choice_waits_excludes_failures_and_takes_a_strictly_better_later_point(tmp_path: Path) -> None:
    from gat_tui.sweep.plan import load_sweep
    from gat_tui.sweep.tuning import choose

    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "sweep.toml").write_text(
        'name = "t"\nseeds = 1\n[[runs]]\npreset = "synthetic_smoke"\nlabel = "g"\ntune = { "gat.lr_g" = [0.001, 0.01] }\ntune_seeds = 3\n'
    )
    entry = load_sweep(folder / "sweep.toml").runs[0]
    runs = folder / "tuning/runs/g"
    write_summary(runs / "lr_g=0.001/seed-0", {"status": "finished", "best_value": 0.5})
    write_summary(runs / "lr_g=0.001/seed-1", {"status": "finished", "best_value": 0.625})
    write_summary(runs / "lr_g=0.001/seed-2", {"status": "stopped", "best_value": 0.99})  # not finished: pending, not counted
    write_summary(runs / "lr_g=0.01/seed-0", {"status": "finished", "best_value": 0.75})
    # lr_g=0.01 seeds 1 and 2 not trained yet
    waiting = choose(folder, entry)
    assert waiting.chosen is None and waiting.chosen_overrides == ()
    assert waiting.waiting == "3 of 6 tuning runs of g have not finished"
    first, second = waiting.points
    assert (first.values, first.mean, first.std, first.finished, first.failed, first.pending) == ((0.5, 0.625), 0.5625, pytest.approx(0.08838834764831845), 2, 0, 1)
    assert (second.values, second.mean, second.std, second.finished, second.pending) == ((0.75,), 0.75, 0.0, 1, 2)
    assert (waiting.label, waiting.tune_seeds, waiting.seeds) == ("g", 3, (1_000_000, 1_000_001, 1_000_002))

    (runs / "lr_g=0.001/seed-2/summary.json").write_text(json.dumps({"status": "finished", "best_value": 0.375}))
    write_summary(runs / "lr_g=0.01/seed-1", {"status": "finished", "best_value": 0.625})
    write_summary(runs / "lr_g=0.01/seed-2", {"status": "finished", "best_value": 0.5})
    done = choose(folder, entry)
    # lr_g=0.001: (0.5 + 0.625 + 0.375) / 3 = 0.5; lr_g=0.01: (0.75 + 0.625 + 0.5) / 3 = 0.625: the later point is strictly better
    assert [point.mean for point in done.points] == [0.5, 0.625]
    assert (done.chosen, done.chosen_overrides, done.waiting) == ("lr_g=0.01", ("gat.lr_g=0.01",), "")

    # a finished run without a figure counts as failed; with every point failed there is no choice
    (runs / "lr_g=0.01/seed-1/summary.json").write_text(json.dumps({"status": "finished"}))
    (runs / "lr_g=0.01/seed-2/summary.json").write_text(json.dumps({"status": "failed"}))
    (runs / "lr_g=0.001/seed-0/summary.json").write_text(json.dumps({"status": "failed"}))
    failed = choose(folder, entry)
    assert [(point.finished, point.failed, point.pending) for point in failed.points] == [(2, 1, 0), (1, 2, 0)]
    assert failed.chosen is None and failed.waiting == "every grid point of g has a failed tuning run"
    assert (failed.label, failed.tune_seeds, failed.seeds, failed.chosen_overrides) == ("g", 3, (1_000_000, 1_000_001, 1_000_002), ())
    for index in range(3):
        (runs / f"lr_g=0.01/seed-{index}/summary.json").write_text(json.dumps({"status": "failed"}))
    nothing = choose(folder, entry)
    assert (nothing.points[1].mean, nothing.points[1].std, nothing.points[1].values) == (None, None, ())


def test_the_long_form_json_keeps_each_rows_own_fields_and_names_what_it_skipped(tmp_path: Path) -> None:
    folder = write_sweep(tmp_path / "s", tuned=False)
    aa = [{"attack": "clean", "eps": 0.0, "accuracy": 0.75, "pert_l2": 0.0},
          {"attack": "autoattack", "eps": TWO, "accuracy": 0.5, "pert_l2": 0.25, "norm": "linf", "n": 100, "version": "standard"},
          {"attack": "fgsm", "eps": TWO, "accuracy": 0.625, "pert_l2": 0.125, "matched_to": "gat"}]
    (folder / "evals/fgsm_sweep/gat/seed-0.json").write_text(json.dumps({"results": aa}))
    (folder / "runs/gat/seed-x").mkdir()
    (folder / "evals/fgsm_sweep/baseline/seed-1.json").write_text("{")
    report = build_report(folder)
    points = {(p.label, p.attack, p.matched_to): p for p in report.curves if p.eps == TWO}
    auto = points[("gat", "autoattack", None)]
    assert (auto.norm, auto.n, auto.version, auto.accuracy, auto.pert_l2) == ("linf", 100, "standard", Cell(0.5, 0.0, 1), Cell(0.25, 0.0, 1))
    matched = points[("gat", "fgsm", "gat")]  # a --match-power row is a point of its own
    assert matched.accuracy == Cell(0.625, 0.0, 1) and matched.attack_text == "fgsm (matched to gat)"
    plain = points[("gat", "fgsm", None)]  # seeds 1 and 2 only: 0.5, 0.625 -> 0.5625; ‖δ‖₂ 0.4 both
    assert plain.accuracy.mean == 0.5625 and plain.accuracy.n == 2 and plain.pert_l2 == Cell(0.4, 0.0, 2)
    baseline = points[("baseline", "fgsm", None)]  # seed 1's file is broken: seeds 0 and 2, 0.25 and 0.125
    assert (baseline.accuracy.mean, baseline.accuracy.n) == (0.1875, 2)
    seed_folder, broken = report.skipped  # nothing else: every other folder and file was read
    assert seed_folder == f"{folder}/runs/gat/seed-x: not a seed folder (expected seed-<number>)"
    assert broken.startswith(f"{folder}/evals/fgsm_sweep/baseline/seed-1.json: cannot be read")
    assert report.to_json()["curves"][0]["pert_l2"] == {"mean": 0.0, "std": 0.0, "n": 2}  # baseline, clean


# --- the gaps mutmut's partial run left in sweep.report (tests/README.md, issue 22) ---------------


def test_a_middle_seeds_missing_evaluation_file_still_counts_the_seeds_after_it(tmp_path: Path) -> None:
    folder = write_sweep(tmp_path / "s", tuned=False, paper=False)
    (folder / "evals/fgsm_sweep/gat/seed-1.json").unlink()
    points = {(p.label, p.attack, p.eps): p.accuracy for p in build_report(folder).curves}
    # gat at 1/255 from seeds 0 and 2 only: 0.625 and 0.6875 -> mean 0.65625, std 0.0625/√2
    assert close(points[("gat", "fgsm", ONE)], 0.65625, 0.0625 / math.sqrt(2), 2)
    # the other run keeps its three seeds: 0.125, 0.375, 0.25 at 2/255 -> mean 0.25, std 0.125
    assert close(points[("baseline", "fgsm", TWO)], 0.25, 0.125, 3)


def test_the_report_and_its_json_name_the_sweeps_seeds(tmp_path: Path) -> None:
    report = build_report(write_sweep(tmp_path / "s", tuned=False, evaluations=False))
    assert report.seeds == 3 and report.to_json()["seeds"] == 3


def test_a_published_std_of_zero_or_a_missing_n(tmp_path: Path) -> None:
    folder = write_sweep(tmp_path / "s", tuned=False, evaluations=False)
    text = (folder / "sweep.toml").read_text()
    text = text.replace("baseline = { mean = 0.7748, std = 0.0046, n = 50 }", "baseline = { mean = 0.7748, std = 0.0 }")
    text = text.replace("gat = { mean = 0.8033, std = 0.0044, n = 50 }", "gat = { mean = 0.8033, std = 0.0044 }")
    (folder / "sweep.toml").write_text(text)
    rows = {row.label: row for row in build_report(folder).table}
    # a std of 0: no z (not a division by zero); an entry without n keeps its figures, n unknown (0)
    assert rows["baseline"].paper == Cell(0.7748, 0.0, 0) and rows["baseline"].paper_z is None
    assert rows["gat"].paper == Cell(0.8033, 0.0044, 0)
    assert rows["gat"].paper_z == pytest.approx((0.78125 - 0.8033) / 0.0044)
    assert rows["fg_l2"].paper == Cell(0.79, 0.005, 50)


def test_the_tuned_cell_waits_while_a_tuning_run_has_not_finished(tmp_path: Path) -> None:
    folder = write_sweep(tmp_path / "s", evaluations=False, paper=False)
    (folder / "tuning/runs/gat_t/lr_g=0.01/seed-1/summary.json").unlink()  # still to run
    rows = {row.label: row for row in build_report(folder).table}
    assert rows["gat_t"].tuned == "waiting" and rows["gat"].tuned is None


# --- the survivors of the full mutmut run of sweep.report (session 8) -------------------------------


def test_runs_not_finished_are_left_out_quietly_and_the_seeds_after_them_count(tmp_path: Path) -> None:
    from gat_tui.runs.lock import RunLock

    folder = write_sweep(tmp_path / "s", tuned=False, evaluations=False, paper=False)
    # baseline seed 0 stopped (a readable summary, not finished); fg_l2 seed 0 has a folder but no
    # summary yet; gat seed 0 trains now: it holds the lock and its summary is half written
    (folder / "runs/baseline/seed-0/summary.json").write_text(json.dumps({"status": "stopped", "test_acc_clean": 0.0}))
    (folder / "runs/fg_l2/seed-0/summary.json").unlink()
    (folder / "runs/gat/seed-0/summary.json").write_text('{"status": "fin')
    with RunLock(folder / "runs/gat/seed-0"):
        report = build_report(folder)
    assert report.skipped == []  # none of the three is a damaged file
    clean = {row.label: row.test_acc_clean for row in report.table}
    # seeds 1 and 2 only: baseline 0.75, 0.71875 -> 0.734375, std 0.03125/√2
    assert close(clean["baseline"], 0.734375, 0.03125 / math.sqrt(2), 2)
    assert close(clean["fg_l2"], 0.7890625, 0.015625 / math.sqrt(2), 2)  # 0.796875, 0.78125
    assert close(clean["gat"], 0.765625, 0.03125 / math.sqrt(2), 2)  # 0.78125, 0.75


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[]", "has no list of 'results'"),
        ('{"results": {}}', "has no list of 'results'"),
        ('{"results": [{"attack": "fgsm", "eps": "2/255", "accuracy": 0.5, "pert_l2": 0.1}]}', "is not an evaluation row"),
        ('{"results": [{"attack": "fgsm", "eps": 0.1, "accuracy": 0.5, "pert_l2": 0.1, "matched_to": 3}]}', "is not an evaluation row"),
        ('{"results": [{"attack": "apgd", "eps": 0.1, "accuracy": 0.5, "pert_l2": 0.1, "norm": 2}]}', "is not an evaluation row"),
        ('{"results": [{"attack": "apgd", "eps": 0.1, "accuracy": 0.5, "pert_l2": 0.1, "version": 1}]}', "is not an evaluation row"),
        ('{"results": [{"attack": "apgd", "eps": 0.1, "accuracy": 0.5, "pert_l2": 0.1, "n": "100"}]}', "is not an evaluation row"),
        ('{"results": [{"attack": "apgd", "eps": 0.1, "accuracy": 0.5, "pert_l2": 0.1, "n": true}]}', "is not an evaluation row"),
    ],
)
def test_an_evaluation_file_that_is_not_one_is_named_and_left_out(tmp_path: Path, content: str, problem: str) -> None:
    folder = write_sweep(tmp_path / "s", tuned=False, paper=False)
    path = folder / "evals/fgsm_sweep/baseline/seed-1.json"
    path.write_text(content)
    report = build_report(folder)
    (skipped,) = report.skipped
    assert skipped.startswith(f"{path}: ") and problem in skipped
    if problem.startswith("has no"):
        assert skipped == f"{path}: has no list of 'results'"
    else:
        assert skipped.startswith(f"{path}: results[0] = {{") and skipped.endswith("pert_l2 >= 0)")
    points = {(p.label, p.attack, p.eps): p.accuracy for p in report.curves}
    assert close(points[("baseline", "fgsm", TWO)], 0.1875, 0.0625 * math.sqrt(2), 2)  # seeds 0 and 2: 0.25, 0.125


def test_rows_with_every_optional_field_unset_or_set_are_read(tmp_path: Path) -> None:
    folder = write_sweep(tmp_path / "s", tuned=False, paper=False)
    rows = [{"attack": "clean", "eps": None, "accuracy": 0.75, "pert_l2": 0.0, "matched_to": None, "norm": None, "version": None, "n": None},
            {"attack": "apgd-ce", "eps": TWO, "accuracy": 0.5, "pert_l2": 0.25, "matched_to": "gat", "norm": "linf", "version": "custom", "n": 64}]
    (folder / "evals/fgsm_sweep/gat/seed-0.json").write_text(json.dumps({"results": rows}))
    report = build_report(folder)
    assert report.skipped == []
    points = {(p.label, p.attack, p.eps): p for p in report.curves}
    assert points[("gat", "clean", None)].accuracy == Cell(0.75, 0.0, 1)
    apgd = points[("gat", "apgd-ce", TWO)]
    assert (apgd.matched_to, apgd.norm, apgd.version, apgd.n) == ("gat", "linf", "custom", 64)


def test_the_checkpoint_rule_of_each_row(tmp_path: Path) -> None:
    folder = write_sweep(tmp_path / "s", tuned=False, evaluations=False, paper=False)
    for seed, rule in ((0, "val_acc_adv"), (1, "val_acc_clean")):  # gat: two rules; seed 2 says none
        summary = json.loads((folder / f"runs/gat/seed-{seed}/summary.json").read_text())
        (folder / f"runs/gat/seed-{seed}/summary.json").write_text(json.dumps(summary | {"select_best_by": rule}))
    for seed in range(3):
        (folder / f"runs/fg_l2/seed-{seed}/summary.json").write_text(json.dumps({"status": "failed"}))
    rows = {row.label: row.selected_by for row in build_report(folder).table}
    # a summary without the key was written before the rule existed: clean accuracy chose it
    assert rows == {"baseline": "val_acc_clean", "fg_l2": "-", "gat": "val_acc_adv, val_acc_clean"}


def test_a_sweep_copied_without_its_run_folders_still_reports_every_seeds_evaluation(tmp_path: Path) -> None:
    import shutil

    folder = write_sweep(tmp_path / "s", tuned=False, paper=False)
    shutil.rmtree(folder / "runs")  # the checkpoints stayed on the cluster; the evaluations came along
    points = {(p.label, p.attack, p.eps): p.accuracy for p in build_report(folder).curves}
    # baseline at 2/255 over the sweep's three seeds: 0.25, 0.375, 0.125 -> 0.25, std 0.125
    assert close(points[("baseline", "fgsm", TWO)], 0.25, 0.125, 3)
