"""The dashboard's accuracy charts carry the validation PGD figure, live and read back from metrics.jsonl."""

from __future__ import annotations

from gat_tui.dashboard.series import RunSeries
from gat_tui.dashboard.training_screen import CHARTS
from gat_tui.events import EpochSummary


def summary(epoch: int, val_acc_pgd: float | None) -> EpochSummary:
    return EpochSummary(
        epoch=epoch, step=10 * epoch, time=float(epoch), val_acc_clean=0.9, val_acc_adv=None, val_acc_fgm_l2=0.5,
        val_pert_l2=None, val_pert_linf=None, val_loss_g=None, is_best=False, epoch_seconds=1.0, val_acc_pgd=val_acc_pgd,
    )


def test_the_accuracy_chart_draws_the_validation_pgd_figure_when_it_is_on() -> None:
    accuracy = next(names for chart_id, _, names in CHARTS if chart_id == "chart-accuracy")
    assert "val_acc_pgd" in accuracy
    live = RunSeries()
    for epoch, value in ((1, 0.25), (2, 0.375)):
        live.add_epoch(summary(epoch, value))
    assert live.points("val_acc_pgd", "epoch") == ([1.0, 2.0], [0.25, 0.375])
    read_back = RunSeries()
    read_back.add_record({"event": "epoch", "epoch": 3, "step": 30, "time": 3.0, "val_acc_pgd": 0.5})
    assert read_back.points("val_acc_pgd", "epoch") == ([3.0], [0.5])
    off = RunSeries()
    off.add_epoch(summary(1, None))
    assert not off.has("val_acc_pgd")  # off: no line, no legend entry
