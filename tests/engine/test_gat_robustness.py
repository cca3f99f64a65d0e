"""GAT with the tuned generator settings is more robust to FGM-L2 than the baseline, at the same clean accuracy.

Issue 13 §3 on synthetic data: 8x8 images of 4 classes, 1024 training images, 10 epochs (320
steps). Both runs are judged as a user sees them: test figures of the epoch that was best on
validation. Shorter runs (3 epochs of 64-480 images) did not show it: the classifier then
barely trains on G's perturbations and the FGM-L2 figures of the two methods scatter around
each other. FGM-L2 is evaluated at ε = 1, where the baseline keeps only ~20-30 % of the images.
With the paper's lr_g = 1e-6 (seeds 0-4) GAT stays within 3 points of the baseline: the gap
below is the generator's doing.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from gat_tui.config import DataConfig, EvalConfig, GatConfig, LoggingConfig, RunConfig, TrainConfig
from gat_tui.events import RunFinished
from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer

SEED = 0  # the margins below hold for each of seeds 0-4 (figures beside the assertions)


@pytest.fixture
def one_thread() -> Iterator[None]:
    # one thread: the figures do not depend on the machine's core count, and two threads on
    # a loaded 2-core machine were several times slower, not faster
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _train(folder: Path, method: str, gat: GatConfig) -> RunFinished:
    config = RunConfig(
        name="robust",
        method=method,
        seed=SEED,
        device="cpu",
        data=DataConfig(
            dataset="synthetic", image_size=8, num_classes=4, train_size=1280, val_size=256, test_size=512,
            batch_size=32, eval_batch_size=256,
        ),
        train=TrainConfig(epochs=10, log_every=1000),
        gat=gat,
        eval=EvalConfig(panel_size=0, fgm_l2_eps=1.0),
        logging=LoggingConfig(tensorboard=False),
    )
    finished = Trainer(TrainingRequest(config, folder, None, None)).run()
    assert finished.status == "finished" and finished.test_acc_clean is not None and finished.test_acc_fgm_l2 is not None
    return finished


@pytest.mark.slow  # two 10-epoch trainings, one of them GAT: 28 s of CPU (81 s wall on the busy 2-core machine)
@pytest.mark.usefixtures("one_thread")
def test_tuned_gat_beats_the_baseline_under_fgm_l2_at_equal_clean_accuracy(tmp_path: Path, presets_dir: Path) -> None:
    tuned = tomllib.loads((presets_dir / "cifar10_gat_tuned.toml").read_text())["gat"]
    baseline = _train(tmp_path / "baseline", "baseline", GatConfig())
    gat = _train(tmp_path / "gat", "gat", GatConfig(lr_g=tuned["lr_g"], c_g=tuned["c_g"]))
    assert gat.test_acc_clean is not None and baseline.test_acc_clean is not None
    assert gat.test_acc_fgm_l2 is not None and baseline.test_acc_fgm_l2 is not None
    # measured over seeds 0-4 (one thread): clean, baseline 0.988-0.996, GAT 0.994-1.000 (GAT -
    # baseline: +0.004 to +0.010); FGM-L2 at ε = 1, baseline 0.240-0.271, GAT 0.408-0.693 (gap
    # +0.168 to +0.422; seed 0: 0.240 and 0.408); test ‖G(Δ)‖₂ 1.92-2.90
    assert abs(gat.test_acc_clean - baseline.test_acc_clean) <= 0.03
    assert gat.test_acc_fgm_l2 >= baseline.test_acc_fgm_l2 + 0.08
    assert gat.extra["test_pert_l2"] > 1.0  # G perturbs at least as hard as the attack it is judged by
