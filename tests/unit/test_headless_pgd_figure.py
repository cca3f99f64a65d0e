"""The headless epoch line and summary show the validation (test) PGD figure when it is on, and only then."""

from __future__ import annotations

from gat_tui.console.headless import epoch_line, summary_lines
from gat_tui.events import EpochSummary, RunFinished


def summary(val_acc_pgd: float | None) -> EpochSummary:
    return EpochSummary(
        epoch=3, step=30, time=1.0, val_acc_clean=0.875, val_acc_adv=0.5, val_acc_fgm_l2=0.625, val_pert_l2=1.0,
        val_pert_linf=0.1, val_loss_g=None, is_best=True, epoch_seconds=2.0, val_acc_pgd=val_acc_pgd,
    )


def test_the_epoch_line_shows_the_validation_pgd_accuracy_when_it_is_on() -> None:
    line = epoch_line(summary(0.3125))
    assert "PGD 31.25%" in line and "FGM-L2 62.50%" in line and "val clean 87.50%" in line
    assert "PGD" not in epoch_line(summary(None))


def test_the_run_summary_shows_the_test_pgd_accuracy_when_it_was_measured() -> None:
    def finished(extra: dict[str, float]) -> RunFinished:
        return RunFinished(
            status="finished", epochs_done=3, step=30, wall_seconds=5.0, best_epoch=2, best_value=0.4, message="",
            test_acc_clean=0.9, test_acc_adv=0.5, test_acc_fgm_l2=0.6, extra=extra,
        )

    assert "PGD 43.75%" in summary_lines(finished({"test_acc_pgd": 0.4375}), "runs/x")[1]
    assert "PGD" not in summary_lines(finished({}), "runs/x")[1]
