"""`evaluate`: attacks on a saved model, as `gat-tui eval CHECKPOINT` runs them, from Python."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gat_tui.api.checkpoint import SavedModel, checkpoint_file
from gat_tui.robustness.evaluate import AttackResult, CheckpointEvaluation, evaluate_checkpoint
from gat_tui.robustness.options import EvalOptions

__all__ = ["AttackResult", "CheckpointEvaluation", "evaluate"]


def evaluate(
    checkpoint: str | Path | SavedModel,
    attacks: Sequence[str] = (),
    *,
    eps: Sequence[float] = (),
    limit: int = 0,
    split: str = "test",
    source: str | Path | None = None,
    clip: bool | None = None,
    pgd_steps: int = 10,
    batch_size: int | None = None,
    device: str = "auto",
    data_dir: str | Path | None = None,
) -> CheckpointEvaluation:
    """Attack a checkpoint's classifier on its run's data: accuracy and perturbation norms per attack and ε.

    The same evaluation as `gat-tui eval` (the same code; its table's rows are `.results`),
    without printing or recording it in the run folder.

    Args:
        checkpoint: a checkpoint file, a run folder (its best checkpoint) or a `load` result.
        attacks: `NAME` or `NAME:EPS,EPS` as `--attack` takes them: fgsm, fgm-l2, random,
            pgd-linf, pgd-l2, gat, and with the autoattack extra autoattack, apgd-ce, apgd-dlr
            (e.g. `"fgsm:8/255"`, `"pgd-l2:0.5,1"`). None: FGSM, FGM-L2 and random, plus the GAT
            attacker when the checkpoint holds a generator.
        eps: sizes for the attacks named without their own (default: a sweep per norm).
        limit: evaluate the first `limit` images of the split only (0: all).
        split: 'test' or 'val'.
        source: an indirect attack: perturbations from this checkpoint's gradients (Fig. 4).
        clip: keep adversarial images in [0, 1]; None follows the run's `perturbation.clip`.
        pgd_steps: PGD iterations.
        batch_size: images per batch on the device (default: the run's `data.eval_batch_size`).
        device: 'auto', 'cpu', 'cuda' or 'mps'.
        data_dir: where data sets are stored.

    Returns:
        `.results`: one `AttackResult` per row, the first `clean` (attack, eps, accuracy in
        [0, 1], mean L2 and L-inf norms of the perturbation applied, source); `.count` images.

    Raises:
        gat_tui.robustness.plan.EvalError: an option or attack that is not accepted, named.
        gat_tui.checkpoints.CheckpointError: a file that is not a usable checkpoint, named.
    """
    path = checkpoint.path if isinstance(checkpoint, SavedModel) else checkpoint_file(checkpoint)
    options = EvalOptions(
        attacks=tuple(attacks), eps_values=tuple(float(value) for value in eps),
        source=checkpoint_file(source) if source is not None else None,
        split=split, limit=limit, data_dir=Path(data_dir).expanduser() if data_dir is not None else None,
        device_name=device, pgd_steps=pgd_steps, batch_size=batch_size, clip=clip,
    )
    return evaluate_checkpoint(path, options)

