"""`gat-tui eval`'s table as printed (title, alignment, matched and AutoAttack stage rows), its
settings lines and the JSON file's layout; the figures themselves are in test_eval_figures.py."""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console
from rich.style import Style

from gat_tui.attacks import PGDLinf
from gat_tui.console.eval_tables import results_table, settings_lines, write_json
from gat_tui.robustness.evaluate import AttackResult, StageResult
from gat_tui.robustness.settings import attack_settings

CLEAN = AttackResult("clean", 0.0, 0.75, 0.0, 0.0, None)
FGSM = AttackResult("fgsm", 8 / 255, 0.25, 0.5, 8 / 255, None)
AUTO = AttackResult("autoattack", 0.5, 0.125, 0.5, 0.25, None, None, "l2", 8, "standard",
                    (StageResult("apgd-ce", 0.5), StageResult("apgd-t", 0.125)))


def printed(table: object, width: int = 160) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(table)
    return console.export_text().splitlines()


def raw_cells(lines: list[str]) -> list[list[str]]:
    """Each table line's cells with their padding, header first."""
    return [re.split(r"[┃│]", line)[1:-1] for line in lines if line.startswith(("┃", "│"))]


def test_the_title_is_printed_when_given() -> None:
    assert printed(results_table([CLEAN, FGSM], "model.safetensors, 4 test images"))[0].strip() == "model.safetensors, 4 test images"
    assert printed(results_table([CLEAN, FGSM], ""))[0].startswith("┏")  # no title line


def test_names_to_the_left_figures_to_the_right() -> None:
    matched = AttackResult("fgm-l2", 0.5, 0.5, 0.5, 0.25, "source.safetensors", matched_to="fgsm")
    header, *rows = raw_cells(printed(results_table([CLEAN, FGSM, matched], "t")))
    assert [cell.strip() for cell in header] == ["attack", "ε", "accuracy", "mean ‖δ‖₂", "mean ‖δ‖∞", "source"]
    assert [cell.strip() for cell in rows[2]] == ["fgm-l2 (matched to fgsm)", "0.5", "50.00%", "0.5000", "0.2500", "source.safetensors"]
    for row in rows:  # one space of padding each side; the shorter cells pad on the left of figures, the right of names
        attack, *figures, source = row
        assert attack.startswith(" " + row[0].strip()) and source.startswith(" " + source.strip())
        assert all(cell.endswith(cell.strip() + " ") for cell in figures)
    assert rows[0][0] == " clean" + " " * (len(rows[0][0]) - 6) and rows[0][2].startswith("   ")  # "75.00%" under "accuracy"
    assert rows[0][5].strip() == "(direct)" and rows[0][5].startswith(" (direct)")


def test_autoattack_s_stages_are_dim_rows_with_only_their_accuracy() -> None:
    table = results_table([CLEAN, AUTO], "t")
    header, *rows = [[cell.strip() for cell in row] for row in raw_cells(printed(table))]
    assert len(header) == 5  # one source: no source column
    assert rows == [
        ["clean", "-", "75.00%", "0.0000", "0.0000"],
        ["autoattack (standard, L2)", "0.5", "12.50%", "0.5000", "0.2500"],
        ["└ after apgd-ce", "", "50.00%", "", ""],
        ["└ after apgd-t", "", "12.50%", "", ""],
    ]
    dim = Style(dim=True)
    assert [None if row.style is None else Style.parse(str(row.style)) == dim for row in table.rows] == [None, None, True, True]
    # two sources: the stage rows' source cell is empty
    other = AttackResult("fgsm", 8 / 255, 0.5, 0.5, 8 / 255, "b.safetensors")
    header, *rows = [[cell.strip() for cell in row] for row in raw_cells(printed(results_table([AUTO, other], "t")))]
    assert header[-1] == "source" and [row[-1] for row in rows] == ["(direct)", "", "", "b.safetensors"]
    assert rows[1] == ["└ after apgd-ce", "", "50.00%", "", "", ""]


def test_settings_lines_with_the_defaults_and_unknown_names() -> None:
    assert settings_lines(attack_settings([PGDLinf(steps=10)])) == ["pgd-linf: 10 steps, step size 2.5·ε/steps, random start, 1 restart"]
    settings: dict[str, dict[str, object]] = {
        "autoattack": {"version": "custom", "norm": "l1", "stages": ["apgd-ce", "square"],
                       "stage_settings": {"apgd-ce": {"n_iter": 1, "n_restarts": 2, "n_bins": 3}}},
        "apgd-ce": {"norm": "l1", "iterations": 1, "restarts": 1},
    }
    assert settings_lines(settings) == [
        "autoattack: version custom, l1, stages:",
        "  apgd-ce: 1 iteration, 2 restarts, 3 n_bins",  # a setting without a word: its own name
        "  square: ",  # a stage that did not run here
        "apgd-ce: l1, 1 iteration, 1 restart",
    ]
    del settings["autoattack"]["stage_settings"]
    assert settings_lines(settings)[0] == "autoattack: version custom, l1, stages apgd-ce, square"


def test_the_json_file_is_indented_by_two_spaces(tmp_path: Path) -> None:
    path = tmp_path / "eval.json"
    write_json(path, Path("best.safetensors"), "test", 4, [CLEAN], {})
    lines = path.read_text().split("\n")
    assert lines[:4] == ["{", '  "checkpoint": "best.safetensors",', '  "split": "test",', '  "n": 4,']
    assert lines[5:7] == ["    {", '      "attack": "clean",'] and lines[-2:] == ["}", ""]
