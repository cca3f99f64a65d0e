"""One sweep evaluation: the `gat-tui eval` figures of one run's best checkpoint, as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gat_tui.attack_eval import evaluate_attacks, load_eval_images, load_models, plan_attacks, saved_config
from gat_tui.checkpoints import read_checkpoint
from gat_tui.device import select_device
from gat_tui.sweep.plan import Evaluation


def evaluate_run(checkpoint: Path, source: Path | None, evaluation: Evaluation, data_dir: Path | None, out: Path) -> None:
    device = select_device("auto")
    config = saved_config(checkpoint)
    _, metadata = read_checkpoint(checkpoint)
    generator = checkpoint if "generator" in metadata.get("networks", "").split(",") else None
    target, source_model, _, generator_model = load_models(checkpoint, source, generator, device)
    plans = plan_attacks([evaluation.attack], evaluation.eps, config.perturbation.clip, generator_model, 10, None)
    images, labels = load_eval_images(config, evaluation.split, evaluation.limit, data_dir, device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)  # random attacks draw the same noise on every run
        results = evaluate_attacks(
            target, source_model, str(source) if source else None, images, labels, plans,
            config.data.eval_batch_size, evaluation.match_power,
        )
    record = {
        "checkpoint": str(checkpoint),
        "split": evaluation.split,
        "n": int(images.shape[0]),
        "results": [row.to_json() for row in results],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(out)
