"""One sweep evaluation: the `gat-tui eval` figures of one run's best checkpoint, as JSON.

The same code as `gat-tui eval` (`evaluate_checkpoint`), AutoAttack's options included, so a
sweep's figures and a command line's are the same figures.
"""

from __future__ import annotations

import json
from pathlib import Path

from gat_tui.atomic import write_text_atomically
from gat_tui.robustness.evaluate import evaluate_checkpoint
from gat_tui.robustness.options import EvalOptions
from gat_tui.robustness.plan import AutoAttackOptions
from gat_tui.sweep.plan import Evaluation


def evaluate_run(checkpoint: Path, source: Path | None, evaluation: Evaluation, data_dir: Path | None, out: Path) -> None:
    options = EvalOptions(
        attacks=(evaluation.attack,),
        eps_values=evaluation.eps,
        source=source,
        split=evaluation.split,
        limit=evaluation.limit,
        data_dir=data_dir,
        match_power=evaluation.match_power,
        autoattack=AutoAttackOptions(evaluation.norm, evaluation.version, evaluation.aa_attacks),
    )
    done = evaluate_checkpoint(checkpoint, options)
    record = {
        "checkpoint": str(checkpoint),
        "split": evaluation.split,
        "n": done.count,
        "results": [row.to_json() for row in done.results],
        "clip": done.clip,
        "device": str(done.device),
    }
    write_text_atomically(out, json.dumps(record, indent=2) + "\n")
