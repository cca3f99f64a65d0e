"""The training methods: Eq. 9 and 10 by hand, Algorithm 1 replayed by hand, and one step of each."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as functional
from torch import nn

from gat_tui.architectures import Architecture, ArchitectureError, build_classifier
from gat_tui.attacks import FGML2, FGSM, GATAttack, RandomL2
from gat_tui.checkpoints import NetworkShape, save_checkpoint
from gat_tui.config import AttackConfig, ModelConfig, RunConfig
from gat_tui.methods import MethodSetupError, build_method
from gat_tui.methods.base import optimizer_step
from gat_tui.methods.fast_gradient import FastGradientTraining
from gat_tui.methods.gat import GenerativeAdversarialTraining, generator_loss
from gat_tui.methods.gat_attack import GatAttackerTraining
from gat_tui.methods.random_noise import RandomPerturbationTraining
from gat_tui.methods.standard import StandardTraining

NUM_CLASSES = 3


def linear_classifier() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, NUM_CLASSES)).double()


def small_generator() -> nn.Module:
    torch.manual_seed(4)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1), nn.Tanh()).double()


def make_batch(seed: int, n: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 2, 3, 3, generator=generator, dtype=torch.float64)
    return images, torch.randint(0, NUM_CLASSES, (n,), generator=generator)


def delta_by_hand(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    # for logits Wx + b: d softmax_y / dx = p_y (W_y - sum_j p_j W_j)
    weight = classifier[1].weight.detach()
    p = torch.softmax(classifier(images).detach(), dim=1)
    return (p.gather(1, labels.view(-1, 1)) * (weight[labels] - p @ weight)).view_as(images)


def eq9_by_hand(classifier: nn.Module, generator: nn.Module, images, labels, c_g: float) -> torch.Tensor:
    perturbation = generator(delta_by_hand(classifier, images, labels))
    adversarial = (images + perturbation).clamp(0, 1)
    p_true = torch.softmax(classifier(adversarial), dim=1)[torch.arange(len(labels)), labels]
    return p_true.mean() + c_g * (perturbation**2).sum(dim=(1, 2, 3)).mean()


def eq10_by_hand(classifier, generator, images, labels, alpha: float) -> torch.Tensor:
    with torch.no_grad():
        perturbation = generator(delta_by_hand(classifier, images, labels))
    adversarial = (images + perturbation).clamp(0, 1)
    return alpha * functional.cross_entropy(classifier(images), labels) + (1 - alpha) * functional.cross_entropy(
        classifier(adversarial), labels
    )


def test_generator_loss_is_eq_9() -> None:
    classifier, generator = linear_classifier(), small_generator()
    images, labels = make_batch(0)
    loss, perturbed = generator_loss(classifier, generator, images, labels, c_g=0.3, clip=True)
    torch.testing.assert_close(loss, eq9_by_hand(classifier, generator, images, labels, 0.3))
    assert perturbed.adversarial.shape == images.shape


def test_algorithm_1_step_matches_a_replay_by_hand() -> None:
    """k generator steps on fresh batches (Eq. 9), then one classifier step (Eq. 10)."""
    classifier, generator = linear_classifier(), small_generator()
    hand_classifier, hand_generator = copy.deepcopy(classifier), copy.deepcopy(generator)
    method = GenerativeAdversarialTraining(classifier, generator, lr_f=1e-2, lr_g=1e-2, alpha=0.3, c_g=0.2, k=2, clip=True)
    generator_batches = [make_batch(10), make_batch(11)]
    drawn = iter(generator_batches)
    images, labels = make_batch(31, n=8)  # a batch whose clean and perturbed accuracies differ
    result = method.train_step(images, labels, lambda: next(drawn))

    hand_g_optimizer = torch.optim.Adam(hand_generator.parameters(), lr=1e-2)
    hand_f_optimizer = torch.optim.Adam(hand_classifier.parameters(), lr=1e-2)
    generator_losses = []
    for batch_images, batch_labels in generator_batches:
        hand_g_optimizer.zero_grad()
        loss_g = eq9_by_hand(hand_classifier, hand_generator, batch_images, batch_labels, 0.2)
        loss_g.backward()
        hand_f_optimizer.zero_grad()  # Eq. 9 moves G only
        hand_g_optimizer.step()
        generator_losses.append(loss_g.detach())
    loss_f = eq10_by_hand(hand_classifier, hand_generator, images, labels, 0.3)
    # the step's figures: G's applied (clipped) perturbation on the classifier's batch, and F's
    # accuracy on the clean and perturbed batch, both before F's step
    with torch.no_grad():
        perturbed = (images + hand_generator(delta_by_hand(hand_classifier, images, labels))).clamp(0, 1)
        applied = (perturbed - images).flatten(1)
        figures_by_hand = {
            "pert_l2": applied.norm(dim=1).mean(),
            "pert_linf": applied.abs().amax(dim=1).mean(),
            "train_acc_clean": (hand_classifier(images).argmax(dim=1) == labels).double().mean(),
            "train_acc_adv": (hand_classifier(perturbed).argmax(dim=1) == labels).double().mean(),
        }
    hand_f_optimizer.zero_grad()
    loss_f.backward()
    hand_f_optimizer.step()

    torch.testing.assert_close(result.loss_f, loss_f.detach())
    torch.testing.assert_close(result.loss_g, torch.stack(generator_losses).mean())
    for name, expected in figures_by_hand.items():
        torch.testing.assert_close(getattr(result, name).double(), expected, msg=name)
    assert figures_by_hand["train_acc_clean"] != figures_by_hand["train_acc_adv"]  # so a swap of the two would show
    for ours, theirs in zip(classifier.parameters(), hand_classifier.parameters()):
        torch.testing.assert_close(ours, theirs)
    for ours, theirs in zip(generator.parameters(), hand_generator.parameters()):
        torch.testing.assert_close(ours, theirs)


def _config(method: str, **model: float) -> RunConfig:
    return replace(RunConfig(method=method), model=ModelConfig(**model))


@pytest.mark.parametrize(
    ("method", "dropout", "has_generator", "has_perturbation"),
    [
        ("baseline", 0.0, False, False),
        ("dropout", 0.5, False, False),
        ("random", 0.0, False, True),
        ("fg_linf", 0.0, False, True),
        ("fg_l2", 0.0, False, True),
        ("gat", 0.0, True, True),
        ("dropout_gat", 0.5, True, True),
        ("pgd_at", 0.0, False, True),
        ("trades", 0.0, False, True),
    ],
)
def test_one_training_step_of_every_method(method: str, dropout: float, has_generator: bool, has_perturbation: bool) -> None:
    torch.manual_seed(0)
    training = build_method(_config(method, dropout=dropout), num_classes=4, image_shape=(3, 16, 16), device=torch.device("cpu"))
    before = {name: copy.deepcopy(net.state_dict()) for name, net in training.networks().items()}
    images, labels = torch.rand(8, 3, 16, 16), torch.randint(0, 4, (8,))
    result = training.train_step(images, labels, lambda: (torch.rand(8, 3, 16, 16), torch.randint(0, 4, (8,))))

    assert result.loss_f is not None and torch.isfinite(result.loss_f)
    assert (result.loss_g is not None) == has_generator
    assert (result.pert_l2 is not None) == has_perturbation
    assert set(training.networks()) == ({"classifier", "generator"} if has_generator else {"classifier"})
    # a checkpoint names each optimiser after the network it trains; resume matches them by name
    optimizers = training.optimizers()
    assert set(optimizers) == set(training.networks())
    for name, optimizer in optimizers.items():
        trained = {id(parameter) for group in optimizer.param_groups for parameter in group["params"]}
        assert trained == {id(parameter) for parameter in training.networks()[name].parameters()}
    for name, network in training.networks().items():
        changed = any(not torch.equal(before[name][key], value) for key, value in network.state_dict().items())
        assert changed, f"{method}: {name} did not learn"
    assert (training.perturb(images, labels) is not None) == has_perturbation


def test_fast_gradient_training_uses_its_eps() -> None:
    training = build_method(
        replace(RunConfig(method="fg_linf"), perturbation=replace(RunConfig().perturbation, eps=0.05, clip=False)),
        num_classes=4,
        image_shape=(3, 16, 16),
        device=torch.device("cpu"),
    )
    result = training.train_step(torch.rand(8, 3, 16, 16), torch.randint(0, 4, (8,)), lambda: None)  # type: ignore[arg-type,return-value]
    torch.testing.assert_close(result.pert_linf, torch.tensor(0.05))


def test_gat_attack_trains_only_the_generator(tmp_path) -> None:
    torch.manual_seed(0)
    victim = build_method(RunConfig(method="baseline"), num_classes=4, image_shape=(3, 16, 16), device=torch.device("cpu"))
    path = tmp_path / "victim.safetensors"
    save_checkpoint(path, victim.networks(), NetworkShape(4, 3, 16, 16, 0.0), "", epoch=1, step=1)
    config = replace(RunConfig(method="gat_attack"), attack=AttackConfig(classifier=str(path)))
    attack = build_method(config, num_classes=4, image_shape=(3, 16, 16), device=torch.device("cpu"))
    frozen = copy.deepcopy(attack.classifier.state_dict())
    generator_before = copy.deepcopy(attack.generator.state_dict())
    attack.train()
    result = attack.train_step(torch.rand(8, 3, 16, 16), torch.randint(0, 4, (8,)), lambda: None)  # type: ignore[arg-type,return-value]
    assert result.loss_f is None and result.loss_g is not None
    assert not attack.classifier.training
    for key, value in attack.classifier.state_dict().items():
        assert torch.equal(frozen[key], value)
    assert any(not torch.equal(generator_before[k], v) for k, v in attack.generator.state_dict().items())
    with pytest.raises(ValueError, match="trained for 4 classes"):
        build_method(config, num_classes=10, image_shape=(3, 16, 16), device=torch.device("cpu"))


SETTINGS = dict(lr_f=2e-3, alpha=0.3, eps=0.7, clip=False, c_g=0.05, k=3, lr_g=4e-4)


def _settings_config(method: str, dropout: float = 0.0) -> RunConfig:
    """A config whose settings all differ from their defaults and from each other, so a swap shows."""
    base = RunConfig(method=method)
    return replace(
        base,
        model=ModelConfig(dropout=dropout, generator_width=8, generator_depth=2),
        train=replace(base.train, lr_f=SETTINGS["lr_f"], alpha=SETTINGS["alpha"]),
        perturbation=replace(base.perturbation, eps=SETTINGS["eps"], clip=SETTINGS["clip"]),
        gat=replace(base.gat, c_g=SETTINGS["c_g"], k=SETTINGS["k"], lr_g=SETTINGS["lr_g"]),
    )


def _learning_rate(optimizer: torch.optim.Optimizer) -> float:
    (group,) = optimizer.param_groups
    return float(group["lr"])


@pytest.mark.parametrize(("method", "kind", "attack"), [
    ("baseline", StandardTraining, None),
    ("dropout", StandardTraining, None),
    ("random", RandomPerturbationTraining, RandomL2),
    ("fg_linf", FastGradientTraining, FGSM),
    ("fg_l2", FastGradientTraining, FGML2),
    ("gat", GenerativeAdversarialTraining, GATAttack),
    ("dropout_gat", GenerativeAdversarialTraining, GATAttack),
])
def test_build_method_gives_each_setting_to_its_method(method: str, kind: type, attack: type | None) -> None:
    config = _settings_config(method, dropout=0.25 if "dropout" in method else 0.0)
    training = build_method(config, num_classes=4, image_shape=(1, 8, 8), device=torch.device("meta"))
    assert type(training) is kind
    assert training.architecture == Architecture.from_config(config.model) and training.dropout == config.model.dropout
    for name, network in training.networks().items():  # built on the device asked for
        assert {parameter.device.type for parameter in network.parameters()} == {"meta"}, name
    assert training.classifier(torch.zeros(2, 1, 8, 8, device="meta")).shape == (2, 4)  # 4 classes of 1-channel images
    assert _learning_rate(training.optimizers()["classifier"]) == SETTINGS["lr_f"]
    if attack is not None:
        assert type(training.attack) is attack and training.attack.clip is SETTINGS["clip"]
        assert (training.alpha, training.clip) == (SETTINGS["alpha"], SETTINGS["clip"])
    if kind in (RandomPerturbationTraining, FastGradientTraining):
        assert training.eps == SETTINGS["eps"]
    if kind is FastGradientTraining:
        assert training.norm == method.removeprefix("fg_")
    if kind is GenerativeAdversarialTraining:
        assert (training.c_g, training.k) == (SETTINGS["c_g"], SETTINGS["k"])
        assert _learning_rate(training.optimizers()["generator"]) == SETTINGS["lr_g"]
        assert training.attack.generator is training.generator
        assert (training.generator.channels, training.generator.width, training.generator.depth) == (1, 8, 2)  # [model]'s


def test_build_method_for_the_gat_attacker_takes_the_checkpoints_classifier(tmp_path: Path) -> None:
    torch.manual_seed(0)
    # the victim's recorded generator spec and size differ from this run's, which the attacker's record must keep
    victim_model = ModelConfig(dropout=0.3, generator="support_factory:tiny_generator", generator_width=5, generator_depth=1)
    victim = build_method(replace(RunConfig(method="dropout"), model=victim_model), 4, (1, 8, 8), torch.device("cpu"))
    path = tmp_path / "victim.safetensors"
    save_checkpoint(path, victim.networks(), NetworkShape(4, 1, 8, 8, 0.3), "", epoch=1, step=1, architecture=victim.architecture)
    config = replace(_settings_config("gat_attack"), attack=AttackConfig(classifier=str(path), patience=7))
    attacker = build_method(config, num_classes=4, image_shape=(1, 8, 8), device=torch.device("meta"))
    assert type(attacker) is GatAttackerTraining
    assert (attacker.patience, attacker.c_g, attacker.clip, attacker.attack.clip) == (7, SETTINGS["c_g"], False, False)
    assert _learning_rate(attacker.optimizers()["generator"]) == SETTINGS["lr_g"]
    assert attacker.dropout == 0.3  # the victim's, not this run's 0.0
    assert attacker.architecture == replace(victim.architecture, generator="table1", generator_width=8, generator_depth=2)
    assert (attacker.generator.channels, attacker.generator.width, attacker.generator.depth) == (1, 8, 2)
    for network in (attacker.classifier, attacker.generator):
        assert {parameter.device.type for parameter in network.parameters()} == {"meta"}
    with pytest.raises(MethodSetupError) as error:
        build_method(config, num_classes=5, image_shape=(3, 8, 8), device=torch.device("cpu"))
    assert str(error.value) == (f"attack.classifier {path}: trained for 4 classes of 1-channel images, "
                                "but data 'cifar10' has 5 of 3")
    with pytest.raises(MethodSetupError, match="trained for 4 classes of 1-channel images, but data 'cifar10' has 4 of 3$"):
        build_method(config, num_classes=4, image_shape=(3, 8, 8), device=torch.device("cpu"))


def test_build_method_refuses_an_unknown_method_and_an_unbuildable_network() -> None:
    with pytest.raises(MethodSetupError) as error:
        build_method(replace(RunConfig(), method="adversarial"), 4, (3, 8, 8), torch.device("cpu"))
    assert str(error.value) == "unknown method 'adversarial'"
    config = replace(RunConfig(method="baseline"), model=ModelConfig(classifier="no_such_module_anywhere:factory"))
    with pytest.raises(MethodSetupError) as error:
        build_method(config, 4, (3, 8, 8), torch.device("cpu"))
    with pytest.raises(ArchitectureError) as direct:
        build_classifier(Architecture.from_config(config.model), 4, (3, 8, 8), 0.0)
    assert str(error.value) == str(direct.value) and error.value.__cause__ is None and error.value.__suppress_context__


def test_optimizer_step_fills_and_steps_only_the_parameters_it_is_given() -> None:
    torch.manual_seed(0)
    trained, other = nn.Linear(2, 1), nn.Linear(1, 1)
    optimizer = torch.optim.Adam(trained.parameters(), lr=0.1)
    x = torch.ones(3, 2)
    optimizer_step(optimizer, other(trained(x)).sum(), list(trained.parameters()))
    assert all(parameter.grad is None for parameter in other.parameters())  # autograd skipped the other network
    # a step whose loss no longer reaches the bias: Adam must not move it by its momentum (its gradient is None, not 0)
    bias = trained.bias.detach().clone()
    optimizer_step(optimizer, (trained.weight * x[:, :2]).sum(), list(trained.parameters()))
    assert trained.bias.grad is None and torch.equal(trained.bias.detach(), bias)
