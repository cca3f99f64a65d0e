"""Checkpoints: network weights in a safetensors file, written atomically; never a pickle.

Tensors are named `<network>.<parameter>` (e.g. `classifier.features.0.weight`). The metadata
records what is needed to rebuild the networks without the preset: the format, the package
version, each architecture (`architecture`: the specs of `gat_tui.architectures`, besides the
older `classifier_architecture` / `generator_architecture` names), the class count, the image
shape, the classifier's dropout, the resolved config as TOML, and the epoch/step it was written
at. Checkpoints without `architecture` (Table 1's networks, gat-tui 0.1) still load.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import nn

from gat_tui._version import __version__
from gat_tui.architectures import Architecture, ArchitectureError, build_classifier, build_generator
from gat_tui.atomic import write_bytes_atomically
from gat_tui.config import RunConfig, config_from_toml
from gat_tui.models import CLASSIFIER_ARCHITECTURE, GENERATOR_ARCHITECTURE

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
    architecture: Architecture = Architecture(),  # noqa: B008 (frozen, never mutated)
) -> None:
    """Weights of `networks` built as `architecture` (plus e.g. training state in `extra_*`) to `path`, atomically."""
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
        "classifier_architecture": _classifier_name(architecture),
        "generator_architecture": _generator_name(architecture),
        "architecture": architecture.to_json(),
        "shape": json.dumps(shape.__dict__),
        "config_toml": config_toml,
        "epoch": str(epoch),
        "step": str(step),
        **(extra_metadata or {}),
    }
    write_bytes_atomically(path, save_safetensors_bytes(tensors, metadata=metadata))


def _classifier_name(architecture: Architecture) -> str:
    # Table 1's classifier keeps its old name, so older gat-tui versions still read these checkpoints
    if architecture.classifier == "allconv" and architecture.normalize_mean is None:
        return CLASSIFIER_ARCHITECTURE
    return architecture.classifier


def _generator_name(architecture: Architecture) -> str:
    if architecture.generator != "table1":
        return architecture.generator
    if (architecture.generator_width, architecture.generator_depth) == (Architecture.generator_width, Architecture.generator_depth):
        return GENERATOR_ARCHITECTURE
    return f"table1-width{architecture.generator_width}-depth{architecture.generator_depth}"


def network_architecture(path: Path, metadata: Mapping[str, str]) -> Architecture:
    """The networks' specs recorded in `metadata` (Table 1's for a checkpoint of gat-tui 0.1), or CheckpointError."""
    text = metadata.get("architecture")
    if text is None:
        if metadata.get("classifier_architecture") != CLASSIFIER_ARCHITECTURE:
            raise CheckpointError(
                f"{path}: classifier architecture {metadata.get('classifier_architecture')!r} is not "
                f"{CLASSIFIER_ARCHITECTURE!r}, and the metadata has no 'architecture' spec to rebuild it from"
            )
        return Architecture()
    try:
        return Architecture.from_json(text)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: metadata 'architecture' is malformed ({error})") from None


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


def read_checkpoint_metadata(path: Path) -> dict[str, str]:
    """The metadata of a gat-tui checkpoint, read from its header without loading any tensor."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: metadata 'format' is {metadata.get('format')!r}; expected {FORMAT!r} (a gat-tui checkpoint)"
        )
    return metadata


def _read_metadata(data: bytes) -> dict[str, str]:
    # safetensors' header: 8-byte little-endian length, then JSON with an optional __metadata__
    if len(data) < 8:
        raise ValueError("file shorter than the safetensors header")
    header_length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_length])
    return dict(header.get("__metadata__") or {})


def network_shape(path: Path, metadata: Mapping[str, str]) -> NetworkShape:
    """The classifier's shape recorded in `metadata`, checked, or CheckpointError naming the key."""
    network_architecture(path, metadata)
    try:
        shape = NetworkShape(**json.loads(metadata["shape"]))
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: metadata 'shape' is missing or malformed ({error})") from None
    problems = [
        f"{name} = {value!r} (expected {allowed})"
        for name, value, allowed, fits in (
            ("num_classes", shape.num_classes, "an integer >= 2", _is_int(shape.num_classes) and shape.num_classes >= 2),
            ("channels", shape.channels, "1 or 3", shape.channels in (1, 3) and _is_int(shape.channels)),
            ("height", shape.height, "an integer in 4..1024", _is_int(shape.height) and 4 <= shape.height <= 1024),
            ("width", shape.width, "an integer in 4..1024", _is_int(shape.width) and 4 <= shape.width <= 1024),
            ("dropout", shape.dropout, "a number in [0, 0.95]", _is_number(shape.dropout) and 0.0 <= shape.dropout <= 0.95),
        )
        if not fits
    ]
    if problems:
        raise CheckpointError(f"{path}: metadata 'shape' has {problems[0]}")
    return shape


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_network_weights(path: Path, network_name: str, network: nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Copy `<network_name>.*` tensors into `network`; missing, extra, mis-shaped, mistyped or non-finite ones are refused."""
    prefix = f"{network_name}."
    state = {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}
    load_checked_state(path, prefix, network, state)


def load_checked_state(path: Path, prefix: str, network: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """`network.load_state_dict(state)` after checking every tensor; errors name `path` and the tensor (`prefix` + key)."""
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise CheckpointError(f"{path}: missing tensor '{prefix}{missing[0]}' ({len(missing)} missing in all)")
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        raise CheckpointError(f"{path}: unexpected tensor '{prefix}{unexpected[0]}' for this architecture")
    # in the network's own order (a file's order is the writer's), so the first mismatch named is the first layer's
    for key in expected:
        value = state[key]
        if value.shape != expected[key].shape:
            raise CheckpointError(
                f"{path}: tensor '{prefix}{key}' has shape {tuple(value.shape)}; "
                f"this architecture needs {tuple(expected[key].shape)}"
            )
        if value.dtype != expected[key].dtype:
            raise CheckpointError(f"{path}: tensor '{prefix}{key}' has dtype {value.dtype}; this architecture needs {expected[key].dtype}")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{path}: tensor '{prefix}{key}' holds NaN or infinite values")
    network.load_state_dict(state)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file: a network's state dict (`gat-tui eval --weights`, `export --robustbench`).

    Anything else is refused with a CheckpointError naming the file; a pickle (torch.save's .pt or
    .pth) in particular is never loaded, since unpickling can run any code.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such weights file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a folder; expected a .safetensors file") from None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read: {error.strerror}") from None
    try:
        return load_safetensors_bytes(data)
    except (SafetensorError, ValueError) as error:
        # only a file that is not safetensors is looked at as a pickle: a safetensors file starts with its
        # header's length, whose first byte is 0x80 for a header of 128 bytes (a two-tensor state dict)
        if data[:2] == b"PK" or data[:1] == b"\x80":  # a zip archive (torch.save) or a bare pickle
            raise CheckpointError(
                f"{path}: a pickle (torch.save's .pt/.pth format), refused: loading one can run arbitrary code. "
                "Convert it once, where you trust it, to safetensors: python -c \"import torch; "
                "from safetensors.torch import save_file; "
                f"save_file(torch.load('{path}', weights_only=True), '{path.with_suffix('.safetensors')}')\""
            ) from None
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None


@dataclass(frozen=True)
class Checkpoint:
    """A gat-tui checkpoint read once: its tensors, metadata, and the networks and config they rebuild."""

    path: Path
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str]

    @classmethod
    def open(cls, path: Path) -> Checkpoint:
        tensors, metadata = read_checkpoint(path)
        return cls(path, tensors, metadata)

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(name for name in self.metadata.get("networks", "").split(",") if name)

    @property
    def has_generator(self) -> bool:
        return "generator" in self.networks

    @property
    def shape(self) -> NetworkShape:
        return network_shape(self.path, self.metadata)

    def config(self, overrides: Iterable[str] = ()) -> RunConfig:
        """The run configuration recorded in the checkpoint, validated, with `KEY=VALUE` overrides."""
        text = self.metadata.get("config_toml")
        if not text:
            raise CheckpointError(f"{self.path}: metadata has no 'config_toml' (the run's configuration); not a gat-tui run checkpoint")
        return config_from_toml(text, f"{self.path} (its saved config)", overrides)

    def load_into(self, network_name: str, network: nn.Module) -> None:
        load_network_weights(self.path, network_name, network, self.tensors)

    @property
    def architecture(self) -> Architecture:
        return network_architecture(self.path, self.metadata)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        shape = self.shape
        return shape.channels, shape.height, shape.width

    def classifier(self, device: torch.device) -> nn.Module:
        """The classifier rebuilt from the recorded architecture on `device`, in eval mode.

        A spec that cannot be rebuilt here (a module that does not import, a factory that fails,
        an output of another shape) is a CheckpointError naming the spec and the cause.
        """
        shape, architecture = self.shape, self.architecture
        try:
            classifier = build_classifier(architecture, shape.num_classes, self.image_shape, shape.dropout)
        except ArchitectureError as error:
            raise CheckpointError(f"{self.path}: cannot rebuild its classifier: {error}") from None
        self.load_into("classifier", classifier)
        return classifier.to(device).eval()

    def generator(self, device: torch.device) -> nn.Module:
        """The generator (of a GAT or GAT-attacker run) rebuilt on `device`, in eval mode."""
        if not self.has_generator:
            raise CheckpointError(f"{self.path}: holds no generator (networks: {self.metadata.get('networks')})")
        try:
            generator = build_generator(self.architecture, self.image_shape)
        except ArchitectureError as error:
            raise CheckpointError(f"{self.path}: cannot rebuild its generator: {error}") from None
        self.load_into("generator", generator)
        return generator.to(device).eval()
