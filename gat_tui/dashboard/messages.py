"""Messages from the training worker thread to the dashboard."""

from __future__ import annotations

from textual.message import Message

from gat_tui.events import Event


class EngineEvent(Message):
    """An engine event, carried from the training thread to the screen that runs it."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event
