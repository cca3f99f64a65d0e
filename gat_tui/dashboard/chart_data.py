"""What a chart draws, decided without a widget: readouts, a robust y-range, down-sampling, ticks.

Pure functions of lists of floats, so they are unit-tested without an App:

- `readout`: the last value and the best one (min for losses and norms, max for accuracies) with its x;
- `robust_range`: a y-range that outliers do not squash (TensorBoard's "ignore outliers"): the
  2nd to 98th percentile, padded; the points outside are drawn on the edge with a marker;
- `downsample`: about two points per terminal column, the min and max of each bucket, so an
  overlay of 50 seeds draws as fast as one run and no spike is lost;
- `nice_ticks`, `log_ticks`: round tick values (steps of 1, 2 or 5 times a power of ten; on a log
  scale 1, 2 and 5 times powers of ten), at least two where the range allows, with distinct labels;
- `legend_rows`: a chart's legend packed into a few rows of its width, in the longest readout
  form that fits (`L_F 0.62 min 0.25 @ 1200`, then `L_F .62 ↓.25@1.2k`, then `L_F .62 ↓.25`,
  accuracies in whole percent, then the last value only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def higher_is_better(name: str) -> bool:
    """Accuracies are best at their maximum; losses and perturbation norms at their minimum."""
    return "acc" in name


def is_fraction(name: str) -> bool:
    """Figures in [0, 1] shown as percentages."""
    return "acc" in name


def format_value(name: str, value: float) -> str:
    """A short, readable number: accuracies as percentages, others with three significant digits."""
    if not math.isfinite(value):
        return str(value)
    if is_fraction(name):
        return f"{100 * value:.1f}%"
    if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
        return f"{value:.2e}"
    return f"{value:.3g}"


def format_x(x: float, x_axis: str) -> str:
    if x_axis == "time":
        return clock(x)
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.3g}"


def clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


# shorter labels for the compact readouts (the chart's title says what the figure is)
COMPACT_LABELS = {
    "train_acc_clean": "tr",
    "train_acc_adv": "tr adv",
    "val_acc_clean": "val",
    "val_acc_adv": "val adv",
    "val_acc_fgm_l2": "FGM",
    "val_acc_pgd": "PGD",
    "val_pert_l2": "val",
    "val_pert_linf": "val",
}


def compact_value(name: str, value: float, whole_percent: bool = False) -> str:
    """As `format_value`, shorter: no leading zero (`.62`), accuracies in percent without the sign (`87.5`, or `88`)."""
    if not math.isfinite(value):
        return str(value)
    if is_fraction(name):
        return f"{100 * value:.0f}" if whole_percent else f"{100 * value:.1f}"
    if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
        mantissa, exponent = f"{value:.1e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    text = f"{value:.3g}"
    if text.startswith("0."):
        return text[1:]
    if text.startswith("-0."):
        return "-" + text[2:]
    return text


def compact_x(x: float, x_axis: str) -> str:
    """A step as `950`, `1.2k`, `12k`, `3.4M`; epochs and times as `format_x`."""
    if x_axis != "step" or abs(x) < 1000:
        return format_x(x, x_axis)
    for divisor, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(x) >= divisor:
            return f"{x / divisor:.3g}{suffix}"
    return format_x(x, x_axis)  # pragma: no cover


@dataclass(frozen=True)
class Readout:
    last: float
    best: float
    best_x: float
    best_is_max: bool

    def text(self, name: str, label: str, x_axis: str) -> str:
        """e.g. `L_F 0.62 min 0.25 @ 1200`."""
        word = "max" if self.best_is_max else "min"
        return f"{label} {format_value(name, self.last)} {word} {format_value(name, self.best)} @ {format_x(self.best_x, x_axis)}"

    def compact(self, name: str, label: str, x_axis: str, where: bool = True, whole_percent: bool = False) -> str:
        """e.g. `L_F .62 ↓.25@1.2k` (↓ the minimum, ↑ the maximum), or `L_F .62 ↓.25` without `where`."""
        arrow = "↑" if self.best_is_max else "↓"
        text = f"{label} {compact_value(name, self.last, whole_percent)} {arrow}{compact_value(name, self.best, whole_percent)}"
        return f"{text}@{compact_x(self.best_x, x_axis)}" if where else text

    def forms(self, name: str, label: str, short_label: str, x_axis: str) -> tuple[str, str, str, str, str]:
        """The readout from the longest form to the shortest: full, compact, without the step, in whole percent, last only."""
        return (
            self.text(name, label, x_axis),
            self.compact(name, short_label, x_axis),
            self.compact(name, short_label, x_axis, where=False),
            self.compact(name, short_label, x_axis, where=False, whole_percent=True),
            f"{short_label} {compact_value(name, self.last, whole_percent=True)}",
        )


def pack_rows(head: str, entries: Sequence[str], width: int, gap: int = 2) -> list[list[int]]:
    """Entries flowed into rows of `width` after `head` (index -1 stands for the head), `gap` columns apart."""
    rows: list[list[int]] = [[-1]]
    used = len(head)
    for index, entry in enumerate(entries):
        if used and used + gap + len(entry) > width:
            rows.append([index])
            used = len(entry)
        else:
            rows[-1].append(index)
            used += (gap if used else 0) + len(entry)
    return rows


def legend_rows(
    heads: Sequence[str], forms: Sequence[Sequence[str]], width: int, max_rows: int, hard_max: int | None = None
) -> tuple[int, int, list[list[int]]]:
    """Which readout form and head to show, and the rows: (form, head, rows), rows of entry indices (-1 the head).

    `heads` go from the fullest to the shortest (e.g. `accuracy (step, 1 clipped)`, `accuracy (1 clip)`),
    each entry's `forms` from the longest to the shortest, its last one the last value only. The
    fullest head with the longest form with the best value that fits `max_rows` rows of
    `width` wins; if none fits, the one that takes the fewest rows, as long as that is within
    `hard_max` (a short chart's legend may take a row more rather than lose the best values); else
    the last values, cut to `hard_max` rows. Every entry uses the same form, so the legend reads evenly.
    """
    hard_max = max_rows if hard_max is None else max(hard_max, max_rows)
    count = min((len(f) for f in forms), default=1)
    candidates = [(form, head) for head in range(len(heads)) for form in range(max(count - 1, 1))]
    packed = {(form, head): pack_rows(heads[head], [f[form] for f in forms], width) for form, head in candidates}
    too_wide = {c for c in candidates if len(heads[c[1]]) > width or any(len(f[c[0]]) > width for f in forms)}
    for candidate in too_wide:  # an entry wider than the chart would be cut: never a fit
        packed[candidate] = packed[candidate] + [[]] * (hard_max + 1)
    for candidate in candidates:
        if len(packed[candidate]) <= max_rows:
            return candidate[0], candidate[1], packed[candidate]
    fewest = min(candidates, key=lambda candidate: (len(packed[candidate]), candidate[1], candidate[0]))
    if len(packed[fewest]) <= hard_max:
        return fewest[0], fewest[1], packed[fewest]
    last = len(heads) - 1
    return count - 1, last, pack_rows(heads[last], [f[count - 1] for f in forms], width)[:hard_max]


def readout(name: str, xs: Sequence[float], ys: Sequence[float]) -> Readout | None:
    """The last value of a series and its best (the first x where the best was reached); None when empty."""
    pairs = [(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
    if not pairs:
        return None
    best_is_max = higher_is_better(name)
    best_x, best = pairs[0]
    for x, y in pairs[1:]:
        if (y > best) if best_is_max else (y < best):
            best_x, best = x, y
    return Readout(last=pairs[-1][1], best=best, best_x=best_x, best_is_max=best_is_max)


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile of an ascending, non-empty sequence (fraction in [0, 1])."""
    position = fraction * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def robust_range(
    values: Sequence[float], low: float = 0.02, high: float = 0.98, pad: float = 0.1, min_points: int = 20
) -> tuple[float, float]:
    """A y-range holding the bulk of `values`: the `low`..`high` percentiles widened by `pad` of their span.

    With fewer than `min_points` values every point is kept (too few to call any an outlier). A
    flat series gets a small range around its value, so it draws as a line mid-chart, not on an edge.
    """
    finite = sorted(v for v in values if math.isfinite(v))
    if not finite:
        return 0.0, 1.0
    if len(finite) < min_points:
        bottom, top = finite[0], finite[-1]
    else:
        bottom, top = percentile(finite, low), percentile(finite, high)
    span = top - bottom
    if span <= 0:
        half = abs(bottom) * 0.05 or 0.5
        return bottom - half, top + half
    return bottom - pad * span, top + pad * span


def clipped(xs: Sequence[float], ys: Sequence[float], bottom: float, top: float) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """The points above `top` and below `bottom`, moved onto that edge: (above, below)."""
    above = [(x, top) for x, y in zip(xs, ys) if y > top]
    below = [(x, bottom) for x, y in zip(xs, ys) if y < bottom]
    return above, below


def downsample(xs: Sequence[float], ys: Sequence[float], buckets: int) -> tuple[list[float], list[float]]:
    """At most about 2·`buckets` points: each of `buckets` equal runs of points keeps its min and max, in x order.

    Points are bucketed by index (series here are evenly spaced in steps); a series already
    short enough is returned whole.
    """
    count = len(xs)
    if buckets <= 0 or count <= 2 * buckets:
        return list(xs), list(ys)
    out_x: list[float] = []
    out_y: list[float] = []
    for bucket in range(buckets):
        start, end = bucket * count // buckets, (bucket + 1) * count // buckets
        if start >= end:
            continue
        indices = range(start, end)
        low = min(indices, key=lambda i: ys[i])
        high = max(indices, key=lambda i: ys[i])
        for index in sorted({low, high}):
            out_x.append(xs[index])
            out_y.append(ys[index])
    return out_x, out_y


STEP_MULTIPLES = (1, 2, 5)  # a tick step is one of these times a power of ten: ticks read 0.2, 0.4, never 0.25, 0.75


def nice_ticks(bottom: float, top: float, count: int = 4) -> list[float]:
    """Round values (steps of 1, 2 or 5 times a power of ten) between `bottom` and `top`, about `count` of them.

    Never fewer than two where the range allows: a short chart asking for two ticks on 0.0014–0.0086 gets
    0.002, 0.004, 0.006, 0.008 rather than a lone 0.005 (which read as `0`).
    """
    if not (math.isfinite(bottom) and math.isfinite(top)) or top <= bottom:
        return [bottom]
    raw = (top - bottom) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    steps = sorted(m * power * scale for m in STEP_MULTIPLES for scale in (0.1, 1, 10))
    step = min(steps, key=lambda candidate: abs(math.log(candidate / raw)))
    ticks = _ticks_at(bottom, top, step)
    for smaller in reversed([candidate for candidate in steps if candidate < step]):
        if len(ticks) >= 2:
            break
        ticks = _ticks_at(bottom, top, smaller)
    return ticks


def _ticks_at(bottom: float, top: float, step: float) -> list[float]:
    """The multiples of `step` in [bottom, top], computed from whole multiples so they stay exact."""
    first = math.ceil(bottom / step - 1e-9)
    last = math.floor(top / step + 1e-9)
    return [0.0 if index == 0 else round(index * step, 12) for index in range(first, last + 1)]


def log_ticks(bottom: float, top: float, count: int = 4) -> list[float]:
    """Ticks of a log-scale axis, as log10 values, at round numbers (1, 2 and 5 times a power of ten).

    `bottom` and `top` are log10 of the range. Decades only where 1-2-5 would be too many; on a range
    narrower than from one 1-2-5 value to the next, round values of the range itself (0.35, 0.4).
    """
    if not (math.isfinite(bottom) and math.isfinite(top)) or top <= bottom:
        return [bottom]
    decades = range(math.floor(bottom) - 1, math.ceil(top) + 2)
    one_two_five = [math.log10(m * 10.0**k) for k in decades for m in (1, 2, 5)]
    inside = [t for t in one_two_five if bottom - 1e-9 <= t <= top + 1e-9]
    if len(inside) > count + 1:
        inside = [t for t in inside if abs(t - round(t)) < 1e-9]  # decades only
        stride = math.ceil(len(inside) / (count + 1))
        inside = inside[::stride]
    if len(inside) >= 2:
        return inside
    linear = [t for t in nice_ticks(10**bottom, 10**top, count) if t > 0]
    return [math.log10(t) for t in linear] or inside


def _label_number(value: float, decimals: int) -> str:
    """`value` with `decimals` decimals, or in short scientific form for tiny steps (`2e-5`, `1.5e-5`)."""
    if decimals <= 4:
        return f"{value:.{decimals}f}"
    if value == 0:
        return "0"
    digits = max(0, decimals + math.floor(math.log10(abs(value))))
    return _scientific(value, digits)


def _scientific(value: float, digits: int) -> str:
    """`1e-4`, `2.5e-5`: a mantissa of `digits` decimals without trailing zeros, a bare exponent."""
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def tick_label(value: float, ticks: Sequence[float], percent: bool = False, log: bool = False) -> str:
    """A tick's text, as short as its neighbours allow yet never the same as a neighbour's (`0.25`, `2`, `40%`, `0.002`, `2e-5`).

    On a log scale `value` is log10 of the number shown, which is printed as itself (`0.5`, `1e-4`).
    """
    if log:
        real = 10**value
        return f"{real:.6g}" if 1e-3 <= abs(real) < 1e4 else _scientific(real, 1)
    if percent:
        value *= 100
        ticks = [t * 100 for t in ticks]
    steps = [b - a for a, b in zip(ticks, ticks[1:]) if b > a]
    step = min(steps) if steps else (abs(value) or 1.0)
    decimals = max(0, -math.floor(math.log10(step)))
    if not math.isclose(round(step, decimals), step, rel_tol=1e-6):
        decimals += 1  # 2.5, 0.25
    if not steps:
        decimals = max(decimals, 0 if float(value).is_integer() else len(f"{value:.3g}".split(".")[-1]))
    text = _label_number(value, decimals)
    return f"{text}%" if percent else text
