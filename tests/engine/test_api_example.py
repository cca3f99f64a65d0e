"""The Python API's example (issue 23, and docs/python-api.md, which shows this file's marked part)
runs as written on tiny synthetic data, and what each call returns is checked."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import gat_tui as gt
from gat_tui.data import load_splits
from gat_tui.events import EpochSummary, RunFinished, RunStarted

TINY_PRESET = """
name = "tiny_gat"
method = "gat"
device = "cpu"
[data]
dataset = "synthetic"
image_size = 8
num_classes = 3
train_size = 96
val_size = 32
test_size = 40
batch_size = 16
[train]
epochs = 2
lr_f = 0.01
[gat]
c_g = 0.1
lr_g = 1e-3
[eval]
panel_size = 0
[logging]
tensorboard = false
"""


def synthetic_loader(count: int = 64, seed: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 3, 8, 8, generator=generator)
    labels = torch.randint(0, 3, (count,), generator=generator)
    return DataLoader(TensorDataset(images, labels), batch_size=16, shuffle=True, generator=generator)


@pytest.mark.slow
def test_the_api_example_runs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = synthetic_loader()
    generator_batches = itertools.cycle(synthetic_loader(seed=1))  # G's own shuffle, as Algorithm 1 draws it
    (tmp_path / "tiny_gat.toml").write_text(TINY_PRESET)
    preset = str(tmp_path / "tiny_gat.toml")
    events: list[object] = []
    model.train()

    # --8<-- [start:example]
    import gat_tui as gt

    gat = gt.GAT(model, input_shape=(3, 8, 8), c_g=0.01, lr_g=1e-3, alpha=0.5, clip=True)
    for x, y in loader:  # float images in [0, 1]
        x_g, y_g = next(generator_batches)
        gat.generator_step(x_g, y_g)  # Eq. 9: one step of G on its own optimiser (call k times)
        loss = gat.classifier_loss(x, y)  # Eq. 10, with grad for the model: your optimiser steps it
        loss.backward()
        opt.step()
        opt.zero_grad()
    adv = gat.perturb(x, y)  # the generator as an attack: adv.adversarial, adv.perturbation (δ)
    pgd = gt.attacks.PGDLinf(steps=10)(model, x, y, 8 / 255)  # any attack, on any model

    run = gt.train(preset, overrides={"gat.c_g": 0.01}, on_event=events.append)  # a run, as the CLI does
    ckpt = gt.load(run.best_checkpoint)  # .config, .classifier(), .generator()
    table = gt.evaluate(ckpt, attacks=["fgsm:8/255", "pgd-l2:0.5"], limit=24)
    for row in table.results:
        print(row.attack, row.eps, f"{row.accuracy:.3f}", f"{row.pert_l2:.3f}")
    # --8<-- [end:example]

    # the attacks: δ as applied, within [0, 1]; PGD within its ε-ball
    torch.testing.assert_close(adv.perturbation, adv.adversarial - x)
    assert 0 <= adv.adversarial.min() and adv.adversarial.max() <= 1
    assert pgd.linf().max() <= 8 / 255 + 1e-6
    assert model.training  # the attacks restore the model's mode

    # the run: as configured, with the override, reported through on_event
    assert run.status == "finished" and run.best_checkpoint.is_file()
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    assert sum(isinstance(event, EpochSummary) for event in events) == 2
    assert ckpt.config.gat.c_g == 0.01 and ckpt.config.name == "tiny_gat"
    assert ckpt.has_generator and ckpt.image_shape == (3, 8, 8) and ckpt.num_classes == 3

    # the evaluation: the rows asked for, on the first 24 test images; clean accuracy by hand
    assert [(row.attack, row.eps) for row in table.results] == [("clean", 0.0), ("fgsm", 8 / 255), ("pgd-l2", 0.5)]
    assert table.count == 24
    splits = load_splits(ckpt.config.data, None)
    with torch.no_grad():
        predicted = ckpt.classifier()(splits.test_images[:24].float() / 255).argmax(dim=1)
    assert table.results[0].accuracy == pytest.approx((predicted == splits.test_labels[:24]).float().mean().item())
    assert table.results[2].pert_l2 <= 0.5 + 1e-5


@pytest.mark.slow
def test_a_failed_run_raises_with_its_message(tmp_path: Path) -> None:
    preset = tmp_path / "broken.toml"
    preset.write_text(TINY_PRESET.replace('dataset = "synthetic"', f'dataset = "imagefolder"\npath = "{tmp_path / "missing"}"'))
    with pytest.raises(gt.RunFailed, match="missing"):
        gt.train(preset, out=tmp_path / "run")
