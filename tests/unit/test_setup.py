from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import torch
from conftest import tiny_gat_config
from torch import nn

from gat_tui.training.setup import _forward_failure, prepare


def test_cpu_training_runs_its_networks_and_batches_channels_last() -> None:
    # oneDNN's NHWC convolutions make every method's CPU step 12-17% faster (benchmarks/throughput.py)
    setup = prepare(tiny_gat_config("nhwc", panel_size=0, data={"train_size": 32, "val_size": 16, "test_size": 16}), None)
    assert setup.device.type == "cpu" and setup.channels_last
    for name, network in setup.method.networks().items():
        for parameter in network.parameters():
            if parameter.dim() == 4:
                assert parameter.is_contiguous(memory_format=torch.channels_last), name
    images, _ = setup.cursors["train"].next_batch()
    assert images.is_contiguous(memory_format=torch.channels_last)


def test_a_network_that_needs_the_default_layout_trains_in_it_and_the_user_is_told() -> None:
    config = tiny_gat_config("view", panel_size=0, data={"train_size": 32, "val_size": 16, "test_size": 16})
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, classifier="support_factory:view_classifier"))
    setup = prepare(config, None)
    assert not setup.channels_last
    assert setup.layout_note is not None and "classifier network raised" in setup.layout_note and "view" in setup.layout_note
    for network in setup.method.networks().values():
        for parameter in network.parameters():
            assert parameter.is_contiguous()
    images, labels = setup.cursors["train"].next_batch()
    assert images.is_contiguous()
    setup.method.train_step(images, labels, setup.cursors["generator"].next_batch)  # trains: no layout error


def test_the_layout_probe_changes_no_random_number_running_statistic_or_weight() -> None:
    class Noisy(nn.Module):
        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return images + torch.rand_like(images)  # draws in any mode

    network = nn.Sequential(Noisy(), nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5)).train()
    network.to(memory_format=torch.channels_last)
    before = {name: value.clone() for name, value in network.state_dict().items()}
    torch.manual_seed(0)
    stream = torch.random.get_rng_state()
    probed = SimpleNamespace(networks=lambda: {"classifier": network})
    assert _forward_failure(probed, (3, 8, 8), torch.device("cpu"), torch.channels_last) is None  # type: ignore[arg-type]
    assert torch.equal(torch.random.get_rng_state(), stream)
    after = network.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)  # BatchNorm's running mean and count too
