"""The fixed validation panel: clean image, the perturbation as a heat-map of |δ|, and x + k·δ.

Images are scaled by a whole factor to the space there is (a 32-pixel image at up to 32 cells,
or 64 where there is room), never resampled by an uneven ratio. The widget fills its box and
shows as many of the panel's images as fit in it (`preview_layout`): at 80×24 at least one
triple with its labels, at 120×40 the whole panel, triples side by side where the width allows. The heat-map shows |δ − mean|
with its scale and the mean removed printed; the amplified view x + k·δ prints its k. The panels
of earlier epochs can be shown again: `step(-1)` and `step(1)` (keys `[` and `]`) move through
them, and the newest is followed again once reached. Those of this session are kept in memory
(the oldest beyond `MAX_PANELS` are read back from the run folder when shown); a resumed run, and
the runs screen, add the panels saved in the run folder (`panels/epoch_NNN.safetensors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from gat_tui.dashboard.previews import amplification, amplified, heat_colours, integer_width, perturbation_heat, render_image
from gat_tui.events import PreviewPanel
from gat_tui.runs.panels import PanelError, panel_path, read_panel

LABEL_WIDTH = 16  # the widest label column; it narrows to MIN_LABEL_WIDTH (names cut with …) before images shrink
MIN_LABEL_WIDTH = 10
LABEL_LINES = 4  # true, clean, adv, |δ| max and mean
MIN_IMAGE_CELLS = 8  # images are not shrunk below this (or their own width, if smaller)
MAX_PANELS = 200  # kept in memory, a few hundred kB each: a long run's panels stay well under 100 MB


@dataclass(frozen=True)
class SavedPanel:
    """A panel kept in a run folder only, read when it is shown."""

    epoch: int
    path: Path


@dataclass(frozen=True)
class PreviewLayout:
    """How a panel is drawn in a box: images `image_cells` wide, `per_row` triples side by side, `shown` in all."""

    image_cells: int
    per_row: int
    shown: int
    label_width: int


def preview_layout(source_width: int, source_height: int, count: int, width: int, height: int) -> PreviewLayout:
    """The layout showing the most of `count` images in a `width` × `height` box (two rows go to the captions),
    the larger images among those that show as many; at least one triple, at its smallest size, however small the box.
    """
    candidates = sorted({integer_width(source_width, cells) for cells in range(1, 8 * source_width + 1)}, reverse=True)
    smallest = min(source_width, MIN_IMAGE_CELLS)
    candidates = [cells for cells in candidates if cells >= smallest] or [source_width]
    best: PreviewLayout | None = None
    best_key: tuple[bool, int, int] | None = None
    for cells in candidates:
        column = max(cells, 6) + 1  # a table column and its gap
        triple = 3 * column + MIN_LABEL_WIDTH + 1
        rows = max(LABEL_LINES, -(-cells * source_height // source_width) // 2)
        block_rows = max(1, (height - 2) // rows)
        per_row = min(max(1, width // triple), max(1, -(-count // block_rows)))  # no more side by side than needed
        shown = min(count, per_row * block_rows)
        fits = 3 * column + MIN_LABEL_WIDTH <= width and rows + 2 <= height
        label_width = min(LABEL_WIDTH, max(MIN_LABEL_WIDTH, width // per_row - 3 * column - 1))
        layout = PreviewLayout(cells, per_row, shown, label_width)
        key = (fits, shown, cells)  # one that fits, then the most images, then the largest
        if best_key is None or key > best_key:
            best, best_key = layout, key
    assert best is not None
    return best


class PreviewGrid(Static):
    """Shows the latest `PreviewPanel` (or an earlier one); `color=False` draws plain ASCII shades.

    `run_dir`, where given, is where this run's panels are saved: the oldest in memory are
    dropped for their files there.
    """

    def __init__(self, color: bool, *, id: str | None = None, run_dir: Path | None = None) -> None:
        super().__init__("previews appear after the first epoch", id=id)
        self.color = color
        self.run_dir = run_dir
        self.panels: list[PreviewPanel | SavedPanel] = []  # by epoch, oldest first
        self.index: int | None = None  # the panel shown; None follows the newest
        self.layout_box = (120, 40)  # the cells this widget has: (width, height)
        self.shown_layout: PreviewLayout | None = None  # how the last panel was drawn
        self.error = ""  # why the panel chosen could not be read, if it could not
        self._read: tuple[SavedPanel, PreviewPanel] | None = None  # the saved panel read last

    @property
    def panel(self) -> PreviewPanel | None:
        """The panel chosen, read from its file if it is a saved one; None if there is none (or it cannot be read)."""
        self.error = ""
        if not self.panels:
            return None
        entry = self.panels[-1 if self.index is None else self.index]
        if isinstance(entry, PreviewPanel):
            return entry
        if self._read is not None and self._read[0] == entry:
            return self._read[1]
        try:
            panel = read_panel(entry.path)
        except PanelError as error:
            self.error = str(error)
            return None
        self._read = (entry, panel)
        return panel

    def on_resize(self) -> None:
        self.layout_box = (max(20, self.content_size.width), max(6, self.content_size.height))
        self.show()

    def add_saved(self, saved: list[tuple[int, Path]]) -> None:
        """Add panels saved in a run folder, (epoch, file) each, for the epochs not already here."""
        epochs = {entry.epoch for entry in self.panels}
        self._merge([SavedPanel(epoch, path) for epoch, path in saved if epoch not in epochs])
        self.show()

    def _merge(self, entries: list[PreviewPanel | SavedPanel]) -> None:
        """Put `entries` in epoch order among the panels (one per epoch: a new one replaces its epoch's), the one shown kept."""
        shown = None if self.index is None else self.panels[self.index]
        by_epoch = {entry.epoch: entry for entry in self.panels}
        by_epoch.update({entry.epoch: entry for entry in entries})
        self.panels = [by_epoch[epoch] for epoch in sorted(by_epoch)]
        if shown is not None:
            self.index = self.panels.index(by_epoch[shown.epoch])

    def show(self, panel: PreviewPanel | None = None) -> None:
        if panel is not None:
            if self.panels and self.panels[-1].epoch < panel.epoch:
                self.panels.append(panel)  # the usual case: the next epoch's
            else:
                self._merge([panel])
            self._forget_oldest()
        shown = self.panel
        if shown is not None:
            self.update(self.render_panel(shown))
        elif self.error:
            self.update(f"[red]{escape(self.error)}[/red]  ([ ] earlier/later)")

    def _forget_oldest(self) -> None:
        """Past `MAX_PANELS` in memory: the oldest is dropped, or kept as its saved file where there is one."""
        in_memory = [i for i, entry in enumerate(self.panels) if isinstance(entry, PreviewPanel)]
        if len(in_memory) <= MAX_PANELS:
            return
        oldest = in_memory[0]
        entry = self.panels[oldest]
        path = panel_path(self.run_dir, entry.epoch) if self.run_dir is not None else None
        if path is not None and path.is_file():
            self.panels[oldest] = SavedPanel(entry.epoch, path)
            return
        del self.panels[oldest]
        if self.index is not None and self.index >= oldest:
            self.index = max(0, self.index - 1)

    def step(self, delta: int) -> None:
        """Show an earlier (delta < 0) or later panel; reaching the newest follows new ones again."""
        if not self.panels:
            return
        current = len(self.panels) - 1 if self.index is None else self.index
        target = min(max(current + delta, 0), len(self.panels) - 1)
        self.index = None if target == len(self.panels) - 1 else target
        self.show()

    def panel_layout(self, panel: PreviewPanel) -> PreviewLayout:
        height, width = int(panel.images.shape[-2]), int(panel.images.shape[-1])
        return preview_layout(width, height, len(panel.labels), *self.layout_box)

    def render_panel(self, panel: PreviewPanel) -> Group:
        names = panel.class_names
        layout = self.shown_layout = self.panel_layout(panel)
        width = layout.image_cells
        delta = "δ" if self.color else "d"
        cut: Literal["ellipsis", "crop"] = "ellipsis" if self.color else "crop"  # ASCII mode prints no `…`
        k = amplification(panel.perturbations[: layout.shown])
        table = Table.grid(padding=(0, 1))
        for _ in range(layout.per_row):
            for _ in range(3):
                table.add_column(width=max(width, 6), no_wrap=True)
            table.add_column(width=layout.label_width, no_wrap=True, overflow=cut)
        times = "·" if self.color else "*"
        table.add_row(*[Text(t) for _ in range(layout.per_row) for t in ("clean", f"|{delta}| heat", f"x+{k}{times}{delta}", "labels")])
        cells: list[Text] = []
        for index in range(layout.shown):
            heat, scale, mean = perturbation_heat(panel.perturbations[index])
            labels = Text(
                f"true  {names[panel.labels[index]]}\n"
                f"clean {names[panel.predicted_clean[index]]}\n"
                f"adv   {names[panel.predicted_adversarial[index]]}\n"
                f"|{delta}| {scale:.2g} mean {mean:+.1g}",
                no_wrap=True,
                overflow=cut,
            )
            if self.color and panel.predicted_adversarial[index] != panel.labels[index]:
                labels.stylize("bold red", 0)
            heat_image = heat_colours(heat) if self.color else heat
            cells += [
                render_image(panel.images[index], width, self.color),
                render_image(heat_image, width, self.color),
                render_image(amplified(panel.images[index], panel.perturbations[index], k), width, self.color),
                labels,
            ]
            if len(cells) == 4 * layout.per_row:
                table.add_row(*cells)
                cells = []
        if cells:
            table.add_row(*cells, *[Text("") for _ in range(4 * layout.per_row - len(cells))])
        position = len(self.panels) if self.index is None else self.index + 1
        where = "newest" if self.index is None else "[ ] earlier/later"
        count = "" if layout.shown == len(panel.labels) else f", {layout.shown} of {len(panel.labels)} images"
        where = f"epoch {panel.epoch} ({position}/{len(self.panels)}, {where}{count})"
        long_head = f"validation panel, {where}; perturbation: heat |{delta}-mean|, x{k} in the third"
        short_head = f"{where} perturbation |{delta}-mean|, x{k}"
        head = Text(long_head if len(long_head) <= self.layout_box[0] else short_head, no_wrap=True, overflow=cut)
        return Group(head, table)

    def plain_text(self) -> str:
        """What the panel shows, without styles (for tests and screen captures)."""
        if self.panel is None:
            return ""
        import io

        from rich.console import Console

        console = Console(width=max(160, self.layout_box[0]), color_system=None, record=True, file=io.StringIO())
        console.print(self.render_panel(self.panel))
        return console.export_text()
