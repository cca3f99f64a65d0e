"""What every training method provides to the engine, and the loss pieces they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as functional
from torch import nn

from gat_tui.architectures import Architecture
from gat_tui.attacks import Attack, Perturbed

Batch = tuple[torch.Tensor, torch.Tensor]
DrawBatch = Callable[[], Batch]


@dataclass
class StepResult:
    """One training step's figures as 0-dim tensors left on the device (no host sync).

    Its fields are `gat_tui.events.STEP_FIGURES`, by the same names (a test holds them equal).
    """

    loss_f: torch.Tensor | None = None
    loss_g: torch.Tensor | None = None
    pert_l2: torch.Tensor | None = None
    pert_linf: torch.Tensor | None = None
    train_acc_clean: torch.Tensor | None = None  # fraction of the minibatch classified correctly
    train_acc_adv: torch.Tensor | None = None  # the same on its perturbed copy


class TrainingMethod(ABC):
    """A training strategy: owns its networks' optimisers and runs one step at a time.

    The engine calls `train_step` with the epoch's minibatch and a `draw_batch` that yields
    fresh minibatches from an independent shuffle of the training set (GAT's generator steps).
    """

    # the validation figure that picks the best checkpoint, and whether lower is better
    selection_metric: ClassVar[str] = "val_acc_clean"
    selection_lower_is_better: ClassVar[bool] = False
    # stop after this many epochs without a better selection figure (None: train every epoch)
    patience: int | None = None
    # what the networks are, for the checkpoints (set by `build_method`): their specs and the classifier's dropout
    architecture: Architecture = Architecture()
    dropout: float = 0.0

    def __init__(self, classifier: nn.Module, generator: nn.Module | None) -> None:
        self.classifier = classifier
        self.generator = generator

    @abstractmethod
    def train_step(self, images: torch.Tensor, labels: torch.Tensor, draw_batch: DrawBatch) -> StepResult:
        """Update the networks on one minibatch; pixels in [0, 1]."""

    def perturb(self, images: torch.Tensor, labels: torch.Tensor) -> Perturbed | None:
        """The method's own perturbation for evaluation, or None for methods that train without one."""
        return None

    def validation_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
        """Summed loss over a validation batch for methods that select on a loss, else None."""
        return None

    def networks(self) -> dict[str, nn.Module]:
        found: dict[str, nn.Module] = {"classifier": self.classifier}
        if self.generator is not None:
            found["generator"] = self.generator
        return found

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimisers by the name of the network they train (for checkpoints)."""

    def train(self) -> None:
        """Put the trained networks into training mode."""
        for network in self.networks().values():
            network.train()

    def eval(self) -> None:
        for network in self.networks().values():
            network.eval()


class MixedLoss(NamedTuple):
    loss: torch.Tensor
    acc_clean: torch.Tensor
    acc_adv: torch.Tensor


def batch_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction correct as a 0-dim tensor on the device (no host sync)."""
    return (logits.detach().argmax(dim=1) == labels).float().mean()


def mixed_loss(
    classifier: nn.Module,
    clean: torch.Tensor,
    adversarial: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    concatenate: bool | None = None,
) -> MixedLoss:
    """α·J(x, y) + (1 − α)·J(x_adv, y), Eq. 2, 4 and 10.

    `concatenate` picks one forward pass over both halves (True) or two passes (False); None,
    the default, concatenates on CUDA only. Both give the same loss for a classifier without
    batch statistics (the All-Conv F has none); with dropout on, their masks are drawn apart.
    """
    if concatenate is None:
        concatenate = clean.device.type == "cuda"
    if concatenate:
        # one pass over both halves keeps the GPU busier than two half-size passes
        clean_logits, adversarial_logits = classifier(torch.cat([clean, adversarial])).split(clean.shape[0])
    else:
        # on a CPU a double batch gains nothing, and its activations outgrow glibc's mmap
        # threshold (32 MB), so they would be page-faulted afresh every step
        clean_logits, adversarial_logits = classifier(clean), classifier(adversarial)
    loss = alpha * functional.cross_entropy(clean_logits, labels) + (1.0 - alpha) * functional.cross_entropy(
        adversarial_logits, labels
    )
    return MixedLoss(loss, batch_accuracy(clean_logits, labels), batch_accuracy(adversarial_logits, labels))


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, parameters: list[nn.Parameter]) -> None:
    """Backpropagate into `parameters` only (autograd skips the rest) and take one step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward(inputs=parameters)
    optimizer.step()


def step_norms(perturbed: Perturbed) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch means of the per-sample L2 and L-inf norms, detached, still on the device."""
    return perturbed.l2().mean().detach(), perturbed.linf().mean().detach()


class AttackTraining(TrainingMethod):
    """Training on one attack's examples of the current classifier, mixed with the clean ones by α
    (α·J(x, y) + (1 − α)·J(x_adv, y), Eq. 2's form): the fast-gradient, random-perturbation and PGD
    methods differ only in the attack they are given."""

    def __init__(self, classifier: nn.Module, lr_f: float, alpha: float, eps: float, clip: bool, attack: Attack) -> None:
        super().__init__(classifier, generator=None)
        self.classifier_optimizer = torch.optim.Adam(classifier.parameters(), lr=lr_f)
        self.alpha, self.eps, self.clip = alpha, eps, clip
        self.attack = attack

    def perturb(self, images: torch.Tensor, labels: torch.Tensor) -> Perturbed:
        return self.attack.perturb(self.classifier, images, labels, self.eps)

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, draw_batch: DrawBatch) -> StepResult:
        perturbed = self.perturb(images, labels)
        mixed = mixed_loss(self.classifier, images, perturbed.adversarial.detach(), labels, self.alpha)
        optimizer_step(self.classifier_optimizer, mixed.loss, list(self.classifier.parameters()))
        pert_l2, pert_linf = step_norms(perturbed)
        return StepResult(mixed.loss.detach(), None, pert_l2, pert_linf, mixed.acc_clean, mixed.acc_adv)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"classifier": self.classifier_optimizer}
