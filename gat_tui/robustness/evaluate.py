"""Attack evaluation of saved models: accuracy and applied perturbation norms per attack and ε.

Direct attacks (Fig. 3) perturb with the evaluated model's own gradients; indirect attacks
(Fig. 4) with a `source` model's. The data is loaded once and held on the device; each
attack runs over it in batches, and figures are read back once per (attack, ε).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from gat_tui.atomic import describe_os_error
from gat_tui.attacks import AUTOATTACKS, FGML2, FGSM, Attack, AutoAttack, GATAttack
from gat_tui.checkpoints import Checkpoint
from gat_tui.config import RunConfig
from gat_tui.data import load_splits, to_model_input
from gat_tui.data.splits import data_fingerprint
from gat_tui.robustness.options import EvalOptions, OnProgress
from gat_tui.robustness.plan import AttackPlan, AttackSpec, EvalError, plan_attacks
from gat_tui.robustness.resume import (
    ResumeSpec,
    file_identity,
    load_state,
    save_state,
    state_folder,
    state_path,
)
from gat_tui.robustness.settings import attack_settings


@dataclass(frozen=True)
class StageResult:
    """AutoAttack's robust accuracy after one of its stages (cumulative: every earlier stage too)."""

    attack: str
    accuracy: float


@dataclass(frozen=True)
class AttackResult:
    """One row: accuracy in [0, 1]; mean per-image norms of the perturbation actually applied.

    AutoAttack and APGD rows also carry their `norm`, the number of images `n`, and AutoAttack's
    rows its `version` and `stages`: the accuracy after each stage of its cascade. These fields
    are left out of the JSON of other rows, as `matched_to` is of rows not added by --match-power.
    """

    attack: str
    eps: float | None
    accuracy: float
    pert_l2: float
    pert_linf: float
    source: str | None
    matched_to: str | None = None
    norm: str | None = None
    n: int | None = None
    version: str | None = None
    stages: tuple[StageResult, ...] | None = None

    def to_json(self) -> dict[str, object]:
        record = asdict(self)
        for key in ("matched_to", "norm", "n", "version", "stages"):
            if record[key] is None:
                del record[key]
        if "stages" in record:
            record["stages"] = [asdict(stage) for stage in self.stages or ()]
        return record


@dataclass(frozen=True)
class EvalData:
    """The images attacked (uint8, on the device), their labels, and the data set's classes and image shape."""

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    image_shape: tuple[int, int, int]


def load_eval_data(config: RunConfig, options: EvalOptions, device: torch.device) -> EvalData:
    """The images of `options.split` (its first `options.limit`) of `config`'s data, on `device`."""
    splits = load_splits(config.data, options.data_dir)
    if options.split == "val":
        images, labels = splits.val_images, splits.val_labels
    else:
        images, labels = splits.test_images, splits.test_labels
    if options.limit > 0:
        images, labels = images[: options.limit], labels[: options.limit]
    return EvalData(images.to(device), labels.to(device), splits.num_classes, splits.image_shape)


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


def run_autoattack(
    attack: AutoAttack,
    eps: float,
    target: nn.Module,
    source: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
    resume: ResumeSpec | None = None,
) -> tuple[float, float, float, tuple[StageResult, ...]]:
    """As `run_attack`, each batch through AutoAttack's cascade; also the target's accuracy after each stage.

    With `resume`, the sums are saved after each batch (one host sync per batch, small beside an
    AutoAttack batch) and a saved state of the same evaluation is taken up at its next batch.
    """
    count = int(images.shape[0])
    sums = torch.zeros(3 + len(attack.stage_names), device=images.device)
    first = 0
    path = key = None
    if resume is not None:
        key = resume.identity | {
            "attack": attack.name, "version": attack.version, "stages": list(attack.stage_names), "norm": attack.norm,
            "eps": eps, "seed": attack.seed, "images": count, "batch_size": batch_size,
            "data": data_fingerprint(images, labels),
        }
        path = state_path(resume.folder, key)
        saved, notice = load_state(path, key, int(sums.numel()))
        if notice is not None:
            resume.tell(notice)
        if saved is not None and 0 < saved.start < count:
            first = saved.start
            sums = torch.tensor(saved.sums, dtype=sums.dtype, device=sums.device)
            resume.tell(f"resuming AutoAttack from image {first} of {count} ({path})")
            if on_batch is not None:
                on_batch(first)
    for start in range(first, count, batch_size):
        x = to_model_input(images[start : start + batch_size], channels_last=False)
        y = labels[start : start + batch_size]
        stage_correct = []
        perturbed = None
        for stage, perturbed in attack.stages(source, x, y, eps):
            with torch.no_grad():
                stage_correct.append((target(perturbed.adversarial).argmax(dim=1) == y).sum().float())
            if on_stage is not None:
                on_stage(stage)
        assert perturbed is not None  # every version has a stage
        sums += torch.stack([stage_correct[-1], perturbed.l2().sum(), perturbed.linf().sum(), *stage_correct])
        if path is not None and key is not None and start + batch_size < count:
            try:
                save_state(path, key, start + batch_size, sums.tolist())
            except OSError as error:
                assert resume is not None
                resume.tell(f"AutoAttack cannot be resumed: {describe_os_error(error, 'cannot write')}")
                path = None
        if on_batch is not None:
            on_batch(x.shape[0])
    if path is not None:
        path.unlink(missing_ok=True)  # done: a later run starts over
    figures = (sums / count).tolist()  # one host sync per (attack, eps)
    stages = tuple(StageResult(name, value) for name, value in zip(attack.stage_names, figures[3:]))
    return figures[0], figures[1], figures[2], stages


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
    progress: OnProgress | None = None,
    resume: ResumeSpec | None = None,
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

        def stage_done(stage: str, label: str = label, advance: Callable[[int, str], None] = advance) -> None:
            advance(0, f"{label}, {stage} done")  # the bar moves per batch, the label per stage

        if isinstance(attack, AutoAttack):
            accuracy, l2, linf, stages = run_autoattack(
                attack, eps, target, source, images, labels, batch_size, advance, stage_done, resume
            )
            results.append(
                AttackResult(
                    attack.name, eps, accuracy, l2, linf, source_name, None, attack.norm, count, attack.version, stages
                )
            )
            continue
        accuracy, l2, linf = run_attack(attack, eps, target, source, images, labels, batch_size, advance)
        in_family = attack.name in AUTOATTACKS  # APGD alone: its norm and image count, as AutoAttack's rows
        results.append(
            AttackResult(
                attack.name, None if attack.norm is None else eps, accuracy, l2, linf, source_name, matched_to,
                attack.norm if in_family else None, count if in_family else None,
            )
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
    clip: bool = True
    clip_from_checkpoint: bool = True  # False when the caller chose it
    notes: tuple[str, ...] = field(default=())  # pyautoattack's check warnings, each once
    settings: dict[str, dict[str, object]] = field(default_factory=dict)  # attack -> steps, step size, version, ...


@dataclass(frozen=True)
class LoadedEvaluation:
    """What either evaluation path has loaded and planned before the first attack."""

    target: nn.Module
    source: nn.Module  # the target itself for a direct attack
    data: EvalData
    plans: tuple[AttackPlan, ...]
    batch_size: int  # the options' or the data config's eval_batch_size
    device: torch.device  # as selected ("cuda"), which the images' ("cuda:0") may name otherwise
    clip: bool
    clip_from_checkpoint: bool
    resume: ResumeSpec | None


def evaluate_checkpoint(checkpoint: Path, options: EvalOptions) -> CheckpointEvaluation:
    """Everything `gat-tui eval` does short of printing: load models and data once, attack.

    The GAT attacker's generator is `options.generator`, or the checkpoint's own when it holds
    one; `clip` defaults to the checkpoint's training config, `perturbation.clip`.
    """
    from gat_tui.device import select_device

    device = select_device(options.device_name)
    target_checkpoint = Checkpoint.open(checkpoint)  # each file is read once
    config = target_checkpoint.config()
    source_checkpoint = Checkpoint.open(options.source) if options.source is not None else None
    if options.generator is not None:
        generator_checkpoint: Checkpoint | None = Checkpoint.open(options.generator)
    else:
        generator_checkpoint = target_checkpoint if target_checkpoint.has_generator else None
    target, source_model, generator_model = load_models(target_checkpoint, source_checkpoint, generator_checkpoint, device)
    use_clip = config.perturbation.clip if options.clip is None else options.clip
    plans = plan_attacks(
        default_attacks(options.attacks, generator_model), options.eps_values, use_clip, generator_model, options.pgd_steps,
        options.pgd_step_size, options.autoattack, target_checkpoint.shape.num_classes,
    )
    data = load_eval_data(config, options, device)
    resume = None
    if options.resumable:
        identity: dict[str, object] = {"target": file_identity(checkpoint)} | options.resume_identity()
        resume = ResumeSpec(state_folder(checkpoint), identity, options.on_notice)
    loaded = LoadedEvaluation(
        target, source_model, data, tuple(plans), options.batch_size or config.data.eval_batch_size, device,
        use_clip, options.clip is None, resume,
    )
    return attack_all(loaded, options)


def default_attacks(attacks: Sequence[str | AttackSpec], generator: nn.Module | None) -> list[str | AttackSpec]:
    """`attacks`, or FGSM, FGM-L2 and random (+ the GAT attacker with a generator) when none are named."""
    named: list[str | AttackSpec] = list(attacks)
    return named or ["fgsm", "fgm-l2", "random", *(["gat"] if generator is not None else [])]


def attack_all(loaded: LoadedEvaluation, options: EvalOptions) -> CheckpointEvaluation:
    """`evaluate_attacks` on a seeded, forked random stream; also pyautoattack's check warnings, each once."""
    images, labels = loaded.data.images, loaded.data.labels
    device = images.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)  # random attacks and PGD starts draw the same noise every time
        results = evaluate_attacks(
            loaded.target, loaded.source, options.source_name, images, labels, loaded.plans, loaded.batch_size,
            options.match_power, options.progress, loaded.resume,
        )
    notes: list[str] = []
    for plan in loaded.plans:
        for note in getattr(plan.attack, "warnings", ()):
            if note not in notes:
                notes.append(note)
    return CheckpointEvaluation(
        results, int(images.shape[0]), loaded.device, loaded.clip, loaded.clip_from_checkpoint, tuple(notes),
        attack_settings([plan.attack for plan in loaded.plans]),
    )
