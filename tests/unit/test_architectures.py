"""Any classifier and generator: torchvision, timm and a user's factory, for every method; their checkpoints."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from gat_tui.architectures import Architecture, ArchitectureError, Normalized, build_classifier, build_generator
from gat_tui.checkpoints import Checkpoint, CheckpointError, NetworkShape, save_checkpoint
from gat_tui.config import AttackConfig, ConfigError, ModelConfig, NormalizeConfig, RunConfig, config_from_toml, config_to_toml
from gat_tui.methods import MethodSetupError, build_method
from gat_tui.models import CLASSIFIER_ARCHITECTURE, GENERATOR_ARCHITECTURE, AllConvClassifier, PerturbationGenerator

TESTS = Path(__file__).resolve().parents[1]
SHAPE = (3, 8, 8)
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _factories_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS))  # tests/support_factory.py


def _config(method: str, **model: object) -> RunConfig:
    return replace(RunConfig(method=method), model=ModelConfig(**model))  # type: ignore[arg-type]


def _one_step(config: RunConfig) -> None:
    torch.manual_seed(0)
    training = build_method(config, num_classes=4, image_shape=SHAPE, device=CPU)
    training.train()
    before = {name: copy.deepcopy(net.state_dict()) for name, net in training.networks().items()}
    images, labels = torch.rand(4, *SHAPE), torch.randint(0, 4, (4,))
    result = training.train_step(images, labels, lambda: (torch.rand(4, *SHAPE), torch.randint(0, 4, (4,))))
    assert result.loss_f is None or torch.isfinite(result.loss_f)
    learning = training.networks() if config.method != "gat_attack" else {"generator": training.networks()["generator"]}
    for name, network in learning.items():
        assert any(not torch.equal(before[name][key], value) for key, value in network.state_dict().items()), name


METHODS = ("baseline", "random", "fg_linf", "fg_l2", "gat")


@pytest.mark.parametrize("method", METHODS)
def test_one_step_of_every_method_on_resnet18(method: str) -> None:
    _one_step(_config(method, classifier="torchvision:resnet18", normalize=NormalizeConfig((0.5,) * 3, (0.25,) * 3)))


@pytest.mark.parametrize("method", (*METHODS, "dropout", "dropout_gat"))
def test_one_step_of_every_method_on_a_factory(method: str) -> None:
    dropout = 0.5 if "dropout" in method else 0.0
    _one_step(_config(method, classifier="support_factory:tiny_classifier", generator="support_factory:tiny_generator", dropout=dropout))


def test_gat_attack_on_a_resnet18_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    victim = build_method(_config("baseline", classifier="torchvision:resnet18"), 4, SHAPE, CPU)
    path = tmp_path / "victim.safetensors"
    save_checkpoint(path, victim.networks(), NetworkShape(4, *SHAPE, 0.0), "", 1, 1, architecture=victim.architecture)
    config = replace(_config("gat_attack", generator_width=8, generator_depth=2), attack=AttackConfig(classifier=str(path)))
    _one_step(config)
    attacker = build_method(config, 4, SHAPE, CPU)
    assert attacker.architecture == Architecture("torchvision:resnet18", generator_width=8, generator_depth=2)


def test_resnet_gets_the_cifar_stem_on_small_images() -> None:
    small = build_classifier(Architecture("torchvision:resnet18"), 10, (3, 32, 32))
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1)
    assert isinstance(small.maxpool, torch.nn.Identity)
    grey = build_classifier(Architecture("torchvision:resnet18"), 10, (1, 16, 16))
    assert grey.conv1.in_channels == 1


def test_timm_classifier_takes_the_channel_count() -> None:
    pytest.importorskip("timm")
    network = build_classifier(Architecture("timm:resnet18"), 5, (1, 16, 16))
    assert network(torch.rand(2, 1, 16, 16)).shape == (2, 5)


@pytest.mark.parametrize(
    "architecture",
    [
        Architecture("torchvision:resnet18"),
        Architecture("support_factory:tiny_classifier", (0.5,) * 3, (0.2,) * 3, "support_factory:tiny_generator"),
        Architecture(generator_width=16, generator_depth=3),
    ],
)
def test_checkpoint_round_trip_gives_the_same_outputs(tmp_path: Path, architecture: Architecture) -> None:
    torch.manual_seed(0)
    classifier = build_classifier(architecture, 4, SHAPE).eval()
    generator = build_generator(architecture, SHAPE).eval()
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, {"classifier": classifier, "generator": generator}, NetworkShape(4, *SHAPE, 0.0), "", 1, 1,
                    architecture=architecture)
    checkpoint = Checkpoint.open(path)
    assert checkpoint.architecture == architecture
    images = torch.rand(3, *SHAPE)
    torch.testing.assert_close(checkpoint.classifier(CPU)(images), classifier(images))
    torch.testing.assert_close(checkpoint.generator(CPU)(images), generator(images))


def test_table1_checkpoints_keep_their_metadata_and_old_ones_load(tmp_path: Path) -> None:
    classifier, generator = AllConvClassifier(4, 3), PerturbationGenerator(3)
    assert list(PerturbationGenerator(3, 48, 6).state_dict()) == list(generator.state_dict())
    path = tmp_path / "new.safetensors"
    save_checkpoint(path, {"classifier": classifier, "generator": generator}, NetworkShape(4, *SHAPE, 0.0), "", 1, 1)
    metadata = Checkpoint.open(path).metadata
    assert (metadata["classifier_architecture"], metadata["generator_architecture"]) == (CLASSIFIER_ARCHITECTURE, GENERATOR_ARCHITECTURE)
    # a checkpoint of gat-tui 0.1: no 'architecture' key
    old = {key: value for key, value in metadata.items() if key != "architecture"}
    tensors = {f"{name}.{key}": value.contiguous() for name, net in (("classifier", classifier), ("generator", generator))
               for key, value in net.state_dict().items()}
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=old)
    loaded = Checkpoint.open(tmp_path / "old.safetensors")
    assert loaded.architecture == Architecture()
    images = torch.rand(2, *SHAPE)
    torch.testing.assert_close(loaded.classifier(CPU)(images), classifier.eval()(images))
    assert isinstance(loaded.generator(CPU), PerturbationGenerator)


def _with_architecture(tmp_path: Path, architecture: dict[str, object]) -> Path:
    path = tmp_path / "other.safetensors"
    classifier = build_classifier(Architecture("support_factory:tiny_classifier"), 4, SHAPE)
    save_checkpoint(path, {"classifier": classifier}, NetworkShape(4, *SHAPE, 0.0), "", 1, 1,
                    architecture=Architecture("support_factory:tiny_classifier"))
    checkpoint = Checkpoint.open(path)
    metadata = {**checkpoint.metadata, "architecture": json.dumps({**json.loads(checkpoint.metadata["architecture"]), **architecture})}
    save_file(checkpoint.tensors, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("no_such_module_xyz:factory", "cannot rebuild its classifier: model.classifier 'no_such_module_xyz:factory': cannot import module 'no_such_module_xyz': ModuleNotFoundError"),
        ("support_factory:missing", "module 'support_factory' has no callable 'missing'"),
        ("support_factory:failing_classifier", "'support_factory:failing_classifier': building it failed: RuntimeError: this factory always fails"),
        ("support_factory:wrong_output_classifier", "gives (2, 5) for 2 images of shape (3, 8, 8); expected (2, 4)"),
        ("support_factory:no_dropout_classifier", "missing tensor 'classifier.1.bias'"),
    ],
)
def test_checkpoints_that_cannot_be_rebuilt_are_refused(tmp_path: Path, spec: str, fragment: str) -> None:
    path = _with_architecture(tmp_path, {"classifier": spec})
    with pytest.raises(CheckpointError, match=r"^" + str(path).replace("\\", "\\\\")) as error:
        Checkpoint.open(path).classifier(CPU)
    assert fragment in str(error.value)


def test_malformed_architecture_metadata_is_refused(tmp_path: Path) -> None:
    path = _with_architecture(tmp_path, {"generator_depth": "six"})
    with pytest.raises(CheckpointError, match="metadata 'architecture' is malformed"):
        Checkpoint.open(path).shape  # noqa: B018


def test_dropout_is_refused_where_the_classifier_cannot_take_it() -> None:
    with pytest.raises(ConfigError, match="'model.dropout' = 0.5 applies to 'allconv'"):
        config_from_toml('method = "dropout"\n[model]\nclassifier = "torchvision:resnet18"\ndropout = 0.5\n', "preset.toml")
    with pytest.raises(MethodSetupError, match="the factory takes no 'dropout' argument"):
        build_method(_config("dropout", classifier="support_factory:no_dropout_classifier", dropout=0.5), 4, SHAPE, CPU)
    with pytest.raises(ConfigError, match="model.classifier' = 'resnet18' is not allowed"):
        config_from_toml('[model]\nclassifier = "resnet18"\n', "preset.toml")


def test_normalize_is_inside_the_model_and_round_trips_in_the_config() -> None:
    config = _config("gat", classifier="torchvision:resnet18", normalize=NormalizeConfig((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)))
    assert config_from_toml(config_to_toml(config), "config.toml") == config
    network = build_classifier(Architecture.from_config(config.model), 10, (3, 16, 16))
    assert isinstance(network, Normalized)
    with pytest.raises(ArchitectureError, match="the images have 1 channels"):
        build_classifier(Architecture.from_config(config.model), 10, (1, 16, 16))
    with pytest.raises(ConfigError, match="3 means and 1 stds"):
        config_from_toml('[model]\nnormalize = { mean = [0.5, 0.5, 0.5], std = [0.2] }\n', "preset.toml")


def test_generator_width_and_depth() -> None:
    generator = PerturbationGenerator(3, width=16, depth=2)
    widths = [layer.out_channels for layer in generator.modules() if isinstance(layer, torch.nn.Conv2d)]
    assert widths == [16, 16, 16, 3]
    with pytest.raises(MethodSetupError, match="model.generator 'support_factory:tiny_classifier': the factory failed: TypeError"):
        build_method(_config("gat", generator="support_factory:tiny_classifier"), 4, SHAPE, CPU)
