"""Says when GAT's generator does not learn: its perturbations stay far below the attack size.

With the paper's generator learning rate (1e-6) G barely moves in a short run: the mean L2 norm
of G(Δ) on the validation images stays around 0.01-0.05 while the fast-gradient methods train
with ε ≈ 1-1.5, so the classifier is trained on almost clean images and GAT is the baseline in
disguise. The rule:

- watched: the methods that train G alongside F (`gat`, `dropout_gat`);
- idle epoch: the epoch's mean validation ‖G(Δ)‖₂ (EpochSummary.val_pert_l2) is below
  IDLE_FRACTION (10 %) of the evaluation's FGM-L2 size `eval.fgm_l2_eps`;
- warning: after IDLE_EPOCHS (3) idle epochs in a row, or, in a run of fewer epochs, after
  every one of them (at least 1); once per run (per process: a resumed run counts afresh).
"""

from __future__ import annotations

IDLE_FRACTION = 0.1
IDLE_EPOCHS = 3
WATCHED_METHODS = ("gat", "dropout_gat")


class GeneratorWatch:
    """Feed it each epoch's val_pert_l2; it returns the warning's text once, when the rule fires."""

    def __init__(self, method: str, fgm_l2_eps: float, epochs: int) -> None:
        self.active = method in WATCHED_METHODS and fgm_l2_eps > 0
        self.threshold = IDLE_FRACTION * fgm_l2_eps
        self.fgm_l2_eps = fgm_l2_eps
        self.patience = max(1, min(IDLE_EPOCHS, epochs))
        self.idle = 0
        self.warned = False

    def observe(self, val_pert_l2: float | None) -> str | None:
        if not self.active or self.warned or val_pert_l2 is None:
            return None
        self.idle = self.idle + 1 if val_pert_l2 < self.threshold else 0
        if self.idle < self.patience:
            return None
        self.warned = True
        epochs = "its first epoch" if self.idle == 1 else f"{self.idle} epochs in a row"
        return (
            f"the generator is barely learning: mean validation ‖G(Δ)‖₂ = {val_pert_l2:.4g} has stayed below "
            f"{self.threshold:.4g} ({IDLE_FRACTION:.0%} of eval.fgm_l2_eps = {self.fgm_l2_eps:g}) for {epochs}, so F trains on "
            "almost clean images; try a larger gat.lr_g (e.g. 1e-4 or 1e-3, see the *_gat_tuned presets) or a smaller gat.c_g"
        )
