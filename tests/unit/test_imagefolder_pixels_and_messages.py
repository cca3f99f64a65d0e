"""An image folder's pixels (16-bit levels, resizing) and every message a badly laid out folder
gets, compared whole: the path at fault and the layout expected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gat_tui.config import DataConfig
from gat_tui.data import DataError, load_splits
from gat_tui.data.imagefolder import _as_8_bit_rgb, _Listing, _read_images

LAYOUT = "expected <path>/train/<class>/*.png and <path>/test/<class>/*.png (jpg, bmp, ... also work)"


@pytest.mark.parametrize("mode", ["I;16", "I;16L", "I;16B", "I;16N", "I"])
def test_16_bit_levels_keep_their_high_byte_in_every_16_bit_mode(mode: str) -> None:
    levels = np.array([[0, 255, 256, 0x8000, 0xFF00, 65535]], dtype=np.int64)  # high bytes 0, 0, 1, 128, 255, 255
    if mode == "I":
        image = Image.fromarray(levels.astype(np.int32), "I")
    else:
        dtype = {"I;16B": ">u2", "I;16N": "=u2"}.get(mode, "<u2")  # big-endian, native, little-endian
        image = Image.frombytes(mode, (6, 1), levels.astype(dtype).tobytes())
    converted = _as_8_bit_rgb(image, "grey.png")
    assert converted.mode == "RGB"
    assert np.asarray(converted)[0].tolist() == [[v, v, v] for v in (0, 0, 1, 128, 255, 255)]


@pytest.mark.parametrize("level", [-1, 65536])
def test_32_bit_levels_outside_16_bits_are_refused(level: int) -> None:
    image = Image.fromarray(np.array([[0, level]], dtype=np.int32), "I")
    with pytest.raises(DataError) as caught:
        _as_8_bit_rgb(image, "deep.tif")
    assert str(caught.value) == "deep.tif: a I image with values outside 0..65535; save it as an 8- or 16-bit image"


def test_a_floating_point_image_is_refused() -> None:
    with pytest.raises(DataError) as caught:
        _as_8_bit_rgb(Image.fromarray(np.zeros((2, 2), np.float32), "F"), "depth.tif")
    assert str(caught.value) == "depth.tif: a floating-point image (mode F); save it as an 8- or 16-bit image"


def test_images_are_resized_bilinearly(tmp_path: Path) -> None:
    path = tmp_path / "edge.png"
    Image.fromarray(np.array([[0, 255], [0, 255]], np.uint8), "L").save(path)
    images, labels = _read_images(_Listing(["edge"], [(str(path), 0)]), 4)
    # 2 -> 4 pixels: output centres fall at -0.25, 0.25, 0.75, 1.25 input pixels; a triangle filter
    # weights the two neighbours 3:1 inside and takes the edge pixel alone outside: 0, 63.75, 191.25, 255
    assert images[0, 0].tolist() == [[0, 64, 191, 255]] * 4
    assert images.shape == (1, 3, 4, 4) and labels.tolist() == [0]


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (10, 20, 30)).save(path)


def _refusal(path: str) -> str:
    with pytest.raises(DataError) as caught:
        load_splits(DataConfig(dataset="imagefolder", path=path, val_size=1, image_size=4))
    return str(caught.value)


def test_each_layout_mistake_names_its_folder(tmp_path: Path) -> None:
    root = tmp_path / "data"
    assert _refusal("") == f"data.path is empty; imagefolder needs the folder holding train/ and test/; {LAYOUT}"
    assert _refusal(str(root)) == f"{root}: folder not found (data.path); {LAYOUT}"
    root.mkdir()
    assert _refusal(str(root)) == f"{root / 'train'}: folder not found; {LAYOUT}"
    (root / "train" / ".cache").mkdir(parents=True)  # hidden: not a class
    assert _refusal(str(root)) == f"{root / 'train'}: no class folders; {LAYOUT}"
    (root / "train" / "cat").mkdir()
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    assert _refusal(str(root)) == f"{root / 'train' / 'cat'}: class folder without images; {LAYOUT}"
    for split in ("train", "test"):
        _png(root / split / "cat" / "0.png")
        _png(root / split / "cat" / "1.png")
    assert _refusal(str(root)) == f"{root}: only one class folder (cat); a classifier needs at least 2 classes; {LAYOUT}"


def test_classes_that_differ_are_all_listed(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for split, names in (("train", ["cat", "dog", "fox"]), ("test", ["bird", "cat", "eel"])):
        for name in names:
            _png(root / split / name / "0.png")
    for split, name in (("train", "ant"), ("train", "bee"), ("test", "cow")):
        _png(tmp_path / "elsewhere" / name / "0.png")
        (root / split / name).symlink_to(tmp_path / "elsewhere" / name, target_is_directory=True)
    assert _refusal(str(root)) == (
        f"{root}: train/ and test/ must have the same class folders; only in train/: dog, fox; only in test/: bird, eel; "
        "train/ant, bee: links to folders, which are not followed (copy the folder in); "
        "test/cow: links to folders, which are not followed (copy the folder in)"
    )


def test_an_unreadable_image_is_named(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            _png(root / split / name / "0.png")
            _png(root / split / name / "1.png")
    broken = root / "test" / "dog" / "1.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n and then nothing")
    message = _refusal(str(root))
    assert message.startswith(f"{broken}: cannot read the image (") and message.endswith("); fix or remove the file")
