"""`gat-tui eval --model SPEC --weights FILE.safetensors`: a network gat-tui did not train, from a user's factory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as functional
from conftest import Cli
from safetensors.torch import save_file

from gat_tui.architectures import Normalized
from gat_tui.checkpoints import CheckpointError
from gat_tui.config import DataConfig
from gat_tui.data import load_splits, to_model_input
from gat_tui.robustness.external import ExternalModel, evaluate_model
from gat_tui.robustness.options import EvalOptions

TESTS = Path(__file__).resolve().parent.parent
SPEC = "support_factory:tiny_classifier"
DATA = ("num_classes=3", "image_size=8", "train_size=96", "val_size=32", "test_size=48")
FGSM_ON_CPU = EvalOptions(attacks=("fgsm:0.1",), device_name="cpu")


def _data() -> DataConfig:
    return DataConfig(dataset="synthetic", image_size=8, num_classes=3, train_size=96, val_size=32, test_size=48)


def _trained(monkeypatch: pytest.MonkeyPatch) -> tuple[torch.nn.Module, float]:
    """The tests' tiny factory network, trained a little outside gat-tui, and its own clean test accuracy."""
    monkeypatch.syspath_prepend(str(TESTS))
    import support_factory

    torch.manual_seed(0)
    network = support_factory.tiny_classifier(num_classes=3, image_shape=(3, 8, 8))
    splits = load_splits(_data())
    images, labels = to_model_input(splits.train_images, channels_last=False), splits.train_labels
    optimizer = torch.optim.Adam(network.parameters(), lr=0.05)
    for _ in range(40):
        optimizer.zero_grad()
        functional.cross_entropy(network(images), labels).backward()
        optimizer.step()
    network.eval()
    with torch.no_grad():
        test = to_model_input(splits.test_images, channels_last=False)
        accuracy = (network(test).argmax(dim=1) == splits.test_labels).float().mean().item()
    return network, accuracy


def test_a_factory_network_from_a_safetensors_state_dict_is_evaluated_as_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    network, accuracy = _trained(monkeypatch)
    assert accuracy > 0.6  # far from chance (1/3): the figures below can tell loaded weights from fresh ones
    weights = tmp_path / "tiny.safetensors"
    save_file(network.state_dict(), str(weights))
    done = evaluate_model(ExternalModel(SPEC, weights, "synthetic", DATA), EvalOptions(attacks=("fgsm:0.1", "pgd-linf:0.1"), device_name="cpu"))
    rows = {row.attack: row for row in done.results}
    assert rows["clean"].accuracy == pytest.approx(accuracy) and done.count == 48 and done.clip
    assert rows["pgd-linf"].accuracy <= rows["clean"].accuracy and rows["fgsm"].pert_linf <= 0.1 + 1e-6

    # the same network behind --normalize takes the bare state dict, and its own (network.*) too
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    normalized = evaluate_model(ExternalModel(SPEC, weights, "synthetic", DATA, (mean, std)), FGSM_ON_CPU)
    wrapped = Normalized(network, mean, std)
    save_file(wrapped.state_dict(), str(tmp_path / "wrapped.safetensors"))
    again = evaluate_model(ExternalModel(SPEC, tmp_path / "wrapped.safetensors", "synthetic", DATA, (mean, std)), FGSM_ON_CPU)
    assert [r.accuracy for r in normalized.results] == [r.accuracy for r in again.results]


def test_wrong_weights_are_refused_naming_file_tensor_and_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    network, _ = _trained(monkeypatch)
    state = network.state_dict()
    cases = {
        "missing": ({k: v for k, v in state.items() if k != "5.bias"}, "missing tensor '5.bias'"),
        "extra": ({**state, "6.weight": torch.zeros(1)}, "unexpected tensor '6.weight'"),
        "shape": ({**state, "5.bias": torch.zeros(4)}, "tensor '5.bias' has shape (4,); this architecture needs (3,)"),
    }
    for name, (tensors, message) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        save_file(tensors, str(path))
        with pytest.raises(CheckpointError) as raised:
            evaluate_model(ExternalModel(SPEC, path, "synthetic", DATA), FGSM_ON_CPU)
        assert message in str(raised.value) and str(path) in str(raised.value) and SPEC in str(raised.value), name


@pytest.mark.slow
def test_eval_cli_with_model_and_weights_and_its_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    network, accuracy = _trained(monkeypatch)
    weights = tmp_path / "tiny.safetensors"
    save_file(network.state_dict(), str(weights))
    env = {"PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]), "COLUMNS": "200"}
    options = ["--dataset", "synthetic", *[item for pair in DATA for item in ("--data", pair)]]
    out = tmp_path / "out.json"
    result = cli("eval", "--model", SPEC, "--weights", str(weights), *options, "--attack", "fgsm:0.1", "--json", str(out), env=env)
    assert result.returncode == 0, result.stderr
    assert "the default for --model" in result.stdout
    record = json.loads(out.read_text())
    assert (record["model"], record["weights"], record["n"]) == (SPEC, str(weights), 48)
    assert record["results"][0]["accuracy"] == pytest.approx(accuracy)

    pickle = tmp_path / "tiny.pt"
    torch.save(network.state_dict(), pickle)
    refused = cli("eval", "--model", SPEC, "--weights", str(pickle), *options, env=env)
    assert refused.returncode == 2 and "a pickle (torch.save's .pt/.pth format), refused" in refused.stderr
    assert "Traceback" not in refused.stderr
    for args, message in [
        ([], "give a CHECKPOINT"),
        (["--model", SPEC], "needs --weights"),
        (["--weights", str(weights)], "--weights: only with --model"),
        (["--model", SPEC, "--weights", str(weights), "--normalize", "0.5"], "--normalize '0.5': expected MEAN/STD"),
        (["--model", "support_factory:missing", "--weights", str(weights), *options], "has no callable 'missing'"),
        (["--model", SPEC, "--weights", str(weights), "--dataset", "synthetic", "--num-classes", "4", "--data", "train_size=96",
          "--data", "val_size=32", "--image-size", "8"], "tensor '5.weight' has shape (3, 8); this architecture needs (4, 8)"),
    ]:
        result = cli("eval", *args, env=env)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
