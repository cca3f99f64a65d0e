"""Training methods of the paper's Table 2 and Section 4.2; `build_method` picks one by name.

A new method is one new module with a `TrainingMethod` subclass and one entry below.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gat_tui.config import RunConfig
from gat_tui.methods.base import DrawBatch, StepResult, TrainingMethod
from gat_tui.methods.fast_gradient import FastGradientTraining
from gat_tui.methods.gat import GenerativeAdversarialTraining
from gat_tui.methods.gat_attack import GatAttackerTraining
from gat_tui.methods.random_noise import RandomPerturbationTraining
from gat_tui.methods.standard import StandardTraining
from gat_tui.models import AllConvClassifier, PerturbationGenerator

__all__ = ["DrawBatch", "StepResult", "TrainingMethod", "build_method", "MethodSetupError"]


class MethodSetupError(ValueError):
    """The method cannot start with this data, e.g. an attacked classifier of another class count."""


def build_method(config: RunConfig, num_classes: int, channels: int, device: torch.device) -> TrainingMethod:
    """Create the networks (Xavier init from the current torch seed) and the method on `device`."""
    train, perturbation, gat = config.train, config.perturbation, config.gat
    if config.method == "gat_attack":
        from gat_tui.checkpoints import Checkpoint

        attacked = Checkpoint.open(Path(config.attack.classifier).expanduser())
        classifier, shape = attacked.classifier(device), attacked.shape
        if (shape.num_classes, shape.channels) != (num_classes, channels):
            raise MethodSetupError(
                f"attack.classifier {config.attack.classifier}: trained for {shape.num_classes} classes of "
                f"{shape.channels}-channel images, but data '{config.data.dataset}' has {num_classes} of {channels}"
            )
        generator = PerturbationGenerator(channels).to(device)
        return GatAttackerTraining(classifier, generator, gat.lr_g, gat.c_g, perturbation.clip, config.attack.patience)

    classifier = AllConvClassifier(num_classes, channels, config.model.dropout).to(device)
    if config.method in ("baseline", "dropout"):
        return StandardTraining(classifier, train.lr_f)
    if config.method == "random":
        return RandomPerturbationTraining(classifier, train.lr_f, train.alpha, perturbation.eps, perturbation.clip)
    if config.method in ("fg_linf", "fg_l2"):
        norm = "linf" if config.method == "fg_linf" else "l2"
        return FastGradientTraining(classifier, train.lr_f, train.alpha, perturbation.eps, perturbation.clip, norm)
    if config.method in ("gat", "dropout_gat"):
        generator = PerturbationGenerator(channels).to(device)
        return GenerativeAdversarialTraining(
            classifier, generator, train.lr_f, gat.lr_g, train.alpha, gat.c_g, gat.k, perturbation.clip
        )
    raise MethodSetupError(f"unknown method {config.method!r}")
