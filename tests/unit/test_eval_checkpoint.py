"""`evaluate_checkpoint`, as `gat-tui eval CHECKPOINT` runs it, in-process on tiny saved linear models.

The checkpoints hold a linear classifier (`support_factory:no_dropout_classifier`, logits W·x + b)
over 3×4×4 synthetic images of two classes, so each figure is computed here by hand: the
cross-entropy's input gradient of a linear model is Wᵀ(softmax(Wx + b) − onehot(y)), and FGSM's
step is ε times its sign. The target's and the source's weights differ, and the run's saved
config says `perturbation.clip = false`, so a figure taken from the wrong model, split, image
count or clipping rule differs from the one expected.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from gat_tui.architectures import Architecture
from gat_tui.attacks import GATAttack, PGDLinf, RandomL2
from gat_tui.checkpoints import NetworkShape, save_checkpoint
from gat_tui.config import DataConfig, ModelConfig, PerturbationConfig, RunConfig, config_to_toml
from gat_tui.data import load_splits, to_model_input
from gat_tui.robustness import evaluate
from gat_tui.robustness.evaluate import CheckpointEvaluation, LoadedEvaluation, evaluate_checkpoint
from gat_tui.robustness.options import EvalOptions
from gat_tui.robustness.plan import EvalError
from gat_tui.robustness.resume import file_identity

TESTS = Path(__file__).resolve().parent.parent
CLASSIFIER = "support_factory:no_dropout_classifier"
GENERATOR = "support_factory:tiny_generator"
DATA = DataConfig(dataset="synthetic", image_size=4, num_classes=2, train_size=16, val_size=5, test_size=6, eval_batch_size=4)
SHAPE = NetworkShape(num_classes=2, channels=3, height=4, width=4, dropout=0.0)


@pytest.fixture(autouse=True)
def _factories(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS))  # tests/support_factory.py


def linear(seed: int, classes: int = 2, channels: int = 3) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(channels * 16, classes))
    with torch.no_grad():
        model[1].weight.copy_(torch.randn(classes, channels * 16, generator=generator))
        model[1].bias.copy_(torch.randn(classes, generator=generator))
    return model


def save(path: Path, classifier: nn.Module, shape: NetworkShape = SHAPE, generator: nn.Module | None = None) -> Path:
    config = RunConfig(data=DATA, model=ModelConfig(classifier=CLASSIFIER, generator=GENERATOR), perturbation=PerturbationConfig(clip=False))
    networks = {"classifier": classifier} | ({"generator": generator} if generator is not None else {})
    save_checkpoint(path, networks, shape, config_to_toml(config), epoch=1, step=1, architecture=Architecture(CLASSIFIER, generator=GENERATOR))
    return path


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run folder (config.toml beside checkpoints/) with the target's best checkpoint."""
    folder = tmp_path / "run"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.toml").write_text("")
    return save(folder / "checkpoints" / "best.safetensors", linear(0))


def split(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    splits = load_splits(DATA)
    images, labels = (splits.val_images, splits.val_labels) if name == "val" else (splits.test_images, splits.test_labels)
    return to_model_input(images, channels_last=False).double(), labels


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    weight, bias = model[1].weight.double(), model[1].bias.double()
    return ((images.flatten(1) @ weight.T + bias).argmax(1) == labels).double().mean().item()


def fgsm_by_hand(target: nn.Module, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float, clip: bool) -> tuple[float, float, float]:
    weight, bias = source[1].weight.double(), source[1].bias.double()
    x = images.flatten(1)
    gradient = (torch.softmax(x @ weight.T + bias, dim=1) - nn.functional.one_hot(labels, 2).double()) @ weight
    adversarial = x + eps * gradient.sign()
    if clip:
        adversarial = adversarial.clamp(0, 1)
    delta = adversarial - x
    return accuracy(target, adversarial, labels), delta.norm(dim=1).mean().item(), delta.abs().amax(dim=1).mean().item()


def rows(evaluation: CheckpointEvaluation) -> dict[str, tuple[float, float, float]]:
    return {row.attack: (row.accuracy, row.pert_l2, row.pert_linf) for row in evaluation.results}


def options(**changes: object) -> EvalOptions:
    return dataclasses.replace(EvalOptions(attacks=("fgsm:0.3",), device_name="cpu"), **changes)


def test_a_direct_evaluation_of_the_test_split_by_hand(run: Path) -> None:
    done = evaluate_checkpoint(run, options())
    images, labels = split("test")
    target = linear(0)
    assert [row.attack for row in done.results] == ["clean", "fgsm"]
    assert done.results[0].accuracy == pytest.approx(accuracy(target, images, labels))
    # the run's config says clip = false: ‖δ‖∞ is ε for every image, and pixels may leave [0, 1]
    assert rows(done)["fgsm"] == pytest.approx(fgsm_by_hand(target, target, images, labels, 0.3, clip=False), abs=1e-5)
    assert (done.count, done.device, done.clip, done.clip_from_checkpoint) == (6, torch.device("cpu"), False, True)
    assert {row.source for row in done.results} == {None}
    assert done.settings == {} and done.notes == ()


def test_an_indirect_evaluation_attacks_with_the_source_and_judges_with_the_target(run: Path, tmp_path: Path) -> None:
    source = save(tmp_path / "source.safetensors", linear(1))
    done = evaluate_checkpoint(run, options(source=source))
    images, labels = split("test")
    assert done.results[0].accuracy == pytest.approx(accuracy(linear(0), images, labels))  # the target's, not the source's
    expected = fgsm_by_hand(linear(0), linear(1), images, labels, 0.3, clip=False)
    assert expected != pytest.approx(fgsm_by_hand(linear(0), linear(0), images, labels, 0.3, clip=False), abs=1e-5)  # the case tells
    assert rows(done)["fgsm"] == pytest.approx(expected, abs=1e-5)
    assert {row.source for row in done.results} == {str(source)}


def test_the_validation_split_its_first_images_and_clip_chosen_by_the_caller(run: Path) -> None:
    done = evaluate_checkpoint(run, options(split="val", limit=3, clip=True))
    images, labels = split("val")
    images, labels = images[:3], labels[:3]
    target = linear(0)
    assert done.results[0].accuracy == pytest.approx(accuracy(target, images, labels))
    expected = fgsm_by_hand(target, target, images, labels, 0.3, clip=True)
    assert expected != pytest.approx(fgsm_by_hand(target, target, images, labels, 0.3, clip=False), abs=1e-5)  # clipping shows
    assert rows(done)["fgsm"] == pytest.approx(expected, abs=1e-5)
    assert (done.count, done.clip, done.clip_from_checkpoint) == (3, True, False)


@pytest.mark.parametrize(("batch_size", "done_after_each_batch"), [(None, [4, 6]), (5, [5, 6])])
def test_batches_are_the_options_or_the_data_config_s_eval_batch_size(run: Path, batch_size: int | None, done_after_each_batch: list[int]) -> None:
    seen: list[tuple[str, int, int]] = []
    evaluate_checkpoint(run, options(batch_size=batch_size, progress=lambda what, done, total: seen.append((what, done, total))))
    assert seen == [("fgsm ε=0.3", done, 6) for done in done_after_each_batch]


def test_the_default_attacks_and_the_checkpoint_s_own_generator(tmp_path: Path) -> None:
    torch.manual_seed(3)
    from support_factory import tiny_generator

    generator = tiny_generator((3, 4, 4))
    gat_run = save(tmp_path / "gat.safetensors", linear(0), generator=generator)
    done = evaluate_checkpoint(gat_run, options(attacks=(), eps_values=(0.25,)))
    assert [(row.attack, row.eps) for row in done.results] == [("clean", 0.0), ("fgsm", 0.25), ("fgm-l2", 0.25), ("random", 0.25), ("gat", None)]
    images, labels = split("test")
    perturbed = GATAttack(generator.eval(), clip=False)(linear(0), images.float().view(-1, 3, 4, 4), labels)
    assert rows(done)["gat"] == pytest.approx(
        (accuracy(linear(0), perturbed.adversarial.double(), labels), perturbed.l2().mean().item(), perturbed.linf().mean().item()), abs=1e-5
    )
    # without a generator, no gat row; a generator named by the caller is used for a checkpoint that has none
    plain = save(tmp_path / "plain.safetensors", linear(0))
    assert [row.attack for row in evaluate_checkpoint(plain, options(attacks=(), eps_values=(0.25,))).results] == ["clean", "fgsm", "fgm-l2", "random"]
    named = evaluate_checkpoint(plain, options(attacks=("gat",), generator=gat_run))
    assert rows(named)["gat"] == pytest.approx(rows(done)["gat"], abs=1e-6)


def test_a_source_of_other_classes_or_channels_is_refused_naming_both_files(run: Path, tmp_path: Path) -> None:
    three = save(tmp_path / "three.safetensors", linear(1, classes=3), dataclasses.replace(SHAPE, num_classes=3))
    with pytest.raises(EvalError) as raised:
        evaluate_checkpoint(run, options(source=three))
    assert str(raised.value) == f"--source {three}: a model of 3 classes cannot attack one of 2 ({run})"
    grey = save(tmp_path / "grey.safetensors", linear(1, channels=1), dataclasses.replace(SHAPE, channels=1))
    with pytest.raises(EvalError, match="--source .*grey.safetensors: a model of 2 classes cannot attack one of 2"):
        evaluate_checkpoint(run, options(source=grey))


def loaded_by(run: Path, monkeypatch: pytest.MonkeyPatch, chosen: EvalOptions) -> LoadedEvaluation:
    """What `evaluate_checkpoint` hands to `attack_all`: the models, data, plans and resume spec."""
    captured: list[LoadedEvaluation] = []

    def capture(loaded: LoadedEvaluation, options: EvalOptions) -> CheckpointEvaluation:
        captured.append(loaded)
        return CheckpointEvaluation([], 0, loaded.device)

    monkeypatch.setattr(evaluate, "attack_all", capture)
    evaluate_checkpoint(run, chosen)
    return captured[0]


def test_the_attacks_are_planned_with_the_options_and_the_checkpoint_s_clip(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = loaded_by(run, monkeypatch, options(attacks=("pgd-linf", "fgsm:0.1"), eps_values=(0.2,), pgd_steps=3, pgd_step_size=0.05))
    pgd, fgsm = loaded.plans
    assert isinstance(pgd.attack, PGDLinf) and (pgd.attack.steps, pgd.attack.step_size, pgd.attack.clip) == (3, 0.05, False)
    assert (pgd.eps_values, fgsm.attack.name, fgsm.eps_values, fgsm.attack.clip) == ((0.2,), "fgsm", (0.1,), False)
    assert (loaded.batch_size, loaded.clip, loaded.clip_from_checkpoint, loaded.device) == (4, False, True, torch.device("cpu"))
    assert loaded.source is loaded.target and not loaded.target.training
    assert (loaded.data.num_classes, loaded.data.image_shape, loaded.data.images.shape[0]) == (2, (3, 4, 4), 6)


def test_autoattack_stages_needing_more_classes_are_refused_before_any_work(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyautoattack")
    with pytest.raises(EvalError, match="apgd-dlr needs models of at least 3 classes; this one has 2"):
        loaded_by(run, monkeypatch, options(attacks=("apgd-dlr",)))


def test_autoattack_s_state_goes_to_the_run_s_evals_keyed_by_the_files_and_the_images(run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = save(tmp_path / "source.safetensors", linear(1))
    notices: list[str] = []
    loaded = loaded_by(run, monkeypatch, options(source=source, split="val", limit=2, on_notice=notices.append))
    assert loaded.resume is not None and loaded.resume.folder == run.parent.parent / "evals"
    assert loaded.resume.identity == {"target": file_identity(run), "source": file_identity(source), "split": "val", "limit": 2}
    loaded.resume.tell("hello")
    assert notices == ["hello"]
    assert loaded_by(run, monkeypatch, options(resumable=False)).resume is None


def test_the_data_folder_chosen_is_where_the_images_are_looked_for(tmp_path: Path) -> None:
    from gat_tui.data.splits import DataError

    with pytest.raises(DataError) as raised:  # offline: the download into the chosen folder fails, naming it
        evaluate.load_eval_data(RunConfig(data=DataConfig(dataset="mnist")), EvalOptions(data_dir=tmp_path / "mine"), torch.device("cpu"))
    assert f"into {tmp_path / 'mine' / 'MNIST' / 'raw'} (" in str(raised.value)


def test_random_noise_is_drawn_from_seed_0_and_the_caller_s_random_stream_is_left_alone(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, labels = split("test")
    target = linear(0)
    torch.manual_seed(0)  # what the evaluation's noise must be: seed 0's first draws, batch by batch (4, then 2)
    expected = []
    for start in (0, 4):
        noise = RandomL2(clip=False)(target, images[start : start + 4].float().view(-1, 3, 4, 4), labels[start : start + 4], 0.5)
        expected.append((accuracy(target, noise.adversarial.double(), labels[start : start + 4]) * noise.l2().shape[0], noise.linf().sum().item()))
    loaded = loaded_by(run, monkeypatch, options(attacks=("random:0.5",)))
    monkeypatch.undo()
    torch.manual_seed(5)
    done = evaluate.attack_all(loaded, options(attacks=("random:0.5",)))
    after = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(3))  # the attacks ran on a forked stream: the caller's next draws are unchanged
    random_row = done.results[1]
    assert random_row.accuracy == pytest.approx(sum(correct for correct, _ in expected) / 6)
    assert random_row.pert_linf == pytest.approx(sum(linf for _, linf in expected) / 6, abs=1e-6)
    assert random_row.pert_l2 == pytest.approx(0.5, abs=1e-5)  # unclipped: every image's noise has ‖δ‖₂ = ε


def test_attack_all_gathers_each_warning_once_and_the_attacks_settings(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = loaded_by(run, monkeypatch, options(attacks=("pgd-linf:0.1", "fgsm:0.1", "pgd-l2:0.2"), pgd_steps=2))
    monkeypatch.undo()
    plans = loaded.plans
    plans[0].attack.warnings = ["check: gradient masking?", "check: randomness"]  # type: ignore[attr-defined]
    plans[2].attack.warnings = ["check: randomness", "check: too few classes"]  # type: ignore[attr-defined]
    done = evaluate.attack_all(loaded, options())
    assert done.notes == ("check: gradient masking?", "check: randomness", "check: too few classes")
    assert done.settings == {
        "pgd-linf": {"steps": 2, "step_size": "2.5*eps/steps", "random_start": True, "restarts": 1},
        "pgd-l2": {"steps": 2, "step_size": "2.5*eps/steps", "random_start": True, "restarts": 1},
    }
    assert [row.attack for row in done.results] == ["clean", "pgd-linf", "fgsm", "pgd-l2"] and done.count == 6
    assert (done.clip, done.clip_from_checkpoint, done.device) == (False, True, torch.device("cpu"))


def test_a_network_that_flattens_with_view_is_given_images_in_the_default_layout(tmp_path: Path) -> None:
    # hand-written networks often flatten with .view(), which fails on channels-last images
    from support_factory import view_classifier

    torch.manual_seed(2)
    network = view_classifier(2, (3, 4, 4))
    path = tmp_path / "view.safetensors"
    config = RunConfig(data=DATA, model=ModelConfig(classifier="support_factory:view_classifier"))
    save_checkpoint(path, {"classifier": network}, SHAPE, config_to_toml(config), 1, 1, architecture=Architecture("support_factory:view_classifier"))
    done = evaluate_checkpoint(path, options(attacks=("fgsm:0.1",)))
    images, labels = split("test")
    with torch.no_grad():
        clean = (network.eval()(images.float().view(-1, 3, 4, 4)).argmax(1) == labels).double().mean().item()
    assert [row.attack for row in done.results] == ["clean", "fgsm"] and done.results[0].accuracy == pytest.approx(clean)


def test_a_limit_of_one_evaluates_one_image(run: Path) -> None:
    # --limit 1 is the smallest limit, not "no limit" (the check is > 0)
    done = evaluate_checkpoint(run, options(split="val", limit=1))
    images, labels = split("val")
    assert done.count == 1
    assert done.results[0].accuracy == pytest.approx(accuracy(linear(0), images[:1], labels[:1]))


def test_match_power_reaches_the_evaluation_of_a_checkpoint(tmp_path: Path) -> None:
    # --match-power adds FGM-L2 and FGSM at the GAT attacker's mean L2 (Fig. 2): the option must get
    # from the checkpoint's evaluation down to the attacks, not only work when called one level down
    torch.manual_seed(3)
    from support_factory import tiny_generator

    gat_run = save(tmp_path / "gat.safetensors", linear(0), generator=tiny_generator((3, 4, 4)))
    done = evaluate_checkpoint(gat_run, options(attacks=("gat",), match_power=True))
    assert [(row.attack, row.matched_to) for row in done.results] == [("clean", None), ("gat", None), ("fgm-l2", "gat"), ("fgsm", "gat")]
    gat_l2 = rows(done)["gat"][1]
    assert done.results[2].eps == pytest.approx(gat_l2, rel=1e-5)  # FGM-L2 at G's mean ‖δ‖₂


def test_autoattack_gets_its_settings_the_source_and_its_state_file_from_the_checkpoint_s_evaluation(run: Path, tmp_path: Path) -> None:
    # what `gat-tui eval CHECKPOINT --attacks autoattack --version custom --aa-attacks apgd-ce --source S`
    # asks must reach AutoAttack itself: the settings (the default, standard, refuses two classes),
    # the source whose gradients attack, and the state file an interrupted evaluation resumes from
    pytest.importorskip("pyautoattack")
    from gat_tui.robustness.plan import AutoAttackOptions

    source = save(tmp_path / "source.safetensors", linear(1))
    custom = AutoAttackOptions(version="custom", stages=("apgd-ce",))
    asked = options(attacks=("autoattack:0.1",), autoattack=custom)
    direct = evaluate_checkpoint(run, asked).results[1]
    indirect = evaluate_checkpoint(run, dataclasses.replace(asked, source=source)).results[1]
    assert (indirect.attack, indirect.version, indirect.norm, indirect.n) == ("autoattack", "custom", "linf", 6)
    assert [stage.attack for stage in indirect.stages] == ["apgd-ce"] and indirect.source == str(source)
    # from the source's gradients: the perturbations differ from the target's own
    assert (indirect.pert_l2, indirect.accuracy) != pytest.approx((direct.pert_l2, direct.accuracy), abs=1e-6)

    def stop_after_the_first_batch(what: str, done: int, total: int) -> None:
        if what == "autoattack ε=0.1" and done == 4:  # batches of 4 (the data config's): 4 of 6 done
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate_checkpoint(run, dataclasses.replace(asked, source=source, progress=stop_after_the_first_batch))
    notices: list[str] = []
    resumed = evaluate_checkpoint(run, dataclasses.replace(asked, source=source, on_notice=notices.append)).results[1]
    assert len(notices) == 1 and notices[0].startswith("resuming AutoAttack from image 4 of 6 (")
    assert (resumed.accuracy, resumed.pert_l2, resumed.pert_linf) == pytest.approx((indirect.accuracy, indirect.pert_l2, indirect.pert_linf))
