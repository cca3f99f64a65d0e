"""`GAT`: the Generative Adversarial Trainer around your own classifier, training loop and optimiser.

A thin layer over the engine's method (`gat_tui.methods.gat`): the losses, the perturbation and
the generator's optimiser step are the engine's own functions, so a loop that calls
`generator_step` k times and then steps your Adam on `classifier_loss` trains the very weights
that `gat-tui run` trains from the same seed and batches (a test replays a run and compares
every parameter bit for bit).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gat_tui.architectures import Architecture, build_generator
from gat_tui.attacks import GATAttack, Perturbed
from gat_tui.methods.base import mixed_loss, optimizer_step
from gat_tui.methods.gat import generator_loss

__all__ = ["GAT"]


class GAT:
    """Generative Adversarial Trainer (Lee, Han and Lee 2017, Algorithm 1) for your classifier.

    A generator G maps Δ = ∂F(x)_y/∂x, the gradient of the classifier's true-class probability,
    to a perturbation G(Δ); G learns to fool the classifier F while keeping the perturbation
    small, and F learns on clean and perturbed images alike. This object owns G and G's Adam
    optimiser; the classifier and its optimiser stay yours.

    Images are float tensors `[N, C, H, W]` with pixels in [0, 1] and labels int64 class
    indices `[N]`. A model that normalises its inputs must do so inside its `forward`
    (`nn.Sequential(Normalize(...), net)`): perturbations, their norms and the clipping are in
    pixel space.

    Args:
        model: the classifier F, returning logits `[N, K]`. It is used in whatever mode you
            keep it in (`model.train()` while training, as `gat-tui run` does), except by
            `perturb`, which attacks in eval mode.
        input_shape: `(C, H, W)` of the images, for the default generator.
        c_g: weight of ‖G(Δ)‖²₂ in G's loss (Eq. 9); larger keeps perturbations smaller.
        lr_g: Adam learning rate of G. The paper's is 1e-6, at which G barely moves in a short
            run; the tuned presets use 1e-3.
        alpha: weight α of the clean loss in F's loss (Eq. 10), in [0, 1].
        clip: keep adversarial images in [0, 1] (the perturbation applied is then the clipped one).
        generator: your own generator (input and output of the images' shape); by default
            Table 1's (six 3×3 convolutions of 48 channels, tanh out), built on the model's device
            from the current torch seed.

    Attributes:
        model: the classifier F, as given.
        generator: the generator G.
        generator_optimizer: G's Adam optimiser (save its `state_dict()` with G's to resume).
    """

    def __init__(
        self,
        model: nn.Module,
        input_shape: tuple[int, int, int],
        *,
        c_g: float = 0.01,
        lr_g: float = 1e-6,
        alpha: float = 0.5,
        clip: bool = True,
        generator: nn.Module | None = None,
    ) -> None:
        _check_shape(input_shape)
        _check_number("c_g", c_g, low=0.0)
        _check_number("lr_g", lr_g, low=0.0, low_exclusive=True)
        _check_number("alpha", alpha, low=0.0, high=1.0)
        self.model = model
        self.input_shape = tuple(input_shape)
        self.c_g, self.lr_g, self.alpha, self.clip = float(c_g), float(lr_g), float(alpha), bool(clip)
        if generator is None:
            generator = build_generator(Architecture(), input_shape).to(_device_of(model))
        self.generator = generator
        self.generator.train()
        self.generator_optimizer = torch.optim.Adam(self.generator.parameters(), lr=self.lr_g)
        self._attack = GATAttack(self.generator, self.clip)

    def generator_step(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One Adam step of G on Eq. 9, L_G = F(x + G(Δ))_y + c_g·‖G(Δ)‖²₂ (batch means).

        Algorithm 1 takes k of these per classifier step, each on a fresh minibatch drawn from
        an independent shuffle of the training set. Only G's weights change (F's `.grad` is left
        as it was). Returns L_G before the step, detached (0-dim, on the device: reading it with
        `.item()` waits for the device).
        """
        loss, _ = generator_loss(self.model, self.generator, images, labels, self.c_g, self.clip)
        optimizer_step(self.generator_optimizer, loss, list(self.generator.parameters()))
        return loss.detach()

    def classifier_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Eq. 10, L_F = α·J(x, y) + (1 − α)·J(x + G(Δ), y), with its graph through the model only.

        J is the mean cross-entropy; the perturbation G(Δ) is data (no graph through G), so
        `loss.backward()` fills the model's `.grad` and your optimiser steps it.
        """
        perturbed = self._attack.perturb(self.model, images, labels)
        return mixed_loss(self.model, images, perturbed.adversarial, labels, self.alpha).loss

    def perturb(self, images: torch.Tensor, labels: torch.Tensor) -> Perturbed:
        """The generator as an attack on the model (the paper's GAT attacker, Section 4.2).

        Both networks run in eval mode, and their modes are restored after. Returns a
        `Perturbed`: `.adversarial` (the images fed to the model) and `.perturbation` (δ as
        applied, after clipping), with `.l2()` and `.linf()` per image.
        """
        return self._attack(self.model, images, labels)


def _device_of(model: nn.Module) -> torch.device:
    """Where the model's weights are (its first parameter or buffer); the CPU for a model without any."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _check_shape(shape: tuple[int, int, int]) -> None:
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 3
        or not all(isinstance(side, int) and not isinstance(side, bool) and side > 0 for side in shape)
    ):
        raise ValueError(f"GAT: input_shape = {shape!r}; expected (channels, height, width) as three positive integers")


def _check_number(name: str, value: float, *, low: float, high: float | None = None, low_exclusive: bool = False) -> None:
    number_like = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number_like or not math.isfinite(value):
        raise ValueError(f"GAT: {name} = {value!r}; expected a finite number")
    if value < low or (low_exclusive and value == low) or (high is not None and value > high):
        bounds = f"> {low}" if low_exclusive else f">= {low}"
        if high is not None:
            bounds += f" and <= {high}"
        raise ValueError(f"GAT: {name} = {value!r} is out of range; expected {bounds}")
