"""Reading TensorBoard event files back in tests, and the tiny run they are compared on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import tiny_gat_config

from gat_tui.config import CheckpointConfig, LoggingConfig, RunConfig
from gat_tui.runs.tensorboard import SCALAR_TAGS

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def tiny(epochs: int = 2, tensorboard: bool = True) -> RunConfig:
    return tiny_gat_config(
        "tiny_tb", epochs=epochs, panel_size=4, data={"train_size": 112, "val_size": 32, "test_size": 32, "eval_batch_size": 32},
        checkpoint=CheckpointConfig(every_steps=3), logging=LoggingConfig(tensorboard=tensorboard),
    )


def read_events(folder: Path) -> Any:
    accumulator = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0, event_accumulator.TENSORS: 0})
    accumulator.Reload()
    return accumulator


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    accumulator = read_events(folder)
    return {tag: [(event.step, event.value) for event in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def expected_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """metrics.jsonl as TensorBoard should show it: each figure's (step, value) under its tag."""
    expected: dict[str, list[tuple[int, float]]] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        for name, tag in SCALAR_TAGS.items():
            if record.get(name) is not None:
                expected.setdefault(tag, []).append((record["step"], record[name]))
    return expected


def assert_same(actual: dict[str, list[tuple[int, float]]], expected: dict[str, list[tuple[int, float]]]) -> None:
    training = {tag: values for tag, values in actual.items() if not tag.startswith("test/")}
    assert training.keys() == expected.keys()
    for tag, values in expected.items():
        assert [step for step, _ in training[tag]] == [step for step, _ in values], tag
        assert [value for _, value in training[tag]] == pytest.approx([value for _, value in values], rel=1e-6), tag  # stored as float32
