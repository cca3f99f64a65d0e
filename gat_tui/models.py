"""The two networks of the paper's Table 1, with Xavier initialisation.

Classifier F (a small All-Conv net): conv3x3-48, conv3x3-48 stride 2, conv3x3-96, conv3x3-96
stride 2, conv3x3-96, conv1x1-96, conv1x1-K, global average pooling; ReLU after every hidden
convolution. Padding 1 on the 3x3 convolutions keeps 32 -> 16 -> 8. F returns logits; the
softmax of the paper's F(x) is applied by the losses that need it.

Generator G: six conv3x3-48, conv1x1-48, conv1x1-C, ReLU between, tanh on the output, so every
perturbation value lies in (-1, 1). G keeps the spatial size of its input (the gradient Δ).
"""

from __future__ import annotations

import torch
from torch import nn

CLASSIFIER_ARCHITECTURE = "allconv-small-v1"
GENERATOR_ARCHITECTURE = "gat-generator-v1"


def _xavier_init(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class Dropout(nn.Dropout):
    """`nn.Dropout` whose mask, on the CPU, comes from uniform draws: the same distribution, ~4x faster.

    torch draws a CPU dropout mask with `bernoulli_`, one element at a time on one thread (15% of
    an All-Conv dropout step on two cores); `rand_like(x) >= p` keeps each element with the same
    probability 1 - p from vectorised uniform draws of the same generator, so a run stays
    reproducible from its seed and resumes exactly. Elsewhere (CUDA's fused kernel, MPS) and in
    eval mode this is `nn.Dropout`.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or input.device.type != "cpu" or self.inplace or not 0.0 < self.p < 1.0:
            return super().forward(input)
        keep = torch.rand_like(input).ge_(self.p)  # 1.0 where kept, with probability 1 - p
        return input * keep.mul_(1.0 / (1.0 - self.p))


class AllConvClassifier(nn.Module):
    """F of Table 1 for any input size and class count; logits of shape [N, num_classes].

    `dropout` > 0 inserts dropout after each of the two stride-2 convolutions, the places where
    the All-Conv family puts it (Springenberg et al. 2015).
    """

    def __init__(self, num_classes: int, in_channels: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.dropout_rate = dropout

        def conv(cin: int, cout: int, kernel: int, stride: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2), nn.ReLU(inplace=True)]

        def maybe_dropout() -> list[nn.Module]:
            return [Dropout(dropout)] if dropout > 0 else []

        self.features = nn.Sequential(
            *conv(in_channels, 48, 3),
            *conv(48, 48, 3, stride=2),
            *maybe_dropout(),
            *conv(48, 96, 3),
            *conv(96, 96, 3, stride=2),
            *maybe_dropout(),
            *conv(96, 96, 3),
            *conv(96, 96, 1),
            nn.Conv2d(96, num_classes, 1),
        )
        _xavier_init(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images).mean(dim=(2, 3))


class PerturbationGenerator(nn.Module):
    """G of Table 1: maps the input gradient Δ to a perturbation of the same shape, in (-1, 1)."""

    def __init__(self, channels: int = 3, width: int = 48, depth: int = 6) -> None:
        super().__init__()
        # `width` and `depth` (the number of 3x3 convolutions) open the paper's question of the
        # generator's capacity; the defaults are Table 1 with its parameter names, so old checkpoints load
        layers: list[nn.Module] = []
        width_in = channels
        for _ in range(depth):
            layers += [nn.Conv2d(width_in, width, 3, padding=1), nn.ReLU(inplace=True)]
            width_in = width
        layers += [nn.Conv2d(width_in, width, 1), nn.ReLU(inplace=True), nn.Conv2d(width, channels, 1), nn.Tanh()]
        self.layers = nn.Sequential(*layers)
        self.channels = channels
        self.width = width
        self.depth = depth
        _xavier_init(self)

    def forward(self, gradient: torch.Tensor) -> torch.Tensor:
        return self.layers(gradient)


def count_parameters(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())
