"""`--weights`: a safetensors file is read whatever its first bytes; only a file that is not one is named as a pickle.

A safetensors file starts with its header's length as 8 little-endian bytes. A two-tensor state
dict (`1.weight`, `1.bias` of a linear layer) has a header of exactly 128 bytes, so its first
byte is 0x80, a pickle's first byte too: it used to be refused as "a pickle".
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from gat_tui.checkpoints import CheckpointError, read_state_dict


def test_a_safetensors_file_whose_first_byte_is_0x80_is_read(tmp_path: Path) -> None:
    state = {"1.weight": torch.arange(96.0).view(2, 48), "1.bias": torch.tensor([0.5, -0.5])}
    path = tmp_path / "linear.safetensors"
    save_file(state, str(path))
    assert path.read_bytes()[:8] == (128).to_bytes(8, "little")  # the case: its header is 128 bytes long
    read = read_state_dict(path)
    assert set(read) == set(state) and all(torch.equal(read[key], value) for key, value in state.items())


def test_a_pickle_is_still_refused_as_one(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"1.bias": torch.zeros(2)}, str(path))  # torch.save's zip archive, starting with PK
    with pytest.raises(CheckpointError, match=r"a pickle \(torch.save's \.pt/\.pth format\), refused"):
        read_state_dict(path)
    bare = tmp_path / "bare.pth"
    bare.write_bytes(b"\x80\x04\x95" + bytes(40))  # a pickle of protocol 4
    with pytest.raises(CheckpointError, match="a pickle"):
        read_state_dict(bare)
