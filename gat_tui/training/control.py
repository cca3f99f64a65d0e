"""How a user interface steers a running `Trainer` from another thread.

Each request is a `threading.Event` that the training loop reads once per step (a plain
Python check, no GPU sync) and answers at the next step boundary.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class TrainingControl:
    stop: threading.Event = field(default_factory=threading.Event)
    pause: threading.Event = field(default_factory=threading.Event)
    save_now: threading.Event = field(default_factory=threading.Event)
    evaluate_now: threading.Event = field(default_factory=threading.Event)

    def anything_asked(self) -> bool:
        return self.stop.is_set() or self.pause.is_set() or self.save_now.is_set() or self.evaluate_now.is_set()
