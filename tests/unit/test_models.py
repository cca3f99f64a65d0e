from __future__ import annotations

import pytest
import torch
from torch import nn

from gat_tui.models import AllConvClassifier, Dropout, PerturbationGenerator, count_parameters


def _conv_layers(module: nn.Module) -> list[nn.Conv2d]:
    return [layer for layer in module.modules() if isinstance(layer, nn.Conv2d)]


def test_classifier_layers_follow_table_1() -> None:
    convs = _conv_layers(AllConvClassifier(num_classes=10))
    described = [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs]
    assert described == [
        (3, 48, 3, 1),
        (48, 48, 3, 2),
        (48, 96, 3, 1),
        (96, 96, 3, 2),
        (96, 96, 3, 1),
        (96, 96, 1, 1),
        (96, 10, 1, 1),
    ]


def test_classifier_parameter_count() -> None:
    # 3x3 and 1x1 convolutions with biases, by hand from Table 1
    expected = (
        (3 * 9 * 48 + 48)
        + (48 * 9 * 48 + 48)
        + (48 * 9 * 96 + 96)
        + (96 * 9 * 96 + 96)
        + (96 * 9 * 96 + 96)
        + (96 * 96 + 96)
        + (96 * 10 + 10)
    )
    assert count_parameters(AllConvClassifier(num_classes=10)) == expected


def test_classifier_keeps_32_16_8_and_returns_logits() -> None:
    classifier = AllConvClassifier(num_classes=100)
    sizes = []
    x = torch.rand(2, 3, 32, 32)
    for layer in classifier.features:
        x = layer(x)
        if isinstance(layer, nn.Conv2d):
            sizes.append(x.shape[-1])
    assert sizes == [32, 16, 16, 8, 8, 8, 8]
    assert classifier(torch.rand(2, 3, 32, 32)).shape == (2, 100)


@pytest.mark.parametrize("size", [16, 28, 37])
def test_classifier_any_input_size(size: int) -> None:
    assert AllConvClassifier(num_classes=7, in_channels=1)(torch.rand(3, 1, size, size)).shape == (3, 7)


def test_dropout_sits_after_the_stride_2_convolutions() -> None:
    layers = list(AllConvClassifier(num_classes=10, dropout=0.5).features)
    dropout_positions = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Dropout)]
    assert len(dropout_positions) == 2
    for position in dropout_positions:
        conv = layers[position - 2]  # conv, ReLU, dropout
        assert isinstance(conv, nn.Conv2d) and conv.stride == (2, 2)
    assert not any(isinstance(layer, nn.Dropout) for layer in AllConvClassifier(10).features)


def test_cpu_dropout_keeps_each_value_with_probability_1_minus_p_scaled_by_its_inverse() -> None:
    layer = Dropout(0.2).train()
    ones = torch.ones(200_000, requires_grad=True)
    torch.manual_seed(0)
    out = layer(ones)
    kept = out != 0
    # 0.005 is over five standard deviations of the kept fraction of 200,000 draws
    assert abs(kept.float().mean().item() - 0.8) < 0.005
    assert torch.equal(out[kept], torch.full_like(out[kept], 1.25))
    out.sum().backward()
    assert ones.grad is not None and torch.equal(ones.grad, out.detach())  # the gradient passes where kept, scaled
    torch.manual_seed(0)
    assert torch.equal(layer(ones), out)  # the mask comes from torch's generator: a seed reproduces it
    assert torch.equal(layer.eval()(ones), ones)


def test_the_classifier_drops_out_with_the_cpu_fast_mask() -> None:
    dropouts = [layer for layer in AllConvClassifier(num_classes=10, dropout=0.5).features if isinstance(layer, nn.Dropout)]
    assert dropouts and all(type(layer) is Dropout and layer.p == 0.5 for layer in dropouts)


def test_generator_layers_shape_and_range() -> None:
    generator = PerturbationGenerator()
    convs = _conv_layers(generator)
    assert [(c.out_channels, c.kernel_size[0]) for c in convs] == [(48, 3)] * 6 + [(48, 1), (3, 1)]
    assert isinstance(generator.layers[-1], nn.Tanh)
    out = generator(torch.randn(4, 3, 32, 32) * 100)
    assert out.shape == (4, 3, 32, 32)
    assert out.abs().max() <= 1.0
    expected = (3 * 9 * 48 + 48) + 5 * (48 * 9 * 48 + 48) + (48 * 48 + 48) + (48 * 3 + 3)
    assert count_parameters(generator) == expected


def test_xavier_initialisation() -> None:
    conv = _conv_layers(AllConvClassifier(num_classes=10))[2]  # 48 -> 96, 3x3
    fan_in, fan_out = 48 * 9, 96 * 9
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    assert conv.weight.abs().max() <= bound
    assert conv.weight.abs().max() > 0.9 * bound  # uniform over the whole Xavier range
    assert torch.count_nonzero(conv.bias) == 0
