"""The sweep's evaluation curves in TensorBoard: which points become which series, at which step.

The report is a stand-in holding hand-made curve points (the report's own figures have their
tests in test_report_figures.py), so every tag, step and value below is read off the points.
TensorBoard's writer turns each character of a tag that is not a letter, digit, `.`, `-`, `_`
or `/` into `_`: the series "gat fgm-l2" is the tag `.../gat_fgm-l2`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("tensorboard")

from tensorboard_events import scalars  # noqa: E402

from gat_tui.runs.tensorboard import ExportError  # noqa: E402
from gat_tui.sweep import tensorboard_curves  # noqa: E402
from gat_tui.sweep.report import Cell, CurvePoint  # noqa: E402
from gat_tui.sweep.tensorboard_curves import ExportedCurves, eps_scale, export_sweep_curves  # noqa: E402


class Report:
    def __init__(self, curves: list[CurvePoint]) -> None:
        self.curves = curves


def point(evaluation: str, label: str, attack: str, eps: float | None, mean: float | None, std: float | None = 0.0, **extra: object) -> CurvePoint:
    accuracy = Cell(mean, std, 2)
    return CurvePoint(evaluation, label, attack, eps, extra.pop("matched_to", None), accuracy, Cell(None, None, 0), **extra)  # type: ignore[arg-type]


@pytest.fixture
def report(monkeypatch: pytest.MonkeyPatch) -> list[CurvePoint]:
    curves: list[CurvePoint] = []

    def build_report(folder: Path) -> Report:
        assert folder.name == "sweep"  # the sweep folder asked for, whose report it exports
        return Report(curves)

    monkeypatch.setattr(tensorboard_curves, "build_report", build_report)
    return curves


def test_two_attacks_are_a_series_each_and_share_the_clean_point(tmp_path: Path, report: list[CurvePoint]) -> None:
    report += [
        point("two", "gat", "pgd", 0.5, 0.25, 0.125),
        point("two", "gat", "clean", 0.0, 0.75, 0.0625),
        point("two", "gat", "fgm-l2", 0.5, 0.5, None),  # one seed: std 0
        point("two", "gat", "fgm-l2", 0.25, 0.625, 0.0),
        point("two", "gat", "fgm-l2", 1.0, 0.5, matched_to="the GAT attacker"),  # matched power: no ε to plot against
        point("two", "gat", "fgm-l2", 2.0, None),  # no seed evaluated yet
    ]
    (exported,) = export_sweep_curves(tmp_path / "sweep", tmp_path / "tb")
    folder = tmp_path / "tb" / "evaluations" / "two"
    assert exported == ExportedCurves("two", folder, 1000, 2)  # ε = 0.25 is no whole number of 255ths
    assert scalars(folder) == {
        "accuracy_vs_eps_x1000/gat_fgm-l2": [(0, 75.0), (250, 62.5), (500, 50.0)],
        "accuracy_std_vs_eps_x1000/gat_fgm-l2": [(0, 6.25), (250, 0.0), (500, 0.0)],
        "accuracy_vs_eps_x1000/gat_pgd": [(0, 75.0), (500, 25.0)],
        "accuracy_std_vs_eps_x1000/gat_pgd": [(0, 6.25), (500, 12.5)],
    }


def test_each_evaluation_gets_its_folder_and_its_own_scale(tmp_path: Path, report: list[CurvePoint]) -> None:
    report += [
        point("linf", "b", "autoattack", 2 / 255, 0.5, norm="linf", version="standard", n=8),
        point("linf", "a", "autoattack", 1 / 255, 0.75, norm="linf", version="standard", n=8),
        point("empty", "a", "fgm-l2", 1.0, 0.5, matched_to="x"),  # nothing to plot: no folder
        point("l2", "a", "fgm-l2", 0.5, 0.5),
        point("l2", "b", "fgm-l2", 0.5, 0.0, None),  # every image fooled: 0 %, not left out
    ]
    exported = export_sweep_curves(tmp_path / "sweep", tmp_path / "tb")
    assert [(curves.evaluation, curves.scale, curves.series) for curves in exported] == [("linf", 255, 2), ("l2", 1000, 2)]
    assert not (tmp_path / "tb" / "evaluations" / "empty").exists()
    # one attack: the series is named by the run alone, and ε = k/255 is step k
    assert scalars(tmp_path / "tb" / "evaluations" / "linf") == {
        "accuracy_vs_eps_x255/a": [(1, 75.0)],
        "accuracy_std_vs_eps_x255/a": [(1, 0.0)],
        "accuracy_vs_eps_x255/b": [(2, 50.0)],
        "accuracy_std_vs_eps_x255/b": [(2, 0.0)],
    }
    assert scalars(tmp_path / "tb" / "evaluations" / "l2") == {
        "accuracy_vs_eps_x1000/a": [(500, 50.0)], "accuracy_std_vs_eps_x1000/a": [(500, 0.0)],
        "accuracy_vs_eps_x1000/b": [(500, 0.0)], "accuracy_std_vs_eps_x1000/b": [(500, 0.0)],
    }
    with pytest.raises(ExportError) as raised:  # a second export would add a second copy of each point
        export_sweep_curves(tmp_path / "sweep", tmp_path / "tb")
    folder = tmp_path / "tb" / "evaluations" / "linf"
    assert str(raised.value) == f"{folder}: already holds TensorBoard event files; remove them or choose another --tensorboard folder"


def test_attacks_with_settings_are_named_as_the_report_names_them(tmp_path: Path, report: list[CurvePoint]) -> None:
    report += [
        point("aa", "a", "clean", 0.0, 1.0),
        point("aa", "a", "apgd-ce", 8 / 255, 0.5, norm="linf", n=4),
        point("aa", "a", "apgd-dlr", 8 / 255, 0.25, norm="linf", n=4),
    ]
    (exported,) = export_sweep_curves(tmp_path / "sweep", tmp_path / "tb")
    tags = scalars(exported.out_dir)
    assert tags["accuracy_vs_eps_x255/a_apgd-ce__linf__4_images_"] == [(0, 100.0), (8, 50.0)]
    assert tags["accuracy_vs_eps_x255/a_apgd-dlr__linf__4_images_"] == [(0, 100.0), (8, 25.0)]
    assert exported.series == 2


def test_eps_scale_counts_255ths_within_float_noise() -> None:
    assert eps_scale([1 / 255, 8 / 255, 0.0]) == 255
    assert eps_scale([8 / 255 + 2e-9]) == 255  # float noise of k/255 (1e-9 x 255 < 1e-6)
    assert eps_scale([8 / 255 + 1e-8]) == 1000  # 1e-8 x 255 = 2.55e-6: not noise any more
    assert eps_scale([1 / 255, 0.5]) == 1000  # one ε off the 255ths moves the whole evaluation
    assert eps_scale([1.0, 2.0]) == 255  # whole numbers are whole 255ths too
