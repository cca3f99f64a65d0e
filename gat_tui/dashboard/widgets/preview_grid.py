"""The fixed validation panel: clean image, the perturbation as a heat-map of |δ|, and x + k·δ.

Images are scaled by a whole factor to the space there is (a 32-pixel image at up to 32 cells,
or 64 where there is room), never resampled by an uneven ratio. The heat-map shows |δ − mean|
with its scale and the mean removed printed; the amplified view x + k·δ prints its k. The panels
of earlier epochs are kept for this session: `step(-1)` and `step(1)` (keys `[` and `]`) move
through them, and the newest is followed again once reached.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from gat_tui.dashboard.previews import amplification, amplified, heat_colours, integer_width, perturbation_heat, render_image
from gat_tui.events import PreviewPanel

LABEL_WIDTH = 16
MAX_PANELS = 200  # a few hundred kB each: a long run's panels stay well under 100 MB


class PreviewGrid(Static):
    """Shows the latest `PreviewPanel` (or an earlier one); `color=False` draws plain ASCII shades."""

    def __init__(self, color: bool, *, id: str | None = None) -> None:
        super().__init__("previews appear after the first epoch", id=id)
        self.color = color
        self.panels: list[PreviewPanel] = []
        self.index: int | None = None  # the panel shown; None follows the newest
        self.available = 40  # cells for each of the three images
        self.rows_shown = 3

    @property
    def panel(self) -> PreviewPanel | None:
        if not self.panels:
            return None
        return self.panels[-1 if self.index is None else self.index]

    def on_resize(self) -> None:
        # three images and a label column share the width
        self.available = max(4, (self.size.width - LABEL_WIDTH - 4) // 3)
        self.show()

    def show(self, panel: PreviewPanel | None = None) -> None:
        if panel is not None:
            self.panels.append(panel)
            if len(self.panels) > MAX_PANELS:
                del self.panels[0]
                if self.index is not None:
                    self.index = max(0, self.index - 1)
        shown = self.panel
        if shown is not None:
            self.update(self.render_panel(shown))

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
