"""Images drawn in the terminal: half-block characters in true colour, or ASCII shades.

In colour, each character cell shows two pixels: '▀' with the upper pixel as foreground and
the lower as background. Without colour (NO_COLOR, or asked for), each cell is one pixel's
brightness from a ramp of plain ASCII characters, two pixels tall per cell as well, so both
modes keep the image's proportions. Pure functions of numpy arrays; no widget here.
"""

from __future__ import annotations

import numpy as np
from rich.style import Style
from rich.text import Text

ASCII_RAMP = " .:-=+*#%@"


def resize_nearest(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """[C, H, W] -> [C, height, width] by nearest neighbour (keeps pixels crisp when enlarged)."""
    _, source_height, source_width = image.shape
    rows = (np.arange(height) * source_height / height).astype(int)
    columns = (np.arange(width) * source_width / width).astype(int)
    return image[:, rows][:, :, columns]


def visible_perturbation(perturbation: np.ndarray) -> tuple[np.ndarray, float]:
    """Map a signed perturbation to [0, 1] around mid-grey; returns it and the scale used.

    The scale is the largest |value|, so ±scale become black and white; callers print it.
    """
    scale = float(np.abs(perturbation).max())
    if scale == 0.0:
        return np.full_like(perturbation, 0.5), 0.0
    return np.clip(0.5 + perturbation / (2 * scale), 0.0, 1.0), scale


def _rgb(image: np.ndarray) -> np.ndarray:
    """[C, H, W] in [0, 1] -> [H, W, 3] uint8; a single channel becomes grey."""
    if image.shape[0] == 1:
        image = np.repeat(image, 3, axis=0)
    return (np.clip(image[:3], 0.0, 1.0) * 255).round().astype(np.uint8).transpose(1, 2, 0)


def render_color(image: np.ndarray, width: int) -> Text:
    """`width` cells wide, height/2 rows of '▀' with true-colour foreground and background."""
    _, source_height, source_width = image.shape
    height = max(2, round(width * source_height / source_width))
    height += height % 2
    pixels = _rgb(resize_nearest(image, height, width))
    text = Text()
    for row in range(0, height, 2):
        for column in range(width):
            top, bottom = pixels[row, column], pixels[row + 1, column]
            text.append("▀", Style(color=f"rgb({top[0]},{top[1]},{top[2]})", bgcolor=f"rgb({bottom[0]},{bottom[1]},{bottom[2]})"))
        if row + 2 < height:
            text.append("\n")
    return text


def render_ascii(image: np.ndarray, width: int) -> Text:
    """`width` characters wide, one per pixel's brightness (cells are about twice as tall as wide)."""
    _, source_height, source_width = image.shape
    height = max(1, round(width * source_height / source_width / 2))
    grey = _rgb(resize_nearest(image, height, width)).astype(float).mean(axis=2) / 255.0
    indices = np.minimum((grey * len(ASCII_RAMP)).astype(int), len(ASCII_RAMP) - 1)
    return Text("\n".join("".join(ASCII_RAMP[i] for i in row) for row in indices))


def render_image(image: np.ndarray, width: int, color: bool) -> Text:
    return render_color(image, width) if color else render_ascii(image, width)


def integer_width(source: int, available: int) -> int:
    """The width to draw a `source`-pixel-wide image in at most `available` cells, by a whole factor.

    Enlarged by the largest integer factor that fits (32 pixels in 70 cells: 64), or shrunk by the
    smallest divisor of `source` that fits (32 in 20: 16, one cell per 2×2 pixels), never
    resampled by an uneven ratio.
    """
    available = max(1, available)
    if source <= available:
        return source * (available // source)
    return next(source // factor for factor in range(2, source + 1) if source % factor == 0 and source // factor <= available)


def perturbation_heat(perturbation: np.ndarray) -> tuple[np.ndarray, float, float]:
    """|δ − mean(δ)| averaged over channels, scaled to [0, 1]: ([1, H, W], its scale, the mean removed)."""
    mean = float(perturbation.mean())
    magnitude = np.abs(perturbation - mean).mean(axis=0, keepdims=True)
    scale = float(magnitude.max())
    if scale == 0.0:
        return np.zeros_like(magnitude), 0.0, mean
    return magnitude / scale, scale, mean


def heat_colours(heat: np.ndarray) -> np.ndarray:
    """[1, H, W] in [0, 1] -> [3, H, W]: black, red, yellow, white (a perceptually ordered 'hot' map)."""
    value = np.clip(heat[0], 0.0, 1.0)
    red = np.clip(3 * value, 0.0, 1.0)
    green = np.clip(3 * value - 1, 0.0, 1.0)
    blue = np.clip(3 * value - 2, 0.0, 1.0)
    return np.stack([red, green, blue]).astype(np.float32)


def amplification(perturbation: np.ndarray, target: float = 0.5) -> int:
    """A round factor k (1, 2, 5, 10, 20, ...) so that k·max|δ| is at most about `target` (at least 1)."""
    largest = float(np.abs(perturbation).max())
    if largest == 0.0:
        return 1
    k = 1
    for candidate in (m * 10**p for p in range(0, 7) for m in (1, 2, 5)):
        if candidate * largest > target:
            break
        k = candidate
    return k


def amplified(image: np.ndarray, perturbation: np.ndarray, k: int) -> np.ndarray:
    """x + k·δ clipped to [0, 1]: the perturbation's pattern, seen on the image."""
    return np.clip(image + k * perturbation, 0.0, 1.0)
