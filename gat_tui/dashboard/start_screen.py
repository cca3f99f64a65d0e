"""The start screen: pick a preset, adjust epochs, seed, device and any key, start training."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from gat_tui.config import ConfigError, RunConfig, load_preset
from gat_tui.presets import shipped_presets


def overrides_from_form(epochs: str, seed: str, device: str, extra: str) -> list[str]:
    """The form's fields as `--set` style overrides, validated later with the preset."""
    overrides = []
    if epochs.strip():
        overrides.append(f"train.epochs={epochs.strip()}")
    if seed.strip():
        overrides.append(f"seed={seed.strip()}")
    if device and device != "preset":
        overrides.append(f"device={device}")
    overrides.extend(part for part in extra.split() if part)
    return overrides


class PresetList(OptionList):
    """The presets; Enter chooses one and moves on to the form, a click chooses one and keeps the focus here."""

    BINDINGS = [Binding("enter", "choose", "choose", show=False)]

    def action_choose(self) -> None:
        self.action_select()
        self.screen.focus_next()


class FormScroll(VerticalScroll, can_focus=False):
    """The form scrolls (a short terminal) but takes no focus itself: Tab goes from the presets to epochs."""


class StartScreen(Screen[None]):
    class Start(Message):
        """Start training this configuration in a new run folder."""

        def __init__(self, config: RunConfig) -> None:
            super().__init__()
            self.config = config

    BINDINGS = [Binding("enter", "start", "start", show=False), Binding("ctrl+s", "start", "start")]

    def __init__(self) -> None:
        super().__init__()
        self.presets: list[tuple[Path, RunConfig | None, str]] = []
        for path in shipped_presets():
            try:
                self.presets.append((path, load_preset(path), ""))
            except ConfigError as error:
                self.presets.append((path, None, str(error)))

    def compose(self) -> ComposeResult:
        yield Static("[b]gat-tui[/b]  Generative Adversarial Trainer (Lee, Han, Lee 2017): pick a preset", id="title")
        with Horizontal(id="start-body"):
            options = [
                Option(f"{path.stem}", id=str(index), disabled=config is None)
                for index, (path, config, _) in enumerate(self.presets)
            ]
            yield PresetList(*options, id="preset-list")
            with FormScroll(id="preset-form"):
                yield Static("", id="preset-description")
                yield Label("epochs")
                yield Input(placeholder="from the preset", id="epochs", type="integer")
                yield Label("seed")
                yield Input(placeholder="from the preset", id="seed", type="integer")
                yield Label("device")
                yield Select(
                    [(name, name) for name in ("preset", "auto", "cpu", "cuda", "mps")], value="preset", id="device", allow_blank=False
                )
                yield Label("other keys (KEY=VALUE, space-separated, e.g. gat.c_g=0.001 train.alpha=0.3)")
                yield Input(id="overrides")
                yield Button("Start training (ctrl+s)", id="start", variant="primary")
        # below the scrolled form, so an error is in sight however small the terminal
        yield Static("", id="form-error")
        yield Footer()

    def on_mount(self) -> None:
        option_list = self.query_one(OptionList)
        if self.presets:
            first = next((i for i, (_, config, _) in enumerate(self.presets) if config is not None and config.name == "synthetic_smoke"), 0)
            option_list.highlighted = first
        option_list.focus()

    def selected(self) -> tuple[Path, RunConfig | None, str] | None:
        index = self.query_one(OptionList).highlighted
        return self.presets[index] if index is not None and index < len(self.presets) else None

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        chosen = self.selected()
        if chosen is None:
            return
        path, config, error = chosen
        description = self.query_one("#preset-description", Static)
        if config is None:
            description.update(f"[red]{error}[/red]")
            return
        description.update(
            f"[b]{config.name}[/b]\n{config.description}\n[dim]paper: {config.paper_source}[/dim]\n"
            f"method {config.method}, data {config.data.dataset}, {config.train.epochs} epochs, "
            f"batch {config.data.batch_size}, seed {config.seed}, device {config.device}"
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_start()

    def action_start(self) -> None:
        chosen = self.selected()
        error_box = self.query_one("#form-error", Static)
        if chosen is None or chosen[1] is None:
            error_box.update("[red]choose a valid preset first[/red]")
            return
        device = self.query_one("#device", Select).value
        overrides = overrides_from_form(
            self.query_one("#epochs", Input).value,
            self.query_one("#seed", Input).value,
            str(device),
            self.query_one("#overrides", Input).value,
        )
        try:
            config = load_preset(chosen[0], overrides)
        except ConfigError as error:
            error_box.update(f"[red]{escape(str(error))}[/red]")
            return
        error_box.update("")
        self.post_message(self.Start(config))
