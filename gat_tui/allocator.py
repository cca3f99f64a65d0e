"""glibc malloc thresholds for the gat-tui process: keep large CPU activations mapped between steps.

By default glibc's malloc serves every block above its mmap threshold (128 KiB, rising with use
to at most 32 MiB) with a fresh `mmap` and unmaps it on `free`. The classifier's activations at
batch 128 on 32x32 images are ~50 MB each, so every training step maps them anew and the kernel
zero-fills them page by page: ~30,000 minor page faults per step, and CPU training about 1.5x
slower (see benchmarks/README.md). Raising the mmap threshold (and the trim threshold, so freed
memory at the top of the heap is not handed back either) lets the heap reuse those blocks.

The setting is process-global, so it belongs to the process's owner: `gat-tui` applies it at
start-up of every command (`tune_allocator`), before any tensor is allocated. It changes where
memory comes from, never a computed value (tests check bit-identical weights with and without it).
The cost: the process keeps its peak heap instead of returning it to the system between steps.

`GAT_TUI_MALLOC=default` leaves glibc's defaults. `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`
or `GLIBC_TUNABLES` set by the user win (they are left alone), and so does an allocator preloaded
with `LD_PRELOAD` (jemalloc, tcmalloc, mimalloc: an alternative that needs no tuning of glibc).
Elsewhere than Linux with glibc this is a no-op.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

ENV_VAR = "GAT_TUI_MALLOC"
MODES = ("tuned", "default")
# 1 GiB: above any activation of the paper's networks; glibc accepts it (2.36 checked)
THRESHOLD_BYTES = 1 << 30
# mallopt parameter numbers from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# environment variables through which a user already chose glibc's settings (or another allocator)
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES", "LD_PRELOAD")

Mallopt = Callable[[int, int], int]


class AllocatorError(ValueError):
    """`GAT_TUI_MALLOC` holds a value other than those accepted; the message names it."""


@dataclass(frozen=True)
class AllocatorSetting:
    """What `tune_allocator` did: whether glibc's thresholds were set, and why (not)."""

    applied: bool
    reason: str


def glibc_mallopt() -> Mallopt | None:
    """glibc's `mallopt`, or None where the C library is not glibc (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        os.confstr("CS_GNU_LIBC_VERSION")  # only glibc answers this name
        function: Mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (ValueError, OSError, AttributeError):
        return None
    return function


def tune_allocator(environ: Mapping[str, str] | None = None, mallopt: Mallopt | None = None) -> AllocatorSetting:
    """Raise glibc's mmap and trim thresholds for this process, unless opted out or not glibc.

    Call it before large allocations: blocks already mapped stay as they are. `environ` and
    `mallopt` default to the process's own; tests pass their own. An unknown `GAT_TUI_MALLOC`
    value raises AllocatorError.
    """
    environ = os.environ if environ is None else environ
    mode = environ.get(ENV_VAR, "tuned").strip().lower() or "tuned"
    if mode not in MODES:
        raise AllocatorError(
            f"{ENV_VAR}={environ[ENV_VAR]!r}: expected 'tuned' (the default: raise glibc's malloc "
            f"thresholds) or 'default' (leave the C library's allocator as it is)"
        )
    if mode == "default":
        return AllocatorSetting(False, f"{ENV_VAR}=default")
    chosen = [name for name in USER_SETTINGS if environ.get(name)]
    if chosen:
        return AllocatorSetting(False, f"the user's {', '.join(chosen)} kept")
    mallopt = mallopt if mallopt is not None else glibc_mallopt()
    if mallopt is None:
        return AllocatorSetting(False, "not glibc: nothing to tune")
    # mallopt returns 1 on success, 0 when glibc refuses the value
    if not (mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES) and mallopt(M_TRIM_THRESHOLD, THRESHOLD_BYTES)):
        return AllocatorSetting(False, f"glibc refused a threshold of {THRESHOLD_BYTES} bytes")
    return AllocatorSetting(True, f"glibc mmap and trim thresholds set to {THRESHOLD_BYTES} bytes")
