"""Kill -9 a headless training at random moments, resume it, and compare with a run left alone.

    python benchmarks/kill_resume.py --kills 10 --seed 0

Trains a small synthetic preset once without interruption, then again in a fresh folder,
SIGKILLing the `gat-tui run` (and then each `gat-tui resume`) at a random moment until it
finishes, `--kills` times in all. Prints, per kill, when it struck (the last checkpoint's step
and whether a write was under way), and at the end how many kills were resumed and whether
`last`, `best` and the test figures are bit-identical to the uninterrupted run's. On the CPU
they must be: the checkpoint holds the whole training state.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from gat_tui.config import (
    CheckpointConfig,
    DataConfig,
    EvalConfig,
    GatConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    config_to_toml,
)

SCRIPT = Path(sys.executable).parent / "gat-tui"
# seconds from starting `gat-tui` to its first training step on a small machine (imports, data)
STARTUP_SECONDS = 3.0
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "gat_tui"]


def preset(folder: Path) -> Path:
    config = RunConfig(
        name="killed",
        method="dropout_gat",
        device="cpu",
        data=DataConfig(dataset="synthetic", image_size=8, num_classes=3, train_size=320, val_size=32, test_size=32, batch_size=16),
        model=ModelConfig(dropout=0.3),
        train=TrainConfig(epochs=6, log_every=2),
        gat=GatConfig(lr_g=1e-3, k=2),
        eval=EvalConfig(panel_size=0),
        checkpoint=CheckpointConfig(every_steps=3, keep_epochs=True),
    )
    path = folder / "killed.toml"
    path.write_text(config_to_toml(config))
    return path


def weights(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path)).items() if k.startswith(("classifier.", "generator.", "optimizer."))}


def identical(left: Path, right: Path) -> bool:
    a, b = weights(left), weights(right)
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    chance = random.Random(args.seed)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        path = preset(root)
        started = time.perf_counter()
        subprocess.run(COMMAND + ["run", str(path), "--headless", "--out", str(root / "straight")], env=env, check=True, capture_output=True)
        straight_seconds = time.perf_counter() - started
        print(f"uninterrupted run: {straight_seconds:.1f} s")
        summary = json.loads((root / "straight/summary.json").read_text())
        total_steps = summary["step"]
        # the process's start (imports, data) is what the engine's own clock leaves out: on a loaded
        # machine it is far above STARTUP_SECONDS, and kills timed from that floor all struck during start-up
        startup = max(STARTUP_SECONDS, straight_seconds - summary["wall_seconds"])
        print(f"start-up (process start to training): {startup:.1f} s")
        kills, trials, all_same = 0, 0, True
        while kills < args.kills:
            trials += 1
            killed = root / f"killed-{trials}"
            kills += kill_until_done(path, killed, args.kills - kills, straight_seconds, startup, total_steps, chance, env)
            same = compare(root / "straight", killed)
            all_same = all_same and all(same.values())
            print(f"trial {trials}: " + ", ".join(f"{name} identical: {value}" for name, value in same.items()))
        print(f"kills: {kills} in {trials} runs, every run resumed to the end, all identical to the uninterrupted run: {all_same}")


def kill_until_done(
    path: Path, killed: Path, budget: int, straight_seconds: float, startup: float, total_steps: int, chance: random.Random,
    env: dict[str, str],
) -> int:
    """Start the run, kill it at random moments (at most `budget` times), resume until it finishes."""
    command = COMMAND + ["run", str(path), "--headless", "--out", str(killed)]
    last = killed / "checkpoints/last.safetensors"
    kills = 0
    while True:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        done_steps = step_of(last) or 0
        remaining = (straight_seconds - startup) * (1 - done_steps / total_steps)
        if done_steps >= total_steps:
            budget = kills  # only the test evaluation is left: let it finish
        if kills < budget:
            time.sleep(startup + chance.uniform(0.0, max(0.5, remaining)))
        if process.poll() is None and kills < budget:
            writing = any(killed.glob("checkpoints/.*.tmp"))
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            print(f"  kill: last checkpoint at step {step_of(last)} of {total_steps}{' (a write was under way)' if writing else ''}")
            if _finished(killed):  # the kill struck after the summary: a finished run is not resumed (it would be refused)
                return kills
            command = COMMAND + ["resume", str(killed), "--headless"] if last.exists() else COMMAND + ["run", str(path), "--headless", "--out", str(killed)]
            continue
        if process.wait() != 0:
            raise SystemExit(f"{killed}: the resumed run failed with exit code {process.returncode}")
        return kills


def _finished(run: Path) -> bool:
    try:
        return json.loads((run / "summary.json").read_text()).get("status") == "finished"
    except (OSError, ValueError):
        return False


def compare(straight: Path, killed: Path) -> dict[str, bool]:
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in (straight, killed)]
    same = {name: identical(straight / "checkpoints" / name, killed / "checkpoints" / name) for name in ("last.safetensors", "best.safetensors")}
    same["test figures"] = all(summaries[0][key] == summaries[1][key] for key in ("best_epoch", "test_acc_clean", "test_acc_adv", "test_acc_fgm_l2"))
    return same


def step_of(path: Path) -> int | None:
    if not path.exists():
        return None
    from gat_tui.checkpoints import read_checkpoint_metadata

    return int(read_checkpoint_metadata(path)["step"])


if __name__ == "__main__":
    main()
