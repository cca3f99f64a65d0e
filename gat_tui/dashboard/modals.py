"""Small modal screens: a yes/no question and the key help."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """Asks a question; dismisses with True for yes."""

    BINDINGS = [Binding("y", "answer(True)", "yes"), Binding("n,escape", "answer(False)", "no")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question)
            with Horizontal():
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


HELP_TEXT = """[b]gat-tui dashboard[/b]

Training screen
  p   pause / resume training (at the next step)
  s   save a checkpoint (checkpoints/last.safetensors; at once while paused)
  e   evaluate on the validation set (result in the log; at once while paused)
  q   stop: saves a checkpoint, asks first
  x   x-axis: steps, epochs or wall-clock time
  m   smoothing of step curves: off, 0.6, 0.9 (shown in the titles)
  l   log-scale y on the focused chart
  [ ] earlier / later validation panels (a resumed run's too, from its folder)
  g   the other pair of charts (under 36 rows, two show at a time)
  tab the next chart (its title is marked ▶); l acts on it
  c   previews in colour or plain ASCII
  r   runs screen

Runs screen
  enter   open the run: its recorded charts (or click it);
          on a sweep's heading: fold or unfold its runs
  space   mark runs (a sweep's heading: all its runs), then  o  to overlay their curves
  u       resume the selected run (not one being trained)
  v       evaluate its best checkpoint (FGSM, FGM-L2, random)
  i       its saved validation panels, epoch by epoch ([ ])
  /       filter the rows (escape clears)

Anywhere:  ?  this help,  ctrl+p  commands,
  ctrl+q / ctrl+c  quit (a running training is stopped and saved first)
"""


class HelpScreen(ModalScreen[None]):
    """The keys, in a dialog no taller than the screen: it opens at the top and scrolls (arrows, page up/down, home, end)."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss_help", "close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            with VerticalScroll(id="help-body"):
                yield Static(HELP_TEXT)
            yield Button("Close (esc)  ·  scroll: ↑ ↓ PgUp PgDn Home End", id="close")

    def on_mount(self) -> None:
        body = self.query_one("#help-body", VerticalScroll)
        body.focus()  # the scroll keys go to the text, and it is not scrolled to a focused button at the bottom
        body.scroll_home(animate=False)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)
