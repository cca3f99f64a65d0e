from __future__ import annotations

import torch
from conftest import tiny_gat_config

from gat_tui.training.setup import prepare


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
