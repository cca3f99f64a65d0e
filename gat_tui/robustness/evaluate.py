"""Attack evaluation of saved models: accuracy and applied perturbation norms per attack and ε.

Direct attacks (Fig. 3) perturb with the evaluated model's own gradients; indirect attacks
(Fig. 4) with a `source` model's. The data is loaded once and held on the device; each
attack runs over it in batches, and figures are read back once per (attack, ε).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from gat_tui.attacks import ATTACKS, FGML2, FGSM, Attack, GATAttack
from gat_tui.checkpoints import Checkpoint
from gat_tui.config import RunConfig
from gat_tui.data import load_splits, to_model_input


class EvalError(ValueError):
    """An evaluation that cannot run as asked; the message names the option or file at fault."""


@dataclass(frozen=True)
class AttackResult:
    """One row: accuracy in [0, 1]; mean per-image norms of the perturbation actually applied."""

    attack: str
    eps: float | None
    accuracy: float
    pert_l2: float
    pert_linf: float
    source: str | None
    matched_to: str | None = None

    def to_json(self) -> dict[str, object]:
        record = asdict(self)
        if record["matched_to"] is None:
            del record["matched_to"]
        return record


@dataclass(frozen=True)
class AttackPlan:
    attack: Attack
    eps_values: tuple[float, ...]


Progress = Callable[[str, int, int], None]  # (what, done, total) in images


def load_eval_images(
    config: RunConfig, split: str, limit: int, data_dir: Path | None, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    splits = load_splits(config.data, data_dir)
    if split == "val":
        images, labels = splits.val_images, splits.val_labels
    elif split == "test":
        images, labels = splits.test_images, splits.test_labels
    else:
        raise EvalError(f"--split {split!r}: expected val or test")
    if limit > 0:
        images, labels = images[:limit], labels[:limit]
    return images.to(device), labels.to(device)


def plan_attacks(
    names: Sequence[str],
    eps_values: Sequence[float],
    clip: bool,
    generator: nn.Module | None,
    pgd_steps: int,
    pgd_step_size: float | None,
) -> list[AttackPlan]:
    plans = []
    for name in names:
        if name not in ATTACKS:
            raise EvalError(f"--attack {name!r}: unknown; expected one of {', '.join(ATTACKS)}")
        cls = ATTACKS[name]
        if cls is GATAttack:
            if generator is None:
                raise EvalError("--attack gat needs a generator: --generator CHECKPOINT of a gat or gat_attack run")
            plans.append(AttackPlan(GATAttack(generator, clip), (0.0,)))
            continue
        if name.startswith("pgd"):
            attack: Attack = cls(clip=clip, steps=pgd_steps, step_size=pgd_step_size)  # type: ignore[call-arg]
        else:
            attack = cls(clip=clip)
        plans.append(AttackPlan(attack, tuple(eps_values) or cls.default_eps))
    return plans


def run_attack(
    attack: Attack,
    eps: float,
    target: nn.Module,
    source: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[float, float, float]:
    """(accuracy of target, mean L2, mean L-inf of the applied perturbation)."""
    sums = torch.zeros(3, device=images.device)
    for start in range(0, images.shape[0], batch_size):
        x = to_model_input(images[start : start + batch_size], channels_last=False)
        y = labels[start : start + batch_size]
        perturbed = attack(source, x, y, eps)
        with torch.no_grad():
            correct = (target(perturbed.adversarial).argmax(dim=1) == y).sum()
            sums += torch.stack([correct.float(), perturbed.l2().sum(), perturbed.linf().sum()])
        if on_batch is not None:
            on_batch(x.shape[0])
    accuracy, l2, linf = (sums / images.shape[0]).tolist()  # one host sync per (attack, eps)
    return accuracy, l2, linf


def clean_accuracy(target: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> float:
    correct = torch.zeros((), device=images.device)
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            x = to_model_input(images[start : start + batch_size], channels_last=False)
            correct += (target(x).argmax(dim=1) == labels[start : start + batch_size]).sum()
    return correct.item() / images.shape[0]


def evaluate_attacks(
    target: nn.Module,
    source: nn.Module,
    source_name: str | None,
    images: torch.Tensor,
    labels: torch.Tensor,
    plans: Sequence[AttackPlan],
    batch_size: int,
    match_power: bool = False,
    progress: Progress | None = None,
) -> list[AttackResult]:
    """Every planned attack at every ε; with `match_power`, FGM-L2 and FGSM at the GAT attacker's
    mean L2 power (Fig. 2), FGSM's ε chosen so that its unclipped L2 norm equals that power."""
    target.eval()
    source.eval()
    count = int(images.shape[0])
    results = [AttackResult("clean", 0.0, clean_accuracy(target, images, labels, batch_size), 0.0, 0.0, source_name)]
    runs: list[tuple[Attack, float, str | None]] = [(p.attack, eps, None) for p in plans for eps in p.eps_values]
    index = 0
    while index < len(runs):
        attack, eps, matched_to = runs[index]
        index += 1
        label = attack.name if attack.norm is None else f"{attack.name} ε={eps:g}"
        done = 0

        def advance(images_done: int, label: str = label) -> None:
            nonlocal done
            done += images_done
            if progress is not None:
                progress(label, done, count)

        accuracy, l2, linf = run_attack(attack, eps, target, source, images, labels, batch_size, advance)
        results.append(
            AttackResult(attack.name, None if attack.norm is None else eps, accuracy, l2, linf, source_name, matched_to)
        )
        if match_power and isinstance(attack, GATAttack):
            values_per_image = math.prod(images.shape[1:])
            runs.append((FGML2(attack.clip), l2, "gat"))
            runs.append((FGSM(attack.clip), l2 / math.sqrt(values_per_image), "gat"))
    return results


def load_models(
    target: Checkpoint, source: Checkpoint | None, generator: Checkpoint | None, device: torch.device
) -> tuple[nn.Module, nn.Module, nn.Module | None]:
    """Target classifier, source classifier (the target itself for a direct attack), generator."""
    target_model = target.classifier(device)
    source_model = target_model
    if source is not None:
        source_model = source.classifier(device)
        theirs, ours = source.shape, target.shape
        if (theirs.num_classes, theirs.channels) != (ours.num_classes, ours.channels):
            raise EvalError(
                f"--source {source.path}: a model of {theirs.num_classes} classes cannot attack one of "
                f"{ours.num_classes} ({target.path})"
            )
    generator_model = generator.generator(device) if generator is not None else None
    return target_model, source_model, generator_model


@dataclass(frozen=True)
class CheckpointEvaluation:
    results: list[AttackResult]
    count: int
    device: torch.device


def evaluate_checkpoint(
    checkpoint: Path,
    attacks: Sequence[str] = (),
    eps_values: Sequence[float] = (),
    source: Path | None = None,
    generator: Path | None = None,
    split: str = "test",
    limit: int = 0,
    data_dir: Path | None = None,
    device_name: str = "auto",
    match_power: bool = False,
    pgd_steps: int = 10,
    pgd_step_size: float | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> CheckpointEvaluation:
    """Everything `gat-tui eval` does short of printing: load models and data once, attack.

    With no `attacks`: FGSM, FGM-L2 and random, plus the GAT attacker when a generator is
    given or the checkpoint holds one (its own is used by default).
    """
    from gat_tui.device import select_device

    device = select_device(device_name)
    target_checkpoint = Checkpoint.open(checkpoint)  # each file is read once
    config = target_checkpoint.config()
    source_checkpoint = Checkpoint.open(source) if source is not None else None
    if generator is not None:
        generator_checkpoint: Checkpoint | None = Checkpoint.open(generator)
    else:
        generator_checkpoint = target_checkpoint if target_checkpoint.has_generator else None
    target, source_model, generator_model = load_models(target_checkpoint, source_checkpoint, generator_checkpoint, device)
    names = list(attacks) or ["fgsm", "fgm-l2", "random"] + (["gat"] if generator_model is not None else [])
    plans = plan_attacks(names, eps_values, config.perturbation.clip, generator_model, pgd_steps, pgd_step_size)
    images, labels = load_eval_images(config, split, limit, data_dir, device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)  # random attacks and PGD starts draw the same noise every time
        results = evaluate_attacks(
            target, source_model, str(source) if source else None, images, labels, plans,
            batch_size or config.data.eval_batch_size, match_power, progress,
        )
    return CheckpointEvaluation(results, int(images.shape[0]), device)
