"""`gat-tui report --png`: the figure's size, axes, ticks, labels, markers and error-bar caps, read
back from the matplotlib figure that is saved, and the message when matplotlib is missing.
(The error bars' lengths are checked in test_report_figures.py.)"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from gat_tui.console.sweep_report import write_pngs
from gat_tui.sweep.report import Cell, CurvePoint, SweepReport


def point(attack: str, eps: float, mean: float, norm: str | None = None) -> CurvePoint:
    return CurvePoint("ev", "gat", attack, eps, None, Cell(mean, 0.05, 2), Cell(0.1, 0.0, 2), norm)


# AutoAttack's rows carry their own norm (L∞ here): its ε are ticked in 255ths
REPORT = SweepReport("s", 2, [], [point("autoattack", 8 / 255, 0.25, "linf"), point("autoattack", 4 / 255, 0.5, "linf")])


def test_the_png_s_axes_ticks_labels_and_markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    saved: list[Figure] = []
    original = Figure.savefig

    def savefig(self: Figure, *args: object, **kwargs: object) -> None:
        saved.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    folder = tmp_path / "figures" / "png"  # two levels that do not exist yet
    (path,) = write_pngs(REPORT, folder)
    assert write_pngs(SweepReport("s", 2, [], []), folder) == []  # again (no figure), into the folder now there
    assert path == folder / "ev.png"
    width, height = struct.unpack(">II", path.read_bytes()[16:24])  # the PNG header's IHDR
    assert (width, height) == (750, 600)  # 5 × 4 inches at 150 dpi
    (axes,) = saved[0].axes
    assert [label.get_text() for label in axes.get_xticklabels()] == ["4/255", "8/255"]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("ε", "accuracy (%), mean ± std over seeds")
    assert axes.get_ylim() == (0.0, 100.0) and axes.get_title() == "s: ev"
    (text,) = axes.get_legend().get_texts()
    assert text.get_text() == "gat autoattack" and text.get_fontsize() == FontProperties(size="small").get_size_in_points()
    (container,) = axes.containers
    line, caps, _ = container.lines
    assert line.get_marker() == "o" and [cap.get_markersize() for cap in caps] == [6.0, 6.0]  # capsize 3: caps 2 × 3 points wide


def test_without_matplotlib_the_error_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    with pytest.raises(RuntimeError) as raised:
        write_pngs(REPORT, tmp_path)
    assert str(raised.value) == 'PNG figures need matplotlib: pip install -e ".[plot]"'
