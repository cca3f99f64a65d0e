"""gat-tui's own AutoAttack logic, fast: the stage cascade, its bookkeeping, the options it refuses.

pyautoattack's attacks take seconds on a CPU (its tests here are `slow`), so most of these run
gat-tui's code against a stand-in for pyautoattack whose stages fool scripted images: which
images each stage is given, what is kept of its result, the robust accuracy after each stage,
the arguments pyautoattack receives and what is left as it was (the model's mode, the random
stream, the logger) are then exact. The stand-in has pyautoattack's interface, which
`test_stand_in_matches_pyautoattacks_interface` checks against the real package, and one test
runs the real package's stages at a few iterations each.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import torch
from autoattack_support import tiny_batch, tiny_classifier
from torch import nn

from gat_tui.attacks import APGDCE, APGDDLR, AUTOATTACKS, AutoAttack
from gat_tui.attacks.autoattack import (
    APGD,
    INSTALL_HINT,
    STAGES,
    VERSIONS,
    MissingExtraError,
    minimum_classes,
    require_pyautoattack,
)

CLASSES = 4
LOGGER = "auto-attack"  # pyautoattack's logger


class PixelClassifier(nn.Module):
    """Logits are the first `classes` pixels of a [N, 1, 1, classes + 1] image (the last one tells images apart).

    Records its mode at every call, to show the attacks run it in eval mode.
    """

    def __init__(self, classes: int = CLASSES) -> None:
        super().__init__()
        self.classes = classes
        self.modes: list[bool] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        return images.flatten(1)[:, : self.classes]


def pixel_batch(labels: list[int], classes: int = CLASSES) -> torch.Tensor:
    """One image per entry: its class pixel (`labels[i]`) at 0.6, the others at 0.2, its own id pixel."""
    images = torch.full((len(labels), 1, 1, classes + 1), 0.2)
    for row, label in enumerate(labels):
        images[row, 0, 0, label] = 0.6
        images[row, 0, 0, classes] = row / 100
    return images


@dataclass
class Call:
    stage: str
    rows: list[int]
    batch_size: int
    training: bool
    verbose: bool


@dataclass
class Script:
    """What the stand-in's stages do: the rows each stage fools, and what it saw."""

    images: torch.Tensor
    labels: torch.Tensor
    fools: dict[str, set[int]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    runners: list[Any] = field(default_factory=list)
    warnings: tuple[str, ...] = ("a check's warning",)
    fail_at: str | None = None
    target_classes: int = 9  # pyautoattack's APGD-T and FAB-T default

    def row_of(self, image: torch.Tensor) -> int:
        return round(float(image.flatten()[-1]) * 100)


def stand_in(script: Script) -> ModuleType:
    """A `pyautoattack` module whose AutoAttack runs `script`'s stages."""

    class StandInAutoAttack:
        # pyautoattack's defaults, but None for the device and ε, so that an argument left out shows
        def __init__(self, model: nn.Module, *, attacks: list[str] | None = None, device: Any = None,
                     eps: float | None = None, norm: str = "Linf", seed: int | None = None, version: str = "standard") -> None:
            self.model = model
            self.arguments = {"attacks": attacks, "device": device, "eps": eps, "norm": norm, "seed": seed, "version": version}
            self.verbose = True
            self.attacks_to_run = attacks
            self.apgd_targeted = SimpleNamespace(n_target_classes=script.target_classes)
            self.fab = SimpleNamespace(n_target_classes=script.target_classes)
            script.runners.append(self)

        def run_standard_evaluation(self, x: torch.Tensor, y: torch.Tensor, /, *, batch_size: int = 250) -> tuple[torch.Tensor, torch.Tensor]:
            assert self.attacks_to_run is not None
            (stage,) = self.attacks_to_run
            rows = [script.row_of(image) for image in x]
            script.calls.append(Call(stage, rows, batch_size, self.model.training, self.verbose))
            if stage == script.fail_at:
                raise RuntimeError(f"{stage} failed")
            logger = logging.getLogger(LOGGER)
            for message in script.warnings:
                logger.warning(message)
            logger.info("an info line, not a warning")
            logging.getLogger("another.library").warning("not pyautoattack's")
            torch.manual_seed(1234)  # pyautoattack reseeds the global stream in each attack
            adversarial = x.clone()
            for index, row in enumerate(rows):
                if row in script.fools.get(stage, set()):
                    wrong = (int(y[index]) + 1) % (x.shape[-1] - 1)
                    adversarial[index, 0, 0, wrong] = 0.9  # now the largest logit: fooled
                else:
                    adversarial[index, 0, 0, int(y[index])] += 0.05  # moved, still correct: not fooled
            return adversarial, y

    module = ModuleType("pyautoattack")
    module.AutoAttack = StandInAutoAttack  # type: ignore[attr-defined]
    return module


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Iterator[Script]:
    # 8 images; 0 and 1 are misclassified before any attack (labelled one class on)
    truth = [0, 1, 2, 3, 0, 1, 2, 3]
    labels_given = [1, 2, 2, 3, 0, 1, 2, 3]
    scripted = Script(pixel_batch(truth), torch.tensor(labels_given))
    monkeypatch.setitem(sys.modules, "pyautoattack", stand_in(scripted))
    logger = logging.getLogger(LOGGER)
    level, handlers = logger.level, list(logger.handlers)
    logger.setLevel(logging.DEBUG)  # so that only gat-tui's handler decides what is kept
    yield scripted
    assert logger.handlers == handlers  # gat-tui's collecting handler is removed after each run
    logger.setLevel(level)


def run_stages(script: Script, attack: AutoAttack, net: nn.Module, eps: float = 0.1) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    labels = script.labels
    return [(stage, result.adversarial, result.perturbation) for stage, result in attack.stages(net, script.images, labels, eps)]


def robust_accuracy(net: nn.Module, adversarial: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return (net(adversarial).argmax(1) == labels).float().mean().item()


def test_each_stage_attacks_only_the_images_still_classified_correctly(script: Script) -> None:
    # apgd-ce fools 2 and 3 (and would fool 1, already misclassified), apgd-t fools 3 again and 4, fab-t none
    script.fools = {"apgd-ce": {1, 2, 3}, "apgd-t": {3, 4}, "fab-t": set()}
    net = PixelClassifier()
    stages = run_stages(script, AutoAttack("linf", "custom", ("apgd-ce", "apgd-t", "fab-t")), net)
    assert [(call.stage, call.rows, call.batch_size) for call in script.calls] == [
        ("apgd-ce", [2, 3, 4, 5, 6, 7], 6),
        ("apgd-t", [4, 5, 6, 7], 4),
        ("fab-t", [5, 6, 7], 3),
    ]
    assert [stage for stage, _, _ in stages] == ["apgd-ce", "apgd-t", "fab-t"]
    labels = script.labels
    assert robust_accuracy(net, script.images, labels) == 6 / 8
    assert [robust_accuracy(net, adversarial, labels) for _, adversarial, _ in stages] == [4 / 8, 3 / 8, 3 / 8]
    # each stage's result is its own snapshot: after apgd-ce, image 4 is still the clean one
    changed = [(adversarial != script.images).flatten(1).any(1).nonzero().flatten().tolist() for _, adversarial, _ in stages]
    assert changed == [[2, 3], [2, 3, 4], [2, 3, 4]]
    for _, adversarial, perturbation in stages:
        torch.testing.assert_close(perturbation, adversarial - script.images, rtol=0, atol=0)
    final = stages[-1][1]
    # a fooled image is the stage's output; a stage's output that does not fool is not kept
    assert final[2, 0, 0, 3] == 0.9 and final[4, 0, 0, 1] == 0.9
    assert torch.equal(final[5:], script.images[5:]) and torch.equal(final[:2], script.images[:2])


def test_a_stage_with_nothing_left_to_attack_is_not_run_but_still_reported(script: Script) -> None:
    # apgd-ce leaves one image (7) for square, which fools it: nothing is left for fab
    script.fools = {"apgd-ce": {2, 3, 4, 5, 6}, "square": {7}}
    net = PixelClassifier()
    stages = run_stages(script, AutoAttack("linf", "custom", ("apgd-ce", "square", "fab")), net)
    assert [(call.stage, call.rows, call.batch_size) for call in script.calls] == [("apgd-ce", [2, 3, 4, 5, 6, 7], 6), ("square", [7], 1)]
    assert [stage for stage, _, _ in stages] == ["apgd-ce", "square", "fab"]
    assert torch.equal(stages[1][1], stages[2][1]) and torch.equal(stages[2][2], stages[2][1] - script.images)
    assert [robust_accuracy(net, adversarial, script.labels) for _, adversarial, _ in stages] == [1 / 8, 0.0, 0.0]


def test_perturb_is_the_last_stages_result(script: Script) -> None:
    script.fools = {"apgd-ce": {2}, "apgd-dlr": {5}, "fab": {6}}
    net = PixelClassifier()
    attack = AutoAttack("linf", "custom", ("apgd-ce", "apgd-dlr", "fab"))
    result = attack.perturb(net, script.images, script.labels, 0.1)
    assert [runner.arguments["eps"] for runner in script.runners] == [0.1]
    changed = (result.adversarial != script.images).flatten(1).any(1).nonzero().flatten().tolist()
    assert changed == [2, 5, 6]
    torch.testing.assert_close(result.perturbation, result.adversarial - script.images, rtol=0, atol=0)


@pytest.mark.parametrize(("norm", "version", "stages", "attacks"), [
    ("linf", "custom", ("apgd-t", "apgd-ce"), ["apgd-t", "apgd-ce"]),
    ("l2", "standard", (), None),
    ("l2", "plus", (), None),
    ("linf", "rand", (), None),
])
def test_pyautoattack_gets_the_norm_eps_version_stages_seed_and_device(
    script: Script, norm: str, version: str, stages: tuple[str, ...], attacks: list[str] | None
) -> None:
    attack = AutoAttack(norm, version, stages, seed=7)
    assert attack.stage_names == (stages or VERSIONS[version])
    run_stages(script, attack, PixelClassifier(), eps=0.25)
    (runner,) = script.runners
    assert runner.arguments == {"attacks": attacks, "device": script.images.device, "eps": 0.25,
                                "norm": {"linf": "Linf", "l2": "L2"}[norm], "seed": 7, "version": version}
    assert [call.stage for call in script.calls] == list(attack.stage_names)
    assert [call.verbose for call in script.calls] == [False] * len(attack.stage_names)  # pyautoattack's progress lines are off


@pytest.mark.parametrize(("classes", "default", "expected"), [(CLASSES, 9, CLASSES - 1), (2, 9, 1), (CLASSES, 2, 2), (1, 9, 1)])
def test_target_classes_are_capped_at_the_classes_less_one(script: Script, classes: int, default: int, expected: int) -> None:
    script.target_classes = default
    script.images = pixel_batch([0, 0, 0], classes)
    script.labels = torch.zeros(3, dtype=torch.long)
    run_stages(script, AutoAttack("linf", "custom", ("apgd-t",)), PixelClassifier(classes))
    (runner,) = script.runners
    assert (runner.apgd_targeted.n_target_classes, runner.fab.n_target_classes) == (expected, expected)


@pytest.mark.parametrize("training", [True, False])
def test_the_model_is_attacked_in_eval_mode_and_its_mode_restored(script: Script, training: bool) -> None:
    script.fools = {"apgd-ce": {2}}
    net = PixelClassifier()
    net.train(training)
    run_stages(script, AutoAttack("linf", "custom", ("apgd-ce", "apgd-t")), net)
    assert net.modes and not any(net.modes)
    assert [call.training for call in script.calls] == [False, False]
    assert net.training is training


def test_a_failing_stage_still_restores_the_mode_and_the_logger(script: Script) -> None:
    script.fail_at = "apgd-t"
    script.fools = {"apgd-ce": {2}}
    net = PixelClassifier().train()
    with pytest.raises(RuntimeError, match="apgd-t failed"):
        run_stages(script, AutoAttack("linf", "custom", ("apgd-ce", "apgd-t")), net)
    assert net.training  # and the fixture checks that the logger has its handlers of before


def test_pyautoattacks_warnings_are_kept_once_each_and_not_its_info_lines(script: Script) -> None:
    script.warnings = ("first warning", "second warning", "first warning")
    attack = AutoAttack("linf", "custom", ("apgd-ce", "apgd-t"))
    run_stages(script, attack, PixelClassifier())
    assert len(script.calls) == 2
    assert attack.warnings == ["first warning", "second warning"]  # not another logger's warning either


def test_the_callers_random_stream_is_left_alone(script: Script) -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    run_stages(script, AutoAttack("linf", "custom", ("apgd-ce",)), PixelClassifier())
    assert script.calls  # the stand-in reseeded the stream inside the stage
    assert torch.equal(torch.rand(3), expected)


# ---- option validation


@pytest.mark.parametrize(("arguments", "message"), [
    (("linf", "custom", ()), "version custom needs its stages, e.g. apgd-ce,apgd-t"),
    (("linf", "custom", ("apgd-ce", "cw", "pgd")), "unknown AutoAttack stage 'cw'; expected some of " + ", ".join(STAGES)),
    (("linf", "standard", ("apgd-ce",)), "stages are chosen by version standard; give them with version custom"),
    (("linf", "fast", ()), "version 'fast': expected standard, plus, rand or custom"),
    (("l1", "standard", ()), "norm 'l1': expected linf or l2"),
])
def test_autoattack_refuses_bad_options_naming_them(arguments: tuple[str, str, tuple[str, ...]], message: str) -> None:
    with pytest.raises(ValueError) as error:
        AutoAttack(*arguments)
    assert str(error.value) == message


def test_every_version_runs_its_stages_in_pyautoattacks_order() -> None:
    assert AutoAttack().stage_names == ("apgd-ce", "apgd-t", "fab-t", "square")
    assert AutoAttack("linf", "plus").stage_names == ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t")
    assert AutoAttack("l2", "rand").stage_names == ("apgd-ce", "apgd-dlr")
    assert AutoAttack("l2", "custom", ("square", "apgd-ce")).stage_names == ("square", "apgd-ce")
    assert {stage for stages in VERSIONS.values() for stage in stages} == set(STAGES)


def test_norm_seed_clip_and_the_default_eps_of_each_norm() -> None:
    linf, l2 = AutoAttack("linf", seed=3), AutoAttack("l2")
    assert (linf.norm, linf.seed, linf.version, linf.clip, linf.warnings) == ("linf", 3, "standard", True, [])
    assert (l2.norm, l2.seed) == ("l2", 0)
    assert linf.eps_defaults == (8 / 255,) and l2.eps_defaults == (0.5,)
    assert APGDDLR("l2").eps_defaults == (0.5,) and APGDCE().eps_defaults == (8 / 255,)
    assert (APGDCE().norm, APGDCE().seed, APGDCE().iterations, APGDCE().restarts, APGDCE().clip) == ("linf", 0, 100, 1, True)
    with pytest.raises(ValueError, match=r"^norm 'L2': expected linf or l2$"):
        APGDCE("L2")


def test_minimum_classes_is_the_most_any_stage_needs() -> None:
    assert minimum_classes(()) == 2
    assert minimum_classes(("apgd-ce", "fab", "square")) == 2
    assert minimum_classes(("apgd-ce", "apgd-dlr")) == 3
    assert minimum_classes(("apgd-dlr", "apgd-t", "fab-t")) == 4
    assert minimum_classes(VERSIONS["standard"]) == 4 and minimum_classes(VERSIONS["rand"]) == 3


def test_missing_pyautoattack_names_the_attack_and_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyautoattack", None)  # import fails as when not installed
    with pytest.raises(MissingExtraError) as error:
        require_pyautoattack("apgd-dlr")
    assert str(error.value) == f"--attack apgd-dlr needs the pyautoattack package (the autoattack extra): {INSTALL_HINT}"
    assert isinstance(error.value, ImportError) and INSTALL_HINT == 'pip install -e ".[autoattack]"'
    images, labels = tiny_batch()
    for attack in (AutoAttack("linf", "custom", ("apgd-ce",)), APGDDLR()):
        with pytest.raises(MissingExtraError, match=f"^--attack {attack.name} needs"):
            attack(tiny_classifier(), images, labels, 0.1)


def test_attacks_by_name() -> None:
    assert AUTOATTACKS == {"autoattack": AutoAttack, "apgd-ce": APGDCE, "apgd-dlr": APGDDLR}
    assert (APGDCE.loss, APGDDLR.loss, APGD.loss) == ("ce", "dlr", "ce")


# ---- APGD alone


@dataclass
class ApgdScript:
    built: list[dict[str, Any]] = field(default_factory=list)
    perturbed: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)


@pytest.fixture
def apgd_script(monkeypatch: pytest.MonkeyPatch) -> Iterator[ApgdScript]:
    scripted = ApgdScript()

    class StandInAPGDAttack:
        def __init__(self, predict: nn.Module, **arguments: Any) -> None:
            self.predict = predict
            self.arguments = arguments
            scripted.built.append({"predict": predict, **arguments})

        def perturb(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
            assert y is not None
            scripted.perturbed.append((x, y))
            self.arguments["logger"].warning("apgd's warning")
            self.arguments["logger"].warning("apgd's warning")
            torch.manual_seed(99)  # pyautoattack reseeds the global stream
            return (x + 0.25).clamp(0, 1).requires_grad_()  # a result still in a graph: gat-tui detaches it

    package = ModuleType("pyautoattack")
    existing = sys.modules.get("pyautoattack")
    if existing is not None and getattr(existing, "__file__", None) is None:  # the `script` fixture's stand-in: keep its AutoAttack
        package.AutoAttack = existing.AutoAttack  # type: ignore[attr-defined]
    module = ModuleType("pyautoattack.autopgd_base")
    module.APGDAttack = StandInAPGDAttack  # type: ignore[attr-defined]
    package.autopgd_base = module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyautoattack", package)
    monkeypatch.setitem(sys.modules, "pyautoattack.autopgd_base", module)
    logger = logging.getLogger(LOGGER)
    handlers = list(logger.handlers)
    yield scripted
    assert logger.handlers == handlers


# the attacks are built in the test, not at collection: mutmut imports the test modules before it picks a mutant
@pytest.mark.parametrize(("make", "norm", "loss", "iterations", "restarts"), [
    (lambda: APGDCE("linf", seed=4), "Linf", "ce", 100, 1),
    (lambda: APGDDLR("l2", seed=4, iterations=7, restarts=3), "L2", "dlr", 7, 3),
])
def test_apgd_gets_its_loss_norm_iterations_restarts_eps_seed_and_device(
    apgd_script: ApgdScript, make: Callable[[], APGD], norm: str, loss: str, iterations: int, restarts: int
) -> None:
    attack = make()
    images, labels = tiny_batch()
    net = tiny_classifier()
    torch.manual_seed(5)
    expected_draw = torch.rand(3)
    torch.manual_seed(5)
    result = attack.perturb(net, images, labels, 0.3)
    assert torch.equal(torch.rand(3), expected_draw)  # pyautoattack's reseeding did not reach the caller's stream
    (built,) = apgd_script.built
    assert built == {"predict": net, "n_iter": iterations, "norm": norm, "n_restarts": restarts, "eps": 0.3, "seed": 4,
                     "loss": loss, "device": images.device, "logger": logging.getLogger(LOGGER)}
    ((attacked, attacked_labels),) = apgd_script.perturbed
    assert attacked is images and attacked_labels is labels
    expected = (images + 0.25).clamp(0, 1)
    assert torch.equal(result.adversarial, expected) and not result.adversarial.requires_grad
    torch.testing.assert_close(result.perturbation, expected - images, rtol=0, atol=0)
    assert attack.warnings == ["apgd's warning"]


def test_apgd_called_runs_in_eval_mode_and_restores_training(apgd_script: ApgdScript) -> None:
    images, labels = tiny_batch()
    net = tiny_classifier().train()
    modes: list[bool] = []
    net.register_forward_pre_hook(lambda module, args: modes.append(module.training))

    class Checking(APGDCE):
        def perturb(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Any:
            source(images)
            return super().perturb(source, images, labels, eps)

    Checking()(net, images, labels, 0.1)
    assert modes == [False] and net.training and len(apgd_script.built) == 1


# ---- the real package


@pytest.mark.usefixtures("pyautoattack")
def test_stand_in_matches_pyautoattacks_interface() -> None:
    """What gat-tui uses of pyautoattack exists there as the stand-ins above have it (no attack is run)."""
    import pyautoattack
    from pyautoattack.autopgd_base import APGDAttack

    net = tiny_classifier()
    runner = pyautoattack.AutoAttack(net, norm="L2", eps=0.5, version="custom", attacks=["apgd-ce"], seed=0, device=torch.device("cpu"))
    assert runner.apgd_targeted.n_target_classes == 9 and runner.fab.n_target_classes == 9
    assert isinstance(runner.verbose, bool) and runner.attacks_to_run == ["apgd-ce"]
    parameters = inspect.signature(runner.run_standard_evaluation).parameters
    assert parameters["batch_size"].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(parameters)[:2] == ["x_orig", "y_orig"]
    accepted = inspect.signature(APGDAttack).parameters
    assert {"n_iter", "norm", "n_restarts", "eps", "seed", "loss", "device", "logger"} <= set(accepted)
    assert pyautoattack.AutoAttack(net, version="standard").attacks_to_run == list(VERSIONS["standard"])
    assert pyautoattack.AutoAttack(net, version="plus").attacks_to_run == list(VERSIONS["plus"])
    assert pyautoattack.AutoAttack(net, version="rand").attacks_to_run == list(VERSIONS["rand"])


@pytest.mark.usefixtures("pyautoattack")
@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.05), ("l2", 0.5)])
def test_every_standard_stage_runs_through_pyautoattack_at_a_few_iterations(monkeypatch: pytest.MonkeyPatch, norm: str, eps: float) -> None:
    """gat-tui's cascade around the real package, its attacks cut to a few iterations so that it takes a moment."""
    import pyautoattack

    class Short(pyautoattack.AutoAttack):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            for apgd in (self.apgd, self.apgd_targeted):
                apgd.n_iter, apgd.n_iter_2, apgd.n_iter_min, apgd.size_decr = 4, 1, 1, 1
            self.fab.n_iter, self.square.n_queries = 4, 8

    monkeypatch.setattr(pyautoattack, "AutoAttack", Short)
    net, (images, labels) = tiny_classifier().train(), tiny_batch(misclassified=2)
    stages = list(AutoAttack(norm).stages(net, images, labels, eps))
    assert [stage for stage, _ in stages] == list(VERSIONS["standard"])
    accuracies = [robust_accuracy(net, result.adversarial, labels) for _, result in stages]
    assert accuracies == sorted(accuracies, reverse=True) and accuracies[0] <= robust_accuracy(net, images, labels) == pytest.approx(10 / 12)
    for _, result in stages:
        size = result.linf() if norm == "linf" else result.l2()
        assert size.max() <= eps + 1e-5
        assert 0 <= result.adversarial.min() and result.adversarial.max() <= 1
        torch.testing.assert_close(result.perturbation, result.adversarial - images, rtol=0, atol=0)
        assert torch.equal(result.adversarial[:2], images[:2])  # misclassified before any attack: left alone
        # an image is either as it was or misclassified: a stage's failed try is not kept
        kept = (result.adversarial != images).flatten(1).any(1)
        assert (net(result.adversarial).argmax(1)[kept] != labels[kept]).all()
    assert net.training


def test_on_the_cpu_no_accelerators_random_stream_is_forked(script: Script, apgd_script: ApgdScript, monkeypatch: pytest.MonkeyPatch) -> None:
    # fork_rng(devices=None) would fork (and warn about) every visible GPU's stream around a CPU attack
    forked: list[object] = []
    fork_rng = torch.random.fork_rng

    def recording(devices: object = None, **kwargs: Any) -> Any:
        forked.append(devices)
        return fork_rng(devices=devices, **kwargs)

    monkeypatch.setattr(torch.random, "fork_rng", recording)
    run_stages(script, AutoAttack("linf", "custom", ("apgd-ce", "apgd-t")), PixelClassifier())
    images, labels = tiny_batch()
    APGDCE().perturb(tiny_classifier(), images, labels, 0.1)
    assert forked == [[], [], []]  # two stages, then APGD
