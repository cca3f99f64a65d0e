"""Checkpoints: network weights in a safetensors file, written atomically; never a pickle.

Tensors are named `<network>.<parameter>` (e.g. `classifier.features.0.weight`). The metadata
records what is needed to rebuild the networks without the preset: the format, the package
version, each architecture, the class count, the image shape, the classifier's dropout, the
resolved config as TOML, and the epoch/step it was written at.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import nn

from gat_tui import __version__
from gat_tui.atomic import write_bytes_atomically
from gat_tui.models import CLASSIFIER_ARCHITECTURE, GENERATOR_ARCHITECTURE, AllConvClassifier, PerturbationGenerator

FORMAT = "gat-tui-checkpoint-v1"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class NetworkShape:
    """Enough to rebuild the classifier and generator of a checkpoint."""

    num_classes: int
    channels: int
    height: int
    width: int
    dropout: float


def save_checkpoint(
    path: Path,
    networks: Mapping[str, nn.Module],
    shape: NetworkShape,
    config_toml: str,
    epoch: int,
    step: int,
    extra_tensors: Mapping[str, torch.Tensor] | None = None,
    extra_metadata: Mapping[str, str] | None = None,
) -> None:
    """Weights of `networks` (plus e.g. training state in `extra_*`) to `path`, atomically."""
    tensors = {
        f"{network_name}.{key}": value.detach().to("cpu").contiguous()
        for network_name, network in networks.items()
        for key, value in network.state_dict().items()
    }
    for key, value in (extra_tensors or {}).items():
        tensors[key] = value.detach().to("cpu").contiguous()
    metadata = {
        "format": FORMAT,
        "gat_tui_version": __version__,
        "networks": ",".join(networks),
        "classifier_architecture": CLASSIFIER_ARCHITECTURE,
        "generator_architecture": GENERATOR_ARCHITECTURE,
        "shape": json.dumps(shape.__dict__),
        "config_toml": config_toml,
        "epoch": str(epoch),
        "step": str(step),
        **(extra_metadata or {}),
    }
    write_bytes_atomically(path, save_safetensors_bytes(tensors, metadata=metadata))


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a gat-tui checkpoint, or CheckpointError naming the problem."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read: {error.strerror}") from None
    try:
        tensors = load_safetensors_bytes(data)
        metadata = _read_metadata(data)
    except (SafetensorError, ValueError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: metadata 'format' is {metadata.get('format')!r}; expected {FORMAT!r} (a gat-tui checkpoint)"
        )
    return tensors, metadata


def _read_metadata(data: bytes) -> dict[str, str]:
    # safetensors' header: 8-byte little-endian length, then JSON with an optional __metadata__
    if len(data) < 8:
        raise ValueError("file shorter than the safetensors header")
    header_length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_length])
    return dict(header.get("__metadata__") or {})


def network_shape(path: Path, metadata: Mapping[str, str]) -> NetworkShape:
    if metadata.get("classifier_architecture") != CLASSIFIER_ARCHITECTURE:
        raise CheckpointError(
            f"{path}: classifier architecture {metadata.get('classifier_architecture')!r} is not "
            f"{CLASSIFIER_ARCHITECTURE!r}, the one this version builds"
        )
    try:
        return NetworkShape(**json.loads(metadata["shape"]))
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: metadata 'shape' is missing or malformed ({error})") from None


def load_network_weights(path: Path, network_name: str, network: nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Copy `<network_name>.*` tensors into `network`; missing, extra or mis-shaped tensors are refused."""
    prefix = f"{network_name}."
    state = {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise CheckpointError(f"{path}: missing tensor '{prefix}{missing[0]}' ({len(missing)} missing in all)")
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        raise CheckpointError(f"{path}: unexpected tensor '{prefix}{unexpected[0]}' for this architecture")
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(
                f"{path}: tensor '{prefix}{key}' has shape {tuple(value.shape)}; "
                f"this architecture needs {tuple(expected[key].shape)}"
            )
    network.load_state_dict(state)


def load_classifier(path: Path, device: torch.device) -> tuple[AllConvClassifier, NetworkShape]:
    """Rebuild the classifier saved in `path` on `device`, in eval mode."""
    tensors, metadata = read_checkpoint(path)
    shape = network_shape(path, metadata)
    classifier = AllConvClassifier(shape.num_classes, shape.channels, shape.dropout)
    load_network_weights(path, "classifier", classifier, tensors)
    return classifier.to(device).eval(), shape


def load_generator(path: Path, device: torch.device) -> PerturbationGenerator:
    """Rebuild the generator saved in `path` (a GAT or GAT-attacker run) on `device`, in eval mode."""
    tensors, metadata = read_checkpoint(path)
    shape = network_shape(path, metadata)
    if "generator" not in metadata.get("networks", "").split(","):
        raise CheckpointError(f"{path}: holds no generator (networks: {metadata.get('networks')})")
    generator = PerturbationGenerator(shape.channels)
    load_network_weights(path, "generator", generator, tensors)
    return generator.to(device).eval()
