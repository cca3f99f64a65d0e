"""The footer, with the keys that matter most kept where the width runs out.

Textual's footer lists every key and lets the last ones fall off the right edge: at 80 columns
the training screen lost `? help` and quit. Here each action has a rank (`KEY_RANKS`, 0 the most
needed); the keys are shown in their usual order, and the least needed are left out until the
rest fit. Help, stop and quit always show.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# by action; actions not named rank 3
KEY_RANKS = {
    "help": 0,
    "stop": 0,
    "quit": 0,
    "stop_sweep": 0,
    "pause": 1,
    "chart_pair": 1,
    "runs": 2,
    "save": 3,
    "evaluate": 3,
    "x_axis": 4,
    "smoothing": 5,
    "log_y": 5,
}
PALETTE_CELLS = 13  # `▏^p palette` and its padding, docked right
PALETTE_RANK = 4


def key_cells(key_display: str, description: str) -> int:
    """The cells a key takes in the footer: ` key ` then `description `."""
    return len(key_display) + 2 + (len(description) + 1 if description else 0)


def keys_that_fit(entries: list[tuple[str, str, str]], width: int) -> tuple[list[int], bool]:
    """Which of `entries` (action, key display, description) to show in `width` cells, and whether the palette key fits.

    The least needed (highest rank, then the later) are left out first; the order of the rest is kept.
    """
    ranks = [KEY_RANKS.get(action, 3) for action, _, _ in entries]
    kept = list(range(len(entries)))
    palette = True

    def used() -> int:
        return sum(key_cells(entries[i][1], entries[i][2]) for i in kept) + (PALETTE_CELLS if palette else 0)

    while used() > width:
        worst = max(kept, key=lambda i: (ranks[i], i), default=None)
        if palette and (worst is None or ranks[worst] <= PALETTE_RANK):
            palette = False  # ctrl+p still works; its key goes before those ranked above it
            continue
        if worst is None or ranks[worst] == 0:
            break
        kept.remove(worst)
    return kept, palette


class KeyFooter(Footer):
    """A `Footer` that leaves out the least needed keys, by rank, rather than cutting the last ones off."""

    shown_keys: tuple[str, ...] = ()  # `key description` of each key shown (tests read them)

    def on_resize(self) -> None:
        self.call_after_refresh(self.recompose)

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        active = self.screen.active_bindings
        by_action: dict[str, tuple[Binding, bool, str]] = {}
        for _, binding, enabled, tooltip in active.values():
            if binding.show and binding.action not in by_action:
                by_action[binding.action] = (binding, enabled, tooltip)
        shown = list(by_action.values())
        entries = [(binding.action, self.app.get_key_display(binding), binding.description) for binding, _, _ in shown]
        kept, palette = keys_that_fit(entries, self.size.width or self.app.size.width)
        self.shown_keys = tuple(f"{entries[i][1]} {entries[i][2]}" for i in kept)
        for index in kept:
            binding, enabled, tooltip = shown[index]
            yield FooterKey(
                binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                disabled=not enabled, tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
        if palette and self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            try:
                _node, binding, enabled, tooltip = active[self.app.COMMAND_PALETTE_BINDING]
            except KeyError:
                return
            yield FooterKey(
                binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                classes="-command-palette", disabled=not enabled, tooltip=binding.tooltip or binding.description,
            )
