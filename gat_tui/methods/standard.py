"""Plain training and dropout (Table 2 rows 'Baseline' and 'Dropout'): minimise J(x, y).

Dropout is a property of the classifier (`model.dropout`), so both rows share this method.
"""

from __future__ import annotations

import torch
import torch.nn.functional as functional
from torch import nn

from gat_tui.methods.base import DrawBatch, StepResult, TrainingMethod, batch_accuracy, optimizer_step


class StandardTraining(TrainingMethod):
    def __init__(self, classifier: nn.Module, lr_f: float) -> None:
        super().__init__(classifier, generator=None)
        self.classifier_optimizer = torch.optim.Adam(classifier.parameters(), lr=lr_f)

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, draw_batch: DrawBatch) -> StepResult:
        logits = self.classifier(images)
        loss = functional.cross_entropy(logits, labels)
        optimizer_step(self.classifier_optimizer, loss, list(self.classifier.parameters()))
        return StepResult(loss_f=loss.detach(), train_acc_clean=batch_accuracy(logits, labels))

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"classifier": self.classifier_optimizer}
