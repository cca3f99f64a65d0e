"""Which classifier and generator a run trains: Table 1's by default, or any other network.

`model.classifier` names the classifier F:

    allconv               Table 1's All-Conv net (`gat_tui.models.AllConvClassifier`), the default
    torchvision:NAME      `torchvision.models.get_model(NAME, weights=None, num_classes=K)`: never
                          downloads weights; ResNets get the usual CIFAR stem for images under 64
                          pixels a side (a 3x3 stride-1 first convolution, no max-pool)
    timm:NAME             `timm.create_model(NAME, pretrained=False, num_classes=K, in_chans=C)`
                          (the optional extra `gat-tui[timm]`)
    package.module:name   the user's factory, called as `name(num_classes=K, image_shape=(C, H, W))`
                          (and `dropout=` when `model.dropout` > 0); importing it runs that code

`model.generator` names G: `table1` (Table 1's generator, `generator_width` and
`generator_depth` 3x3 convolutions) or `package.module:name`, called as `name(image_shape=...)`.
Every network takes pixels in [0, 1]; `model.normalize` puts a per-channel normalisation
inside the classifier, so attacks and their ε stay in pixel space.

An `Architecture` is what a checkpoint records to rebuild its networks; any fault building
one (a module that does not import, a factory that fails, an output of the wrong shape) is an
`ArchitectureError` naming the spec and the cause.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, cast

import torch
from torch import nn

from gat_tui.config import ModelConfig
from gat_tui.models import AllConvClassifier, PerturbationGenerator

ALLCONV = "allconv"
TABLE1 = "table1"
# ResNets whose 7x7 stride-2 stem and max-pool would shrink a CIFAR image to 8x8 before the first block
SMALL_IMAGE_SIDE = 64


class ArchitectureError(ValueError):
    """A network spec that cannot be built; the message names the spec and the cause."""


@dataclass(frozen=True)
class Architecture:
    """The networks' specs, as in `[model]`; enough, with the data's shape, to rebuild them."""

    classifier: str = ALLCONV
    normalize_mean: tuple[float, ...] | None = None
    normalize_std: tuple[float, ...] | None = None
    generator: str = TABLE1
    generator_width: int = 48
    generator_depth: int = 6

    @classmethod
    def from_config(cls, model: ModelConfig) -> Architecture:
        normalize = model.normalize
        return cls(
            classifier=model.classifier,
            normalize_mean=None if normalize is None else tuple(normalize.mean),
            normalize_std=None if normalize is None else tuple(normalize.std),
            generator=model.generator,
            generator_width=model.generator_width,
            generator_depth=model.generator_depth,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        """Parse what `to_json` wrote; ValueError (or TypeError) for anything else."""
        table = json.loads(text)
        if not isinstance(table, dict):
            raise ValueError(f"expected a JSON object, got {text!r}")
        architecture = cls(**table)
        for name in ("classifier", "generator"):
            if not isinstance(getattr(architecture, name), str):
                raise ValueError(f"'{name}' is not a string")
        for name in ("generator_width", "generator_depth"):
            value = getattr(architecture, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"'{name}' = {value!r} is not a non-negative integer")
        for name in ("normalize_mean", "normalize_std"):
            value = getattr(architecture, name)
            if value is not None:
                object.__setattr__(architecture, name, tuple(float(item) for item in value))
        return architecture

    @property
    def is_table1(self) -> bool:
        """Table 1's two networks exactly: checkpoints keep the original metadata."""
        return self == Architecture(ALLCONV, generator=TABLE1)


class Normalized(nn.Module):
    """(x - mean) / std per channel, then the wrapped network: the model still takes pixels in [0, 1]."""

    def __init__(self, network: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.network = network
        self.mean: torch.Tensor
        self.std: torch.Tensor
        # not saved in checkpoints: the architecture's spec holds them
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.network((images - self.mean) / self.std)
        return output


def build_classifier(
    architecture: Architecture, num_classes: int, image_shape: tuple[int, int, int], dropout: float = 0.0
) -> nn.Module:
    """The classifier of `architecture` (fresh weights from the current torch seed), checked on a probe batch."""
    spec = architecture.classifier
    channels = image_shape[0]
    if spec == ALLCONV:
        network: nn.Module = AllConvClassifier(num_classes, channels, dropout)
    else:
        if dropout > 0 and not _is_factory(spec):
            raise ArchitectureError(
                f"model.classifier {spec!r}: model.dropout = {dropout} applies to 'allconv' (or a factory that takes dropout=)"
            )
        try:
            network = _build_classifier(spec, num_classes, image_shape, dropout)
        except ArchitectureError:
            raise
        except Exception as error:  # a user's factory or a library may fail any way
            raise ArchitectureError(f"model.classifier {spec!r}: building it failed: {type(error).__name__}: {error}") from error
    mean, std = architecture.normalize_mean, architecture.normalize_std
    if mean is not None and std is not None:
        if not len(mean) == len(std) == channels:
            raise ArchitectureError(
                f"model.normalize: mean has {len(mean)} and std {len(std)} values; the images have {channels} channels"
            )
        network = Normalized(network, mean, std)
    _probe(f"model.classifier {spec!r}", network, image_shape, (num_classes,))
    return network


def build_generator(architecture: Architecture, image_shape: tuple[int, int, int]) -> nn.Module:
    """The generator of `architecture` (fresh weights), checked to keep the shape of its input."""
    spec = architecture.generator
    if spec == TABLE1:
        return PerturbationGenerator(image_shape[0], architecture.generator_width, architecture.generator_depth)
    if not _is_factory(spec):
        raise ArchitectureError(f"model.generator {spec!r}: expected '{TABLE1}' or 'package.module:factory'")
    factory = _import_factory("model.generator", spec)
    try:
        network = factory(image_shape=image_shape)
    except Exception as error:
        raise ArchitectureError(f"model.generator {spec!r}: the factory failed: {type(error).__name__}: {error}") from error
    _probe(f"model.generator {spec!r}", network, image_shape, image_shape)
    return network


def _is_factory(spec: str) -> bool:
    prefix = spec.split(":", 1)[0]
    return ":" in spec and prefix not in ("torchvision", "timm")


def _build_classifier(spec: str, num_classes: int, image_shape: tuple[int, int, int], dropout: float) -> nn.Module:
    kind, _, name = spec.partition(":")
    channels, height, width = image_shape
    if kind == "torchvision" and name:
        from torchvision import models as torchvision_models

        network: nn.Module = torchvision_models.get_model(name, weights=None, num_classes=num_classes)
        return _adapt_torchvision(network, channels, min(height, width))
    if kind == "timm" and name:
        try:
            import timm  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise ArchitectureError(f"model.classifier {spec!r}: timm is not installed; pip install 'gat-tui[timm]'") from None
        created: nn.Module = timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=channels)
        return created
    if _is_factory(spec):
        factory = _import_factory("model.classifier", spec)
        arguments: dict[str, Any] = {"num_classes": num_classes, "image_shape": image_shape}
        if dropout > 0:
            if not _takes(factory, "dropout"):
                raise ArchitectureError(
                    f"model.classifier {spec!r}: model.dropout = {dropout} but the factory takes no 'dropout' argument"
                )
            arguments["dropout"] = dropout
        made = factory(**arguments)
        if not isinstance(made, nn.Module):
            raise ArchitectureError(f"model.classifier {spec!r}: the factory returned {type(made).__name__}, not a torch nn.Module")
        return made
    raise ArchitectureError(
        f"model.classifier {spec!r}: expected 'allconv', 'torchvision:NAME', 'timm:NAME' or 'package.module:factory'"
    )


def _adapt_torchvision(network: nn.Module, channels: int, side: int) -> nn.Module:
    """ResNets: the CIFAR stem for small images, and a first convolution for `channels` channels."""
    conv1 = getattr(network, "conv1", None)
    if isinstance(conv1, nn.Conv2d) and hasattr(network, "maxpool"):
        if side < SMALL_IMAGE_SIDE:
            network.conv1 = nn.Conv2d(channels, conv1.out_channels, 3, stride=1, padding=1, bias=False)
            network.maxpool = nn.Identity()
        elif channels != conv1.in_channels:
            network.conv1 = nn.Conv2d(channels, conv1.out_channels, 7, stride=2, padding=3, bias=False)
    return network


def _import_factory(key: str, spec: str) -> Callable[..., Any]:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or anything the module raises at import
        raise ArchitectureError(f"{key} {spec!r}: cannot import module '{module_name}': {type(error).__name__}: {error}") from error
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ArchitectureError(f"{key} {spec!r}: module '{module_name}' has no callable '{attribute}'")
    return cast(Callable[..., Any], factory)


def _takes(factory: Callable[..., Any], argument: str) -> bool:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == argument or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _probe(what: str, network: nn.Module, image_shape: tuple[int, int, int], expected: tuple[int, ...]) -> None:
    """Run two blank images through `network` in eval mode; its output must be a tensor of `expected` shape per image."""
    if not isinstance(network, nn.Module):
        raise ArchitectureError(f"{what}: built {type(network).__name__}, not a torch nn.Module")
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            output = network(torch.zeros(2, *image_shape))
    except Exception as error:
        raise ArchitectureError(
            f"{what}: fails on images of shape {tuple(image_shape)}: {type(error).__name__}: {error}"
        ) from error
    finally:
        network.train(was_training)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != (2, *expected):
        found = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ArchitectureError(f"{what}: gives {found} for 2 images of shape {tuple(image_shape)}; expected {(2, *expected)}")
