"""Bad presets, overrides and sweep files: each refused with one message naming file, key, value
and what is allowed (a ConfigError, which the CLI turns into `error: ...` and exit status 2),
never a traceback from deep inside training."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Cli

from gat_tui.config import ConfigError, load_preset
from gat_tui.presets import load_named_preset
from gat_tui.sweep.plan import load_sweep

TOO_BIG_SEED = 2**63  # one past the largest signed 64-bit integer


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (f"seed = {TOO_BIG_SEED}\n", ["'seed'", str(TOO_BIG_SEED), f"<= {2**63 - 1}"]),
        (f"[data]\nsplit_seed = {TOO_BIG_SEED}\n", ["'data.split_seed'", str(TOO_BIG_SEED), f"<= {2**63 - 1}"]),
        ("[data]\nimage_size = 4096\n", ["'data.image_size'", "4096", "<= 1024"]),
        ("[data]\ntrain_size = 1000000000\n", ["'data.train_size'", "1000000000", "<= 10000000"]),
        ("[data]\ntest_size = 1000000000\n", ["'data.test_size'", "<= 10000000"]),
        ("[data]\nval_size = 1000000000\n", ["'data.val_size'", "<= 10000000"]),
        ("[data]\nbatch_size = 1000000\n", ["'data.batch_size'", "1000000", "<= 65536"]),
        ("[data]\neval_batch_size = 1000000\n", ["'data.eval_batch_size'", "<= 65536"]),
        ("[data]\nnum_classes = 1000000000\n", ["'data.num_classes'", "<= 100000"]),
        ("[train]\nepochs = 1000000000\n", ["'train.epochs'", "<= 100000"]),
        ("[train]\nlr_f = 300\n", ["'train.lr_f'", "300", "<= 10.0"]),
        ("[gat]\nlr_g = 300.0\n", ["'gat.lr_g'", "300.0", "<= 10.0"]),
        ('name = "../../x"\n', ["'name'", "'../../x'", "letters, digits", "not starting with '.'"]),
        ('name = "a/b"\n', ["'name'", "'a/b'", "not starting with '.'"]),
        ('name = "a\\\\b"\n', ["'name'", "not starting with '.'"]),
        ('name = ".hidden"\n', ["'name'", "'.hidden'"]),
        ('name = ""\n', ["'name'", "''"]),
    ],
)
def test_out_of_bounds_presets_are_refused(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = tmp_path / "preset.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_preset(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message


def test_an_override_beyond_the_bounds_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "preset.toml"
    path.write_text('method = "baseline"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"with --set: key 'seed' = {TOO_BIG_SEED} is out of range"):
        load_preset(path, [f"seed={TOO_BIG_SEED}"])


def test_unreadable_presets_name_the_file(tmp_path: Path) -> None:
    latin = tmp_path / "latin.toml"
    latin.write_bytes('description = "r\u00e9sum\u00e9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="^" + re.escape(f"{latin}: not UTF-8 text")):
        load_preset(latin)
    with pytest.raises(ConfigError, match="^" + re.escape(f"{tmp_path}: is a folder, not a preset file")):
        load_preset(tmp_path)
    with pytest.raises(ConfigError, match="^" + re.escape(f"{tmp_path}: is a folder, not a preset file")):
        load_named_preset(str(tmp_path), [])


SWEEP_HEAD = '[[runs]]\npreset = "cifar10_baseline"\n'


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (SWEEP_HEAD + '[[evaluations]]\nattack = "fgsm"\nruns = 5\n', ["'evaluations[0].runs' = 5", "a list of strings"]),
        (SWEEP_HEAD + '[[evaluations]]\nattack = "fgsm"\nsource = 3\n', ["'evaluations[0].source' = 3", "a string"]),
        (SWEEP_HEAD + '[[evaluations]]\nattack = "fgsm"\neps = [1.0, "x"]\n', ["'evaluations[0].eps[1]' = 'x'", "a number"]),
        (SWEEP_HEAD + '[[evaluations]]\nattack = "fgsm"\nmatch_power = 1\n', ["'evaluations[0].match_power' = 1", "true or false"]),
        (SWEEP_HEAD + '[[evaluations]]\nattack = "fgsm"\nname = "../x"\n', ["'evaluations[0].name' = '../x'", "not starting with '.'"]),
        (SWEEP_HEAD + '[[evaluations]]\nattack = "fgsm"\nlimit = 100000000000\n', ["'evaluations[0].limit'", "<= 10000000"]),
        (SWEEP_HEAD + '[paper]\ncifar10_baseline = { mean = "x", std = 0.01 }\n', ["'paper.cifar10_baseline.mean' = 'x'", "a number"]),
        (SWEEP_HEAD + "[paper]\ncifar10_baseline = { mean = 0.9, std = [1] }\n", ["'paper.cifar10_baseline.std' = [1]", "a number"]),
        (SWEEP_HEAD + "[paper]\ncifar10_baseline = 0.9\n", ["'paper.cifar10_baseline' must be a table"]),
        (SWEEP_HEAD + 'label = "../../x"\n', ["'runs[0].label' = '../../x'", "not starting with '.'"]),
        (SWEEP_HEAD + "seed_offset = 9223372036854775807\n", ["'runs[0].seed_offset'", "<= 1000000000"]),
        ('name = "../x"\n' + SWEEP_HEAD, ["'name' = '../x'", "not starting with '.'"]),
        ("seeds = 100000000000\n" + SWEEP_HEAD, ["'seeds' = 100000000000", "<= 100000"]),
        ("runs = 5\n", ["'runs' = 5", "a list of tables"]),
    ],
)
def test_bad_sweep_keys_are_refused(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = tmp_path / "sweep.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_sweep(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message


def test_unreadable_sweep_files_name_the_file(tmp_path: Path) -> None:
    latin = tmp_path / "latin.toml"
    latin.write_bytes(('description = "r\u00e9sum\u00e9"\n' + SWEEP_HEAD).encode("latin-1"))
    with pytest.raises(ConfigError, match="^" + re.escape(f"{latin}: not UTF-8 text")):
        load_sweep(latin)
    with pytest.raises(ConfigError, match="^" + re.escape(f"{tmp_path}: is a folder, not a sweep file")):
        load_sweep(tmp_path)


@pytest.mark.slow
def test_the_cli_refuses_a_seed_past_64_bits_without_a_traceback(cli: Cli) -> None:
    result = cli("run", "synthetic_smoke", "--headless", "--device", "cpu", "--seed", str(TOO_BIG_SEED))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"key 'seed' = {TOO_BIG_SEED} is out of range" in result.stderr


@pytest.mark.slow
def test_the_cli_refuses_a_sweep_folder_and_a_non_utf8_sweep(tmp_path: Path, cli: Cli) -> None:
    folder = cli("sweep", str(tmp_path), "--headless")
    assert folder.returncode == 2 and "Traceback" not in folder.stderr
    assert f"{tmp_path}: is a folder, not a sweep file" in folder.stderr
    latin = tmp_path / "latin.toml"
    latin.write_bytes(('description = "r\u00e9sum\u00e9"\n' + SWEEP_HEAD).encode("latin-1"))
    encoded = cli("sweep", str(latin), "--headless")
    assert encoded.returncode == 2 and "Traceback" not in encoded.stderr
    assert "latin.toml: not UTF-8 text" in encoded.stderr
