"""The start-up allocator setting changes where memory comes from, never a trained weight.

mallopt is process-global, so each setting trains in a process of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gat_tui.allocator import USER_SETTINGS, glibc_mallopt

# four GAT steps at batch 96 on 32x32: the classifier's activations (96 channels) are ~38 MB,
# above glibc's largest default mmap threshold (32 MB), so the default process maps them afresh
TRAIN = r"""
import hashlib, json, resource
import torch
from gat_tui.allocator import tune_allocator

setting = tune_allocator()  # first, as the command line does
from gat_tui.config import DataConfig, GatConfig, RunConfig
from gat_tui.methods import build_method
from gat_tui.training.batches import ShuffledBatches

torch.set_num_threads(1)
config = RunConfig(method="gat", seed=3, data=DataConfig(dataset="synthetic", batch_size=96, num_classes=10), gat=GatConfig(lr_g=1e-3))
generator = torch.Generator().manual_seed(3)
images = torch.randint(0, 256, (192, 3, 32, 32), dtype=torch.uint8, generator=generator)
labels = torch.randint(0, 10, (192,), generator=generator)
torch.manual_seed(3)
method = build_method(config, 10, (3, 32, 32), torch.device("cpu"))
method.train()
batches = ShuffledBatches(images, labels, 96, 3, False).endless()
others = ShuffledBatches(images, labels, 96, 4, False).endless()
faults = []
for step in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    method.train_step(*next(batches), lambda: next(others))
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
digest = hashlib.sha256()
for name, network in sorted(method.networks().items()):
    for key, tensor in sorted(network.state_dict().items()):
        digest.update(key.encode()); digest.update(tensor.detach().contiguous().numpy().tobytes())
print(json.dumps({"applied": setting.applied, "reason": setting.reason, "digest": digest.hexdigest(), "faults": faults}))
"""


def train_in_a_process(mode: str) -> dict[str, object]:
    environ = {name: value for name, value in os.environ.items() if name not in USER_SETTINGS}
    environ["GAT_TUI_MALLOC"] = mode
    result = subprocess.run([sys.executable, "-c", TRAIN], capture_output=True, text=True, timeout=600, env=environ)
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


@pytest.mark.slow
@pytest.mark.skipif(glibc_mallopt() is None, reason="glibc's mallopt is needed (Linux with glibc)")
def test_weights_are_bit_identical_with_and_without_the_tuned_allocator() -> None:
    tuned, default = train_in_a_process("tuned"), train_in_a_process("default")
    assert tuned["applied"] is True, tuned["reason"]
    assert default["applied"] is False
    assert tuned["digest"] == default["digest"]
    # the setting took effect: once the heap has grown to its peak (the first two steps), the
    # tuned process reuses its blocks, where the default one maps the large activations afresh
    # (up to ~5*10^4 minor page faults a step). How many a given default step takes varies with
    # glibc's sliding mmap threshold (one CI run saw 4,576 then 36,834), so the default steps
    # after the first are counted together
    tuned_faults, default_faults = tuned["faults"], default["faults"]
    assert isinstance(tuned_faults, list) and isinstance(default_faults, list)
    refaulted = sum(default_faults[1:])
    assert refaulted > 15000, (tuned_faults, default_faults)
    assert tuned_faults[-1] * 5 < refaulted, (tuned_faults, default_faults)
