"""The Python API's `GAT` in a loop of your own trains the very weights `gat-tui run` trains.

`gat-tui run` trains a tiny synthetic preset in a process of its own; the same seed's initial
networks and batches (the engine's `prepare`, which seeds, loads the data and builds the networks
as the run did) are then replayed through `gt.GAT` with a plain Adam for the classifier, and
every parameter of F and G must equal the run's last checkpoint bit for bit. Once with Table 1's
classifier, once with a model that normalises its own inputs (the user's wrapper, not gat-tui's).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from conftest import Cli
from torch import nn

import gat_tui as gt
from gat_tui.checkpoints import read_checkpoint
from gat_tui.config import load_preset
from gat_tui.training.setup import prepare

MEAN, STD = (0.45, 0.5, 0.55), (0.2, 0.25, 0.3)

PRESET = """
name = "api_replay"
method = "gat"
seed = 5
device = "cpu"

[data]
dataset = "synthetic"
image_size = 8
num_classes = 3
train_size = 96
val_size = 32
test_size = 32
batch_size = 16

[train]
epochs = 2
max_steps_per_epoch = 3
alpha = 0.3          # not 0.5: a swapped alpha and 1 - alpha must change the weights
lr_f = 2e-3
log_every = 1

[gat]
c_g = 0.05
k = 2                # two generator steps per classifier step, each on a fresh batch
lr_g = 1e-3

[eval]
panel_size = 0

[logging]
tensorboard = false
"""


class OwnNormalisation(nn.Module):
    """A user's model that normalises its own inputs: pixels in [0, 1] in, logits out."""

    def __init__(self, network: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.network = network
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.network((images - self.mean) / self.std)
        return output


@pytest.mark.slow
@pytest.mark.parametrize("normalising", [False, True], ids=["allconv", "model-normalises-its-inputs"])
def test_gat_in_a_loop_of_your_own_equals_gat_tui_run(tmp_path: Path, cli: Cli, normalising: bool) -> None:
    preset = tmp_path / "api_replay.toml"
    normalize = f"\n[model]\nnormalize = {{ mean = {list(MEAN)}, std = {list(STD)} }}\n" if normalising else ""
    preset.write_text(PRESET + normalize)
    run_dir = tmp_path / "run"
    # the same torch thread count in both processes: CPU kernels sum in an order that depends on it
    result = cli("run", str(preset), "--headless", "--out", str(run_dir), env={"OMP_NUM_THREADS": str(torch.get_num_threads())})
    assert result.returncode == 0, result.stderr
    trained, _ = read_checkpoint(run_dir / "checkpoints" / "last.safetensors")

    config = load_preset(preset)
    setup = prepare(config, None)  # the run's seed: its initial networks, its data, its batch order
    engine_classifier = setup.method.classifier
    model = OwnNormalisation(engine_classifier.network, MEAN, STD) if normalising else engine_classifier
    generator = setup.method.generator
    assert generator is not None
    initial = copy.deepcopy(model.state_dict())
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr_f)
    gat = gt.GAT(model, setup.splits.image_shape, c_g=config.gat.c_g, lr_g=config.gat.lr_g, alpha=config.train.alpha,
                 clip=config.perturbation.clip, generator=generator)
    generator_batches = setup.cursors["generator"]
    for _ in range(config.train.epochs):
        for images, labels in setup.cursors["train"].epoch(limit=setup.steps_per_epoch):
            for _ in range(config.gat.k):
                gat.generator_step(*generator_batches.next_batch())
            loss = gat.classifier_loss(images, labels)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

    for prefix, network in (("classifier", model), ("generator", gat.generator)):
        parameters = dict(network.named_parameters())
        assert {f"{prefix}.{name}" for name in parameters} == {key for key in trained if key.startswith(f"{prefix}.")}
        for name, parameter in parameters.items():
            assert torch.equal(parameter.detach(), trained[f"{prefix}.{name}"]), f"{prefix}.{name} differs from gat-tui run's"
    # and the run did train: the weights moved from their initial values
    assert any(not torch.equal(initial[name], value) for name, value in model.state_dict().items())
