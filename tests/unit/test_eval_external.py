"""`gat-tui eval --model SPEC --weights FILE`, in-process: the config it builds, the weights' forms it
takes, and its figures by hand on a linear network (logits W·x + b) over 3×4×4 synthetic images.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from gat_tui.architectures import Normalized
from gat_tui.checkpoints import CheckpointError, NetworkShape, save_checkpoint
from gat_tui.config import ConfigError, DataConfig, ModelConfig, RunConfig, config_to_toml
from gat_tui.data import load_splits, to_model_input
from gat_tui.robustness import external
from gat_tui.robustness.evaluate import CheckpointEvaluation, LoadedEvaluation
from gat_tui.robustness.external import (
    ExternalModel,
    build_external,
    evaluate_model,
    load_state_file,
    model_config,
    parse_normalize,
)
from gat_tui.robustness.options import EvalOptions
from gat_tui.robustness.plan import EvalError
from gat_tui.robustness.resume import file_identity

TESTS = Path(__file__).resolve().parent.parent
SPEC = "support_factory:no_dropout_classifier"
DATA = ("num_classes=2", "image_size=4", "train_size=16", "val_size=5", "test_size=6", "eval_batch_size=4")
FGSM = EvalOptions(attacks=("fgsm:0.3",), device_name="cpu")


@pytest.fixture(autouse=True)
def _factories(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS))  # tests/support_factory.py


def linear(seed: int, classes: int = 2) -> nn.Sequential:
    generator = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, classes))
    with torch.no_grad():
        model[1].weight.copy_(torch.randn(classes, 48, generator=generator))
        model[1].bias.copy_(torch.randn(classes, generator=generator))
    return model


def weights_file(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(path))
    return path


def test_a_network_s_figures_by_hand(tmp_path: Path) -> None:
    network = linear(0)
    weights = weights_file(tmp_path / "net.safetensors", network.state_dict())
    done = evaluate_model(ExternalModel(SPEC, weights, "synthetic", DATA), FGSM)
    splits = load_splits(DataConfig(dataset="synthetic", image_size=4, num_classes=2, train_size=16, val_size=5, test_size=6))
    x = to_model_input(splits.test_images, channels_last=False).double().flatten(1)
    labels = splits.test_labels
    weight, bias = network[1].weight.double(), network[1].bias.double()
    clean = ((x @ weight.T + bias).argmax(1) == labels).double().mean().item()
    gradient = (torch.softmax(x @ weight.T + bias, 1) - nn.functional.one_hot(labels, 2).double()) @ weight
    adversarial = (x + 0.3 * gradient.sign()).clamp(0, 1)  # clip is on by default for networks gat-tui did not train
    delta = adversarial - x
    fgsm = (((adversarial @ weight.T + bias).argmax(1) == labels).double().mean().item(), delta.norm(dim=1).mean().item(),
            delta.abs().amax(dim=1).mean().item())
    assert delta.norm(dim=1).mean() < 0.3 * 48**0.5 - 1e-3  # clipping shortened some δ: the case tells clip on from off
    clean_row, fgsm_row = done.results
    assert (clean_row.attack, fgsm_row.attack, fgsm_row.eps, fgsm_row.source) == ("clean", "fgsm", 0.3, None)
    assert clean_row.accuracy == pytest.approx(clean)
    assert (fgsm_row.accuracy, fgsm_row.pert_l2, fgsm_row.pert_linf) == pytest.approx(fgsm, abs=1e-5)
    assert (done.count, done.clip, done.clip_from_checkpoint, done.device) == (6, True, False, torch.device("cpu"))


def test_parse_normalize_reads_mean_and_std_per_channel() -> None:
    assert parse_normalize("0.5,0.25,1/0.2, 0.3,4") == ((0.5, 0.25, 1.0), (0.2, 0.3, 4.0))
    example = "e.g. --normalize 0.4914,0.4822,0.4465/0.2470,0.2435,0.2616"
    with pytest.raises(EvalError) as raised:
        parse_normalize("0.5,0.5,0.5")
    assert str(raised.value) == f"--normalize '0.5,0.5,0.5': expected MEAN/STD, {example}"
    with pytest.raises(EvalError) as raised:
        parse_normalize("0.5/x")
    assert str(raised.value) == f"--normalize '0.5/x': not comma-separated numbers; expected {example}"
    with pytest.raises(EvalError, match="--normalize 'x/0.5': not comma-separated numbers"):
        parse_normalize("x/0.5")


def test_the_config_of_a_named_dataset_with_data_overrides_and_normalisation(tmp_path: Path) -> None:
    synthetic = model_config(ExternalModel(SPEC, tmp_path / "w.safetensors", "synthetic"))
    assert (synthetic.data.dataset, synthetic.data.val_size, synthetic.data.train_size) == ("synthetic", 200, 2000)
    assert synthetic.model.classifier == SPEC and synthetic.model.normalize is None
    cifar = model_config(ExternalModel(SPEC, tmp_path / "w.safetensors", "cifar10", ("test_size=7",), ((0.5, 0.4, 0.3), (0.2, 0.1, 0.3))))
    assert (cifar.data.dataset, cifar.data.val_size, cifar.data.test_size) == ("cifar10", 5000, 7)
    assert cifar.model.normalize is not None
    assert (tuple(cifar.model.normalize.mean), tuple(cifar.model.normalize.std)) == ((0.5, 0.4, 0.3), (0.2, 0.1, 0.3))
    with pytest.raises(ConfigError) as raised:  # an override the schema has no place for names itself
        model_config(ExternalModel(SPEC, tmp_path / "w.safetensors", "synthetic", ("nokey.x=1",)))
    assert str(raised.value).startswith("--data 'nokey.x=1': unknown section 'nokey'; allowed sections: none")
    with pytest.raises(ConfigError, match=r"^gat-tui eval --model options: "):
        model_config(ExternalModel(SPEC, tmp_path / "w.safetensors", "synthetic", ("val_size=5000",)))  # val_size >= train_size


def test_the_config_of_a_preset_file_or_a_run_folder_takes_its_data(tmp_path: Path) -> None:
    data = DataConfig(dataset="synthetic", image_size=8, num_classes=3, train_size=40, val_size=4, test_size=9)
    preset = tmp_path / "preset.toml"
    preset.write_text(config_to_toml(RunConfig(data=data, model=ModelConfig(classifier="allconv"))))
    from_preset = model_config(ExternalModel(SPEC, tmp_path / "w.safetensors", str(preset), ("test_size=5",)))
    assert from_preset.data == dataclasses.replace(data, test_size=5)
    assert from_preset.model.classifier == SPEC  # the spec given, not the preset's model
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(preset.read_text())
    assert model_config(ExternalModel(SPEC, tmp_path / "w.safetensors", str(run))).data == data
    missing = tmp_path / "nothing"
    with pytest.raises(EvalError) as raised:
        model_config(ExternalModel(SPEC, tmp_path / "w.safetensors", str(missing)))
    assert str(raised.value) == (
        f"--dataset {str(missing)!r}: expected one of cifar10, cifar100, mnist, fashion_mnist, svhn, synthetic, imagefolder, "
        "a preset file or a run folder"
    )
    missing.mkdir()  # a folder without config.toml
    with pytest.raises(EvalError, match="--dataset"):
        model_config(ExternalModel(SPEC, tmp_path / "w.safetensors", str(missing)))


def test_build_external_loads_the_weights_in_eval_mode_and_names_a_spec_that_does_not_build(tmp_path: Path) -> None:
    network = linear(0)
    weights = weights_file(tmp_path / "net.safetensors", network.state_dict())
    config = model_config(ExternalModel(SPEC, weights, "synthetic", DATA))
    built = build_external(ExternalModel(SPEC, weights, "synthetic", DATA), 2, (3, 4, 4), config)
    assert not built.training
    assert all(torch.equal(value, network.state_dict()[key]) for key, value in built.state_dict().items())
    failing = "support_factory:failing_classifier"
    with pytest.raises(EvalError) as raised:
        build_external(ExternalModel(failing, weights), 2, (3, 4, 4), model_config(ExternalModel(failing, weights, "synthetic", DATA)))
    assert str(raised.value).startswith("--model: ") and str(raised.value).endswith(" (for 2 classes, images (3, 4, 4))")
    assert "this factory always fails" in str(raised.value)


@pytest.mark.parametrize("form", ["plain", "checkpoint", "bare-under-normaliser", "normaliser's-own", "checkpoint-under-normaliser"])
def test_each_accepted_form_of_the_weights_loads(tmp_path: Path, form: str) -> None:
    network = linear(0)
    normalised = form in ("bare-under-normaliser", "normaliser's-own", "checkpoint-under-normaliser")
    state = Normalized(network, (0.5,) * 3, (0.25,) * 3).state_dict() if form == "normaliser's-own" else network.state_dict()
    if form.startswith("checkpoint"):
        state = {f"classifier.{key}": value for key, value in state.items()} | {"generator.0.weight": torch.zeros(1)}
    path = weights_file(tmp_path / "w.safetensors", dict(state))
    fresh: nn.Module = linear(7)
    if normalised:
        fresh = Normalized(fresh, (0.5,) * 3, (0.25,) * 3)
    load_state_file(path, fresh, SPEC)
    inner = fresh.network if isinstance(fresh, Normalized) else fresh
    assert all(torch.equal(value, network.state_dict()[key]) for key, value in inner.state_dict().items())


def test_weights_that_fit_no_form_are_refused_naming_the_file_tensor_and_spec(tmp_path: Path) -> None:
    state = dict(linear(0).state_dict())
    state["1.bias"] = torch.zeros(3)
    path = weights_file(tmp_path / "w.safetensors", state)
    with pytest.raises(CheckpointError) as raised:
        load_state_file(path, linear(7), SPEC)
    assert str(raised.value) == f"--weights {path}: tensor '1.bias' has shape (3,); this architecture needs (2,) (--model {SPEC!r})"
    prefixed = weights_file(tmp_path / "c.safetensors", {"classifier.1.weight": torch.zeros(2, 48)})
    with pytest.raises(CheckpointError, match=r"missing tensor 'classifier\.1\.bias'"):  # the checkpoint form fits best: its name
        load_state_file(prefixed, linear(7), SPEC)


def test_a_checkpoint_of_another_network_is_refused_in_the_checkpoint_s_own_names(tmp_path: Path) -> None:
    # a gat-tui checkpoint of another architecture: no form shares a name with the network, so the
    # form with the fewest differences (the checkpoint's, classifier.*) is the one the error speaks of
    other = {"classifier.fc.weight": torch.zeros(2, 48), "classifier.fc.bias": torch.zeros(2), "generator.0.weight": torch.zeros(1)}
    path = weights_file(tmp_path / "other.safetensors", other)
    model = ExternalModel(SPEC, path, "synthetic", DATA)
    with pytest.raises(CheckpointError) as raised:
        build_external(model, 2, (3, 4, 4), model_config(model))
    assert str(raised.value) == f"--weights {path}: missing tensor 'classifier.1.bias' (2 missing in all) (--model {SPEC!r})"


def loaded_by(model: ExternalModel, chosen: EvalOptions, monkeypatch: pytest.MonkeyPatch) -> LoadedEvaluation:
    captured: list[LoadedEvaluation] = []

    def capture(loaded: LoadedEvaluation, options: EvalOptions) -> CheckpointEvaluation:
        captured.append(loaded)
        return CheckpointEvaluation([], 0, loaded.device)

    monkeypatch.setattr(external, "attack_all", capture)
    evaluate_model(model, chosen)
    return captured[0]


def test_what_evaluate_model_loads_plans_and_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nets").mkdir()
    weights = weights_file(tmp_path / "nets" / "net.safetensors", linear(0).state_dict())
    model = ExternalModel(SPEC, weights, "synthetic", DATA, ((0.5,) * 3, (0.25,) * 3))
    notices: list[str] = []
    chosen = dataclasses.replace(FGSM, attacks=("pgd-linf", "fgm-l2:0.5"), eps_values=(0.2,), pgd_steps=3, pgd_step_size=0.05,
                                 split="val", limit=3, on_notice=notices.append)
    loaded = loaded_by(model, chosen, monkeypatch)
    pgd, fgm = loaded.plans
    assert (pgd.attack.name, pgd.eps_values, pgd.attack.steps, pgd.attack.step_size, pgd.attack.clip) == ("pgd-linf", (0.2,), 3, 0.05, True)  # type: ignore[attr-defined]
    assert (fgm.attack.name, fgm.eps_values, fgm.attack.clip) == ("fgm-l2", (0.5,), True)
    assert (loaded.batch_size, loaded.clip, loaded.clip_from_checkpoint, loaded.device) == (4, True, False, torch.device("cpu"))
    assert isinstance(loaded.target, Normalized) and loaded.source is loaded.target and not loaded.target.training
    assert (loaded.data.images.shape[0], loaded.data.num_classes, loaded.data.image_shape) == (3, 2, (3, 4, 4))
    assert loaded.resume is not None and loaded.resume.folder == tmp_path / "nets"
    assert loaded.resume.identity == {
        "model": SPEC, "weights": file_identity(weights), "dataset": "synthetic", "data": list(DATA),
        "normalize": ((0.5,) * 3, (0.25,) * 3), "source": None, "split": "val", "limit": 3,
    }
    loaded.resume.tell("note")
    assert notices == ["note"]
    unclipped = loaded_by(model, dataclasses.replace(chosen, clip=False, batch_size=2, resumable=False), monkeypatch)
    assert (unclipped.clip, unclipped.batch_size, unclipped.resume, unclipped.plans[0].attack.clip) == (False, 2, None, False)


def test_default_attacks_a_source_checkpoint_and_a_named_generator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = weights_file(tmp_path / "net.safetensors", linear(0).state_dict())
    model = ExternalModel(SPEC, weights, "synthetic", DATA)
    torch.manual_seed(3)
    from support_factory import tiny_generator

    shape = NetworkShape(num_classes=2, channels=3, height=4, width=4, dropout=0.0)
    config = config_to_toml(RunConfig(model=ModelConfig(classifier=SPEC, generator="support_factory:tiny_generator")))
    from gat_tui.architectures import Architecture

    architecture = Architecture(SPEC, generator="support_factory:tiny_generator")
    source = tmp_path / "source.safetensors"
    save_checkpoint(source, {"classifier": linear(1), "generator": tiny_generator((3, 4, 4))}, shape, config, 1, 1, architecture=architecture)
    plain = loaded_by(model, dataclasses.replace(FGSM, attacks=()), monkeypatch)
    assert [plan.attack.name for plan in plain.plans] == ["fgsm", "fgm-l2", "random"]
    loaded = loaded_by(model, dataclasses.replace(FGSM, attacks=(), source=source, generator=source), monkeypatch)
    assert [plan.attack.name for plan in loaded.plans] == ["fgsm", "fgm-l2", "random", "gat"]
    assert loaded.source is not loaded.target and torch.equal(loaded.source[1].weight, linear(1)[1].weight)  # type: ignore[index]
    assert loaded.plans[3].attack.generator[0].weight.shape == (8, 3, 3, 3)  # type: ignore[attr-defined]
    three = tmp_path / "three.safetensors"
    save_checkpoint(three, {"classifier": linear(1, classes=3)}, dataclasses.replace(shape, num_classes=3), config, 1, 1, architecture=architecture)
    with pytest.raises(EvalError) as raised:
        loaded_by(model, dataclasses.replace(FGSM, source=three), monkeypatch)
    assert str(raised.value) == f"--source {three}: a model of 3 classes cannot attack one of 2"


def test_an_unknown_attack_is_refused_before_the_data_is_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_data(*args: object) -> None:
        raise AssertionError("the data was loaded before the attacks were checked")

    monkeypatch.setattr(external, "load_eval_data", no_data)
    with pytest.raises(EvalError, match="--attack 'cw': unknown"):
        evaluate_model(ExternalModel(SPEC, tmp_path / "w.safetensors", "synthetic", DATA), dataclasses.replace(FGSM, attacks=("cw",)))


def test_autoattack_stages_needing_more_classes_are_refused_for_the_data_s_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyautoattack")
    weights = weights_file(tmp_path / "net.safetensors", linear(0).state_dict())
    with pytest.raises(EvalError, match="apgd-dlr needs models of at least 3 classes; this one has 2"):
        loaded_by(ExternalModel(SPEC, weights, "synthetic", DATA), dataclasses.replace(FGSM, attacks=("apgd-dlr",)), monkeypatch)


def test_autoattack_is_built_with_the_options_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # --norm l2 --version custom --aa-attacks apgd-ce must reach the AutoAttack that runs
    pytest.importorskip("pyautoattack")
    from gat_tui.attacks import AutoAttack
    from gat_tui.robustness.plan import AutoAttackOptions

    weights = weights_file(tmp_path / "net.safetensors", linear(0).state_dict())
    custom = AutoAttackOptions(norm="l2", version="custom", stages=("apgd-ce",))
    loaded = loaded_by(ExternalModel(SPEC, weights, "synthetic", DATA), dataclasses.replace(FGSM, attacks=("autoattack:0.5",), autoattack=custom), monkeypatch)
    (plan,) = loaded.plans
    assert isinstance(plan.attack, AutoAttack) and plan.eps_values == (0.5,)
    assert (plan.attack.norm, plan.attack.version, plan.attack.stage_names) == ("l2", "custom", ("apgd-ce",))
