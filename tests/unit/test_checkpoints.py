from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from gat_tui.atomic import write_bytes_atomically
from gat_tui.checkpoints import (
    Checkpoint,
    CheckpointError,
    NetworkShape,
    network_shape,
    read_checkpoint,
    save_checkpoint,
)
from gat_tui.models import CLASSIFIER_ARCHITECTURE, GENERATOR_ARCHITECTURE, AllConvClassifier, PerturbationGenerator

SHAPE = NetworkShape(num_classes=5, channels=3, height=16, width=16, dropout=0.25)


def saved(tmp_path: Path, with_generator: bool = True) -> tuple[Path, AllConvClassifier]:
    classifier = AllConvClassifier(5, 3, dropout=0.25)
    networks = {"classifier": classifier}
    if with_generator:
        networks["generator"] = PerturbationGenerator(3)
    path = tmp_path / "checkpoints" / "last.safetensors"
    save_checkpoint(path, networks, SHAPE, 'method = "gat"\n', epoch=3, step=42)
    return path, classifier


def test_round_trip_rebuilds_the_networks_from_metadata(tmp_path: Path) -> None:
    path, classifier = saved(tmp_path)
    checkpoint = Checkpoint.open(path)
    loaded, shape = checkpoint.classifier(torch.device("cpu")), checkpoint.shape
    assert shape == SHAPE and loaded.dropout_rate == 0.25 and not loaded.training
    for key, value in classifier.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert isinstance(Checkpoint.open(path).generator(torch.device("cpu")), PerturbationGenerator)
    _, metadata = read_checkpoint(path)
    assert (metadata["epoch"], metadata["step"], metadata["config_toml"]) == ("3", "42", 'method = "gat"\n')
    assert [p.name for p in path.parent.iterdir()] == ["last.safetensors"]  # no temporary file left


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    write_bytes_atomically(path, b"old")

    with pytest.raises(TypeError):
        write_bytes_atomically(path, 12345)  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (lambda p: p.write_bytes(b"this is not a safetensors file at all"), "not a readable safetensors file"),
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "not a readable safetensors file"),
        (lambda p: p.unlink(), "no such checkpoint file"),
        (lambda p: save_file({"x": torch.zeros(1)}, str(p)), "expected 'gat-tui-checkpoint-v1'"),
    ],
)
def test_damaged_files_are_refused_with_the_file_named(tmp_path: Path, damage, fragment: str) -> None:  # type: ignore[no-untyped-def]
    path, _ = saved(tmp_path)
    damage(path)
    with pytest.raises(CheckpointError) as raised:
        Checkpoint.open(path).classifier(torch.device("cpu"))
    assert str(path) in str(raised.value) and fragment in str(raised.value)


def test_missing_and_mis_shaped_tensors_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    shape = NetworkShape(num_classes=5, channels=3, height=16, width=16, dropout=0.0)
    classifier = AllConvClassifier(5, 3)
    state = dict(classifier.state_dict())
    del state["features.0.bias"]
    save_checkpoint(path, {"classifier": _Holder(state)}, shape, "", 1, 1)
    with pytest.raises(CheckpointError, match="missing tensor 'classifier.features.0.bias'"):
        Checkpoint.open(path).classifier(torch.device("cpu"))
    other = AllConvClassifier(7, 3)  # another class count than the metadata says
    save_checkpoint(path, {"classifier": other}, shape, "", 1, 1)
    with pytest.raises(CheckpointError, match=r"has shape \(7.*needs \(5"):
        Checkpoint.open(path).classifier(torch.device("cpu"))
    with pytest.raises(CheckpointError, match="holds no generator"):
        Checkpoint.open(saved(tmp_path / "b", with_generator=False)[0]).generator(torch.device("cpu"))


class _Holder(torch.nn.Module):
    """A module whose state dict is given, to write deliberately incomplete checkpoints."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self._state = state

    def state_dict(self, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        return self._state


def test_a_checkpoint_without_its_run_configuration_says_so(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    save_checkpoint(path, {"classifier": AllConvClassifier(5, 3, dropout=0.25)}, SHAPE, "", epoch=1, step=1)
    with pytest.raises(CheckpointError) as raised:
        Checkpoint.open(path).config()
    assert str(raised.value) == f"{path}: metadata has no 'config_toml' (the run's configuration); not a gat-tui run checkpoint"


def test_the_generator_is_refused_by_name_when_absent_or_not_rebuildable(tmp_path: Path) -> None:
    path, _ = saved(tmp_path, with_generator=False)
    with pytest.raises(CheckpointError) as raised:
        Checkpoint.open(path).generator(torch.device("cpu"))
    assert str(raised.value) == f"{path}: holds no generator (networks: classifier)"
    path, _ = saved(tmp_path / "gat")
    checkpoint = Checkpoint.open(path)
    architecture = {**json.loads(checkpoint.metadata["architecture"]), "generator": "no_such_module_xyz:factory"}
    save_file(checkpoint.tensors, str(path), metadata={**checkpoint.metadata, "architecture": json.dumps(architecture)})
    with pytest.raises(CheckpointError) as raised:
        Checkpoint.open(path).generator(torch.device("cpu"))
    assert str(raised.value).startswith(f"{path}: cannot rebuild its generator: model.generator 'no_such_module_xyz:factory'")


def test_networks_are_rebuilt_on_the_device_asked_for(tmp_path: Path) -> None:
    # "meta" holds shapes only: a network left on the CPU shows without a GPU
    checkpoint = Checkpoint.open(saved(tmp_path)[0])
    for network in (checkpoint.classifier(torch.device("meta")), checkpoint.generator(torch.device("meta"))):
        assert {parameter.device.type for parameter in network.parameters()} == {"meta"} and not network.training


def _shape_metadata(tmp_path: Path, **change: object) -> tuple[Path, dict[str, str]]:
    path, _ = saved(tmp_path)
    metadata = dict(Checkpoint.open(path).metadata)
    metadata["shape"] = json.dumps({**json.loads(metadata["shape"]), **change})
    return path, metadata


@pytest.mark.parametrize(
    "change",
    [{}, {"num_classes": 2}, {"channels": 1}, {"height": 4, "width": 1024}, {"height": 1024, "width": 4}, {"dropout": 0}, {"dropout": 0.95}],
)
def test_shapes_at_the_limits_are_accepted(tmp_path: Path, change: dict[str, object]) -> None:
    path, metadata = _shape_metadata(tmp_path, **change)
    assert network_shape(path, metadata) == NetworkShape(**{**SHAPE.__dict__, **change})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"num_classes": 1}, "num_classes = 1 (expected an integer >= 2)"),
        ({"num_classes": 2.5}, "num_classes = 2.5 (expected an integer >= 2)"),
        ({"channels": 2}, "channels = 2 (expected 1 or 3)"),
        ({"channels": 3.0}, "channels = 3.0 (expected 1 or 3)"),
        ({"height": 3}, "height = 3 (expected an integer in 4..1024)"),
        ({"height": True}, "height = True (expected an integer in 4..1024)"),
        ({"height": 16.0}, "height = 16.0 (expected an integer in 4..1024)"),
        ({"height": 1025}, "height = 1025 (expected an integer in 4..1024)"),
        ({"width": 3}, "width = 3 (expected an integer in 4..1024)"),
        ({"width": 1025}, "width = 1025 (expected an integer in 4..1024)"),
        ({"width": 8.5}, "width = 8.5 (expected an integer in 4..1024)"),
        ({"dropout": 0.96}, "dropout = 0.96 (expected a number in [0, 0.95])"),
        ({"dropout": -0.1}, "dropout = -0.1 (expected a number in [0, 0.95])"),
        ({"dropout": False}, "dropout = False (expected a number in [0, 0.95])"),
        ({"num_classes": 1, "dropout": 2}, "num_classes = 1 (expected an integer >= 2)"),  # the first problem
    ],
)
def test_a_shape_out_of_range_is_refused_by_key(tmp_path: Path, change: dict[str, object], problem: str) -> None:
    path, metadata = _shape_metadata(tmp_path, **change)
    with pytest.raises(CheckpointError) as raised:
        network_shape(path, metadata)
    assert str(raised.value) == f"{path}: metadata 'shape' has {problem}"


def test_a_missing_or_malformed_shape_or_architecture_is_refused_naming_the_file(tmp_path: Path) -> None:
    path, metadata = _shape_metadata(tmp_path)
    with pytest.raises(CheckpointError) as raised:
        network_shape(path, {key: value for key, value in metadata.items() if key != "shape"})
    assert str(raised.value) == f"{path}: metadata 'shape' is missing or malformed ('shape')"
    with pytest.raises(CheckpointError) as raised:
        network_shape(path, {**metadata, "architecture": "{"})
    assert str(raised.value).startswith(f"{path}: metadata 'architecture' is malformed (")


def test_reading_the_metadata_alone_refuses_by_name(tmp_path: Path) -> None:
    from gat_tui.checkpoints import FORMAT, read_checkpoint_metadata

    path, _ = saved(tmp_path)
    assert read_checkpoint_metadata(path) == Checkpoint.open(path).metadata
    missing = tmp_path / "none.safetensors"
    with pytest.raises(CheckpointError) as raised:
        read_checkpoint_metadata(missing)
    assert str(raised.value) == f"{missing}: no such checkpoint file"
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"this is not a safetensors file at all")
    with pytest.raises(CheckpointError) as raised:
        read_checkpoint_metadata(garbage)
    assert str(raised.value).startswith(f"{garbage}: not a readable safetensors file (")
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(1)}, str(other), metadata={"format": "other-tool"})
    with pytest.raises(CheckpointError) as raised:
        read_checkpoint_metadata(other)
    assert str(raised.value) == f"{other}: metadata 'format' is 'other-tool'; expected {FORMAT!r} (a gat-tui checkpoint)"


def test_the_saved_metadata_and_tensor_names_are_exactly_these(tmp_path: Path) -> None:
    from gat_tui import __version__
    from gat_tui.architectures import Architecture
    from gat_tui.checkpoints import FORMAT

    classifier, generator = AllConvClassifier(5, 3, dropout=0.25), PerturbationGenerator(3, width=4, depth=1)
    architecture = Architecture(generator_width=4, generator_depth=1)
    extra = torch.arange(6.0).view(2, 3).t()  # not contiguous: saved as a contiguous copy
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"classifier": classifier, "generator": generator}, SHAPE, "toml text", epoch=3, step=42,
                    extra_tensors={"state.extra": extra}, extra_metadata={"training_state": "{}"}, architecture=architecture)
    tensors, metadata = read_checkpoint(path)
    assert metadata == {
        "format": FORMAT, "gat_tui_version": __version__, "networks": "classifier,generator",
        "classifier_architecture": CLASSIFIER_ARCHITECTURE, "generator_architecture": "table1-width4-depth1",
        "architecture": architecture.to_json(), "shape": json.dumps(SHAPE.__dict__), "config_toml": "toml text",
        "epoch": "3", "step": "42", "training_state": "{}",
    }
    expected_names = {f"classifier.{key}" for key in classifier.state_dict()} | {f"generator.{key}" for key in generator.state_dict()}
    assert set(tensors) == expected_names | {"state.extra"}
    assert torch.equal(tensors["state.extra"], extra)
    for key, value in classifier.state_dict().items():
        assert torch.equal(tensors[f"classifier.{key}"], value)


def test_architecture_names_kept_for_older_readers() -> None:
    from gat_tui.architectures import Architecture
    from gat_tui.checkpoints import _classifier_name, _generator_name

    assert _classifier_name(Architecture()) == CLASSIFIER_ARCHITECTURE
    assert _classifier_name(Architecture(normalize_mean=(0.5,), normalize_std=(0.2,))) == "allconv"  # not Table 1's any more
    assert _classifier_name(Architecture(classifier="torchvision:resnet18")) == "torchvision:resnet18"
    assert _generator_name(Architecture()) == GENERATOR_ARCHITECTURE
    assert _generator_name(Architecture(generator_width=48, generator_depth=5)) == "table1-width48-depth5"
    assert _generator_name(Architecture(generator_width=32, generator_depth=6)) == "table1-width32-depth6"
    assert _generator_name(Architecture(generator="pkg.mod:make", generator_width=3)) == "pkg.mod:make"


def test_a_checkpoint_of_gat_tui_0_1_without_an_architecture_spec(tmp_path: Path) -> None:
    from gat_tui.architectures import Architecture
    from gat_tui.checkpoints import network_architecture

    path = tmp_path / "old.safetensors"
    assert network_architecture(path, {"classifier_architecture": CLASSIFIER_ARCHITECTURE}) == Architecture()
    with pytest.raises(CheckpointError) as raised:
        network_architecture(path, {"classifier_architecture": "resnet"})
    assert str(raised.value) == (f"{path}: classifier architecture 'resnet' is not {CLASSIFIER_ARCHITECTURE!r}, "
                                 "and the metadata has no 'architecture' spec to rebuild it from")
    with pytest.raises(CheckpointError) as raised:
        network_architecture(path, {})
    assert str(raised.value).startswith(f"{path}: classifier architecture None is not ")
    with pytest.raises(CheckpointError) as raised:
        network_architecture(path, {"architecture": '{"classifier": 3}'})
    assert str(raised.value) == f"{path}: metadata 'architecture' is malformed ('classifier' is not a string)"


def test_unreadable_checkpoints_are_refused_with_the_reason(tmp_path: Path) -> None:
    from gat_tui.checkpoints import FORMAT

    folder = tmp_path / "a-folder.safetensors"
    folder.mkdir()
    with pytest.raises(CheckpointError) as raised:
        read_checkpoint(folder)
    assert str(raised.value) == f"{folder}: cannot read: Is a directory"
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(1)}, str(other), metadata={"format": "other-tool"})
    with pytest.raises(CheckpointError) as raised:
        read_checkpoint(other)
    assert str(raised.value) == f"{other}: metadata 'format' is 'other-tool'; expected {FORMAT!r} (a gat-tui checkpoint)"
    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(1)}, str(bare))  # no metadata at all
    with pytest.raises(CheckpointError) as raised:
        read_checkpoint(bare)
    assert str(raised.value) == f"{bare}: metadata 'format' is None; expected {FORMAT!r} (a gat-tui checkpoint)"


def test_the_header_reader_takes_the_metadata_and_refuses_a_short_file(tmp_path: Path) -> None:
    from gat_tui.checkpoints import _read_metadata

    path = tmp_path / "m.safetensors"
    save_file({"w": torch.zeros(3)}, str(path), metadata={"a": "1", "b": "two"})
    assert _read_metadata(path.read_bytes()) == {"a": "1", "b": "two"}
    save_file({"w": torch.zeros(3)}, str(path))
    assert _read_metadata(path.read_bytes()) == {}
    with pytest.raises(ValueError, match="^file shorter than the safetensors header$"):
        _read_metadata(b"1234567")
    with pytest.raises(json.JSONDecodeError):
        _read_metadata(bytes(8))  # a header of length 0: not the short-file error


def test_a_weights_file_is_read_as_safetensors_and_a_pickle_is_refused(tmp_path: Path) -> None:
    from gat_tui.checkpoints import read_state_dict

    weights = tmp_path / "net.safetensors"
    state = {"layer.weight": torch.arange(6.0).view(2, 3), "layer.bias": torch.zeros(2)}
    save_file(state, str(weights))
    read = read_state_dict(weights)
    assert set(read) == set(state) and all(torch.equal(read[key], value) for key, value in state.items())
    refusals = {
        tmp_path / "none.safetensors": "no such weights file",
        tmp_path: "is a folder; expected a .safetensors file",
        weights / "inside": "cannot read: Not a directory",
    }
    for path, reason in refusals.items():
        with pytest.raises(CheckpointError) as raised:
            read_state_dict(path)
        assert str(raised.value) == f"{path}: {reason}"
    for name, data in (("zip.pt", b"PK\x03\x04 torch.save's zip"), ("bare.pth", b"\x80\x02 a bare pickle")):
        pickle = tmp_path / name
        pickle.write_bytes(data)
        with pytest.raises(CheckpointError) as raised:
            read_state_dict(pickle)
        converted = pickle.with_suffix(".safetensors")
        assert str(raised.value) == (
            f"{pickle}: a pickle (torch.save's .pt/.pth format), refused: loading one can run arbitrary code. "
            "Convert it once, where you trust it, to safetensors: python -c \"import torch; "
            f"from safetensors.torch import save_file; save_file(torch.load('{pickle}', weights_only=True), '{converted}')\""
        )
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"P not a zip, not a pickle")  # starts like neither
    with pytest.raises(CheckpointError) as raised:
        read_state_dict(garbage)
    assert str(raised.value).startswith(f"{garbage}: not a readable safetensors file (")


def test_each_refused_tensor_is_named_with_what_is_wrong(tmp_path: Path) -> None:
    from gat_tui.checkpoints import load_network_weights

    path = tmp_path / "w.safetensors"
    network = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 2))
    good = {f"net.{key}": value + 1.0 for key, value in network.state_dict().items()}  # other values than the network's

    def refusal(tensors: dict[str, torch.Tensor]) -> str:
        with pytest.raises(CheckpointError) as raised:
            load_network_weights(path, "net", network, tensors)
        return str(raised.value)

    without = {key: value for key, value in good.items() if not key.endswith("bias")}
    assert refusal(without) == f"{path}: missing tensor 'net.0.bias' (2 missing in all)"
    extra = {**good, "net.9.weight": torch.zeros(1), "net.8.weight": torch.zeros(1), "other.x": torch.zeros(1)}
    assert refusal(extra) == f"{path}: unexpected tensor 'net.8.weight' for this architecture"  # the first by name
    # both layers wrong: the network's first layer is named, whatever the file's order
    misshaped = {**good, "net.1.weight": torch.zeros(3, 3), "net.0.weight": torch.zeros(2, 4)}
    assert refusal(dict(reversed(misshaped.items()))) == f"{path}: tensor 'net.0.weight' has shape (2, 4); this architecture needs (2, 3)"
    assert refusal({**good, "net.1.bias": torch.zeros(2, dtype=torch.float64)}) == (
        f"{path}: tensor 'net.1.bias' has dtype torch.float64; this architecture needs torch.float32")
    assert refusal({**good, "net.0.bias": torch.tensor([0.0, math.nan])}) == f"{path}: tensor 'net.0.bias' holds NaN or infinite values"
    assert refusal({**good, "net.1.weight": torch.full((2, 2), -math.inf)}) == f"{path}: tensor 'net.1.weight' holds NaN or infinite values"
    load_network_weights(path, "net", network, {**good, "other.x": torch.zeros(1)})  # another network's tensors are not ours
    for key, value in network.state_dict().items():
        assert torch.equal(value, good[f"net.{key}"])


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_checkpoint_gets_the_mode_an_ordinary_open_gives_under_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    # mkstemp alone made every checkpoint 0600, whatever the umask: unreadable to a teammate or a group job
    import os
    import stat

    previous = os.umask(umask)
    try:
        path, _ = saved(tmp_path)
        plain = tmp_path / "plain"
        plain.write_bytes(b"")  # what open() gives, for comparison
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == mode == stat.S_IMODE(plain.stat().st_mode)
