"""The fixed validation panel: clean image, perturbation (with its scale), adversarial image."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from gat_tui.dashboard.previews import render_image, visible_perturbation
from gat_tui.events import PreviewPanel


class PreviewGrid(Static):
    """Shows the latest `PreviewPanel`; `color=False` draws plain ASCII shades."""

    def __init__(self, color: bool, *, id: str | None = None) -> None:
        super().__init__("previews appear after the first epoch", id=id)
        self.color = color
        self.panel: PreviewPanel | None = None
        self.image_width = 12
        self.rows_shown = 3

    def on_resize(self) -> None:
        # three images and a label column of about 15 characters share the width
        self.image_width = max(6, min(16, (self.size.width - 15) // 3 - 1))
        self.show()

    def show(self, panel: PreviewPanel | None = None) -> None:
        if panel is not None:
            self.panel = panel
        if self.panel is None:
            return
        self.update(self.render_panel(self.panel))

    def render_panel(self, panel: PreviewPanel) -> Group:
        names = panel.class_names
        width = self.image_width
        table = Table.grid(padding=(0, 1))
        for _ in range(3):
            table.add_column(width=width)
        table.add_column()
        titles = ("clean", "perturbation", "adversarial") if width >= 12 else ("x", "δ" if self.color else "d", "x+δ" if self.color else "x+d")
        table.add_row(*(Text(title) for title in titles), Text("labels"))
        for index in range(min(self.rows_shown, len(panel.labels))):
            perturbation, scale = visible_perturbation(panel.perturbations[index])
            labels = Text(
                f"true  {names[panel.labels[index]]}\n"
                f"clean {names[panel.predicted_clean[index]]}\n"
                f"adv   {names[panel.predicted_adversarial[index]]}\n"
                f"scale {'±' if self.color else '+/-'}{scale:.2g}"
            )
            if self.color and panel.predicted_adversarial[index] != panel.labels[index]:
                labels.stylize("bold red", 0)
            table.add_row(
                render_image(panel.images[index], width, self.color),
                render_image(perturbation, width, self.color),
                render_image(panel.adversarial[index], width, self.color),
                labels,
            )
        return Group(Text(f"validation panel, epoch {panel.epoch}"), table)

    def plain_text(self) -> str:
        """What the panel shows, without styles (for tests and screen captures)."""
        if self.panel is None:
            return ""
        import io

        from rich.console import Console

        console = Console(width=120, color_system=None, record=True, file=io.StringIO())
        console.print(self.render_panel(self.panel))
        return console.export_text()
