"""The fixed validation panel: clean image, the perturbation as a heat-map of |δ|, and x + k·δ.

Images are scaled by a whole factor to the space there is (a 32-pixel image at up to 32 cells,
or 64 where there is room), never resampled by an uneven ratio. The heat-map shows |δ − mean|
with its scale and the mean removed printed; the amplified view x + k·δ prints its k. The panels
of earlier epochs can be shown again: `step(-1)` and `step(1)` (keys `[` and `]`) move through
them, and the newest is followed again once reached. Those of this session are kept in memory
(the oldest beyond `MAX_PANELS` are read back from the run folder when shown); a resumed run, and
the runs screen, add the panels saved in the run folder (`panels/epoch_NNN.safetensors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from gat_tui.dashboard.previews import amplification, amplified, heat_colours, integer_width, perturbation_heat, render_image
from gat_tui.events import PreviewPanel
from gat_tui.runs.panels import PanelError, panel_path, read_panel

LABEL_WIDTH = 16
MAX_PANELS = 200  # kept in memory, a few hundred kB each: a long run's panels stay well under 100 MB


@dataclass(frozen=True)
class SavedPanel:
    """A panel kept in a run folder only, read when it is shown."""

    epoch: int
    path: Path


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
        self.available = 40  # cells for each of the three images
        self.rows_shown = 3
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
        # three images and a label column share the width
        self.available = max(4, (self.size.width - LABEL_WIDTH - 4) // 3)
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

    def image_width(self, panel: PreviewPanel) -> int:
        return integer_width(int(panel.images.shape[-1]), self.available)

    def render_panel(self, panel: PreviewPanel) -> Group:
        names = panel.class_names
        width = self.image_width(panel)
        delta = "δ" if self.color else "d"
        k = amplification(panel.perturbations[: self.rows_shown])
        table = Table.grid(padding=(0, 1))
        for _ in range(3):
            table.add_column(width=max(width, 6))
        table.add_column(width=LABEL_WIDTH)
        times = "·" if self.color else "*"
        table.add_row(Text("clean"), Text(f"|{delta}| heat"), Text(f"x+{k}{times}{delta}"), Text("labels"))
        for index in range(min(self.rows_shown, len(panel.labels))):
            heat, scale, mean = perturbation_heat(panel.perturbations[index])
            labels = Text(
                f"true  {names[panel.labels[index]]}\n"
                f"clean {names[panel.predicted_clean[index]]}\n"
                f"adv   {names[panel.predicted_adversarial[index]]}\n"
                f"|{delta}| max {scale:.2g}\n"
                f"mean {mean:+.1g}"
            )
            if self.color and panel.predicted_adversarial[index] != panel.labels[index]:
                labels.stylize("bold red", 0)
            heat_image = heat_colours(heat) if self.color else heat
            table.add_row(
                render_image(panel.images[index], width, self.color),
                render_image(heat_image, width, self.color),
                render_image(amplified(panel.images[index], panel.perturbations[index], k), width, self.color),
                labels,
            )
        position = len(self.panels) if self.index is None else self.index + 1
        where = "newest" if self.index is None else "[ ] earlier/later"
        head = f"validation panel, epoch {panel.epoch} ({position}/{len(self.panels)}, {where}); perturbation: heat |{delta}-mean|, x{k} in the third"
        return Group(Text(head), table)

    def plain_text(self) -> str:
        """What the panel shows, without styles (for tests and screen captures)."""
        if self.panel is None:
            return ""
        import io

        from rich.console import Console

        console = Console(width=160, color_system=None, record=True, file=io.StringIO())
        console.print(self.render_panel(self.panel))
        return console.export_text()
