"""What an evaluation is asked for: `EvalOptions`, one frozen value, checked when it is made.

Both evaluation paths take it whole: a gat-tui checkpoint (`evaluate.evaluate_checkpoint`) and a
network gat-tui did not train (`external.evaluate_model`); so do `gat-tui eval`, sweep
evaluations and the dashboard. A new option is one field here, read where it is used, and its
check goes in `__post_init__`, whose errors name the `gat-tui eval` option and what it accepts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gat_tui.attacks.autoattack import VERSIONS
from gat_tui.robustness.plan import AttackSpec, AutoAttackOptions, EvalError
from gat_tui.robustness.resume import file_identity

OnProgress = Callable[[str, int, int], None]  # called with (what, done, total), counted in images
OnNotice = Callable[[str], None]  # AutoAttack's state file: resumed from, or ignored and why

SPLITS = ("val", "test")
NORMS = ("linf", "l2")
AUTOATTACK_VERSIONS = (*VERSIONS, "custom")


@dataclass(frozen=True, kw_only=True)
class EvalOptions:
    """Everything an evaluation is told besides what it evaluates; the defaults are `gat-tui eval`'s.

    `attacks` are names, `NAME:EPS,EPS` or `AttackSpec`s with their own ε values; none means
    FGSM, FGM-L2 and random, plus the GAT attacker with a generator. `eps_values` serve the
    attacks without their own. `clip` (keep adversarial images in [0, 1]) defaults to a
    checkpoint's training config, `perturbation.clip`, and to on for other networks. `batch_size`
    defaults to the data config's `eval_batch_size`. With `resumable`, AutoAttack keeps a state
    file (`gat_tui.robustness.resume`) and `on_notice` hears of its use.
    """

    attacks: tuple[str | AttackSpec, ...] = ()
    eps_values: tuple[float, ...] = ()
    source: Path | None = None  # an indirect attack: perturbations from this checkpoint's gradients
    generator: Path | None = None  # the GAT attacker's checkpoint (default: the evaluated checkpoint's own)
    split: str = "test"
    limit: int = 0  # the first `limit` images of the split; 0: all
    data_dir: Path | None = None
    device_name: str = "auto"
    match_power: bool = False  # FGM-L2 and FGSM at the GAT attacker's mean L2 power too (Fig. 2)
    pgd_steps: int = 10
    pgd_step_size: float | None = None  # None: 2.5·ε/steps
    batch_size: int | None = None
    clip: bool | None = None
    autoattack: AutoAttackOptions = AutoAttackOptions()
    resumable: bool = True
    progress: OnProgress | None = field(default=None, compare=False)
    on_notice: OnNotice | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for eps in self.eps_values:
            if not (math.isfinite(eps) and eps >= 0):
                raise EvalError(f"--eps {eps}: not a finite size; expected finite numbers >= 0")
        if self.split not in SPLITS:
            raise EvalError(f"--split {self.split!r}: expected val or test")
        if self.limit < 0:
            raise EvalError(f"--limit {self.limit}: expected a whole number >= 0 (0 = every image of the split)")
        if self.batch_size is not None and self.batch_size < 1:
            raise EvalError(f"--batch-size {self.batch_size}: expected a whole number >= 1")
        if self.pgd_steps < 1:
            raise EvalError(f"--pgd-steps {self.pgd_steps}: expected a whole number >= 1")
        if self.pgd_step_size is not None and not (math.isfinite(self.pgd_step_size) and self.pgd_step_size > 0):
            raise EvalError(f"--pgd-step-size {self.pgd_step_size}: expected a finite number > 0")
        if self.autoattack.norm not in NORMS:
            raise EvalError(f"--norm {self.autoattack.norm!r}: expected linf or l2")
        if self.autoattack.version not in AUTOATTACK_VERSIONS:
            raise EvalError(f"--version {self.autoattack.version!r}: expected {', '.join(VERSIONS)} or custom")

    @property
    def source_name(self) -> str | None:
        """The source as result rows name it; None for a direct attack."""
        return str(self.source) if self.source is not None else None

    def resume_identity(self) -> dict[str, object]:
        """What AutoAttack's state key takes from these options; each path adds what it evaluates."""
        source = file_identity(self.source) if self.source is not None else None
        return {"source": source, "split": self.split, "limit": self.limit}
