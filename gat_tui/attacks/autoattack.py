"""AutoAttack (Croce and Hein 2020) and its APGD attacks, through the `pyautoattack` package.

These are evaluation attacks only (`gat-tui eval`), not used in training. pyautoattack is an
optional dependency (the `autoattack` extra); it is imported when an attack runs, and
`require_pyautoattack` says how to install it when it is missing.

`AutoAttack` runs the stages of a version (standard: APGD-CE, APGD-T, FAB-T, Square) as a
cascade on each batch: every stage attacks only the images that no earlier stage has made
misclassified, as pyautoattack's `run_standard_evaluation` does, and `stages` yields the
cumulative adversarial images after each stage so that an evaluation can report the robust
accuracy stage by stage. Each stage is run by pyautoattack itself (its attack objects, with the
settings its version sets); gat-tui only caps the number of target classes of APGD-T and FAB-T
at the number of classes less one, as AutoAttack's own checks ask. Images stay in [0, 1]
whatever the `clip` setting: AutoAttack always clips. Images AutoAttack leaves as they are (already
misclassified, or robust to every stage) have a zero perturbation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from types import ModuleType

import torch
from torch import nn

from gat_tui.attacks.base import Attack, Perturbed

INSTALL_HINT = 'pip install -e ".[autoattack]"'

# what each AutoAttack version runs, in order (pyautoattack's `_set_version`)
VERSIONS: dict[str, tuple[str, ...]] = {
    "standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
    "plus": ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"),
    "rand": ("apgd-ce", "apgd-dlr"),
}
STAGES = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")
# the DLR loss compares the 3rd largest logit, the targeted DLR loss the 4th
MIN_CLASSES = {"apgd-dlr": 3, "apgd-t": 4}
_NORMS = {"linf": "Linf", "l2": "L2"}
DEFAULT_EPS = {"linf": (8 / 255,), "l2": (0.5,)}
_LOGGER = "auto-attack"


class MissingExtraError(ImportError):
    """pyautoattack is not installed; the message says how to install it."""


def require_pyautoattack(attack: str) -> ModuleType:
    try:
        import pyautoattack
    except ImportError as error:
        raise MissingExtraError(
            f"--attack {attack} needs the pyautoattack package (the autoattack extra): {INSTALL_HINT}"
        ) from error
    return pyautoattack


def minimum_classes(stages: Sequence[str]) -> int:
    return max((MIN_CLASSES.get(stage, 2) for stage in stages), default=2)


class _CollectWarnings(logging.Handler):
    """Keeps pyautoattack's check warnings (each once) instead of printing them over a progress bar."""

    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message not in self.into:
            self.into.append(message)


class _PyAutoAttack(Attack):
    """What AutoAttack and APGD share: one norm per instance, a seed, pyautoattack's warnings."""

    def __init__(self, norm: str = "linf", seed: int = 0) -> None:
        super().__init__(clip=True)  # AutoAttack always keeps images in [0, 1]
        if norm not in _NORMS:
            raise ValueError(f"norm {norm!r}: expected linf or l2")
        self.norm = norm
        self.seed = seed
        self.warnings: list[str] = []

    @property
    def eps_defaults(self) -> tuple[float, ...]:
        """RobustBench's thresholds: 8/255 in L-inf, 0.5 in L2 (on 32×32 images)."""
        return DEFAULT_EPS[self.norm or "linf"]

    def _collecting(self) -> tuple[logging.Logger, logging.Handler]:
        logger = logging.getLogger(_LOGGER)
        handler = _CollectWarnings(self.warnings)
        logger.addHandler(handler)
        return logger, handler


class AutoAttack(_PyAutoAttack):
    """Croce and Hein's AutoAttack ensemble in one `version`, or `custom` with its own `stages`."""

    name = "autoattack"
    norm = "linf"
    default_eps = DEFAULT_EPS["linf"]

    def __init__(self, norm: str = "linf", version: str = "standard", stages: Sequence[str] = (), seed: int = 0) -> None:
        super().__init__(norm, seed)
        if version == "custom":
            if not stages:
                raise ValueError("version custom needs its stages, e.g. apgd-ce,apgd-t")
            unknown = [stage for stage in stages if stage not in STAGES]
            if unknown:
                raise ValueError(f"unknown AutoAttack stage {unknown[0]!r}; expected some of {', '.join(STAGES)}")
            self.stage_names = tuple(stages)
        elif version in VERSIONS:
            if stages:
                raise ValueError(f"stages are chosen by version {version}; give them with version custom")
            self.stage_names = VERSIONS[version]
        else:
            raise ValueError(f"version {version!r}: expected standard, plus, rand or custom")
        self.version = version
        # each stage's iterations, restarts, target classes or queries, read from pyautoattack once it ran
        self.stage_settings: dict[str, dict[str, object]] | None = None

    def stages(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Iterator[tuple[str, Perturbed]]:
        """(stage, cumulative result) after each stage; `source` in eval mode, restored after."""
        pyautoattack = require_pyautoattack(self.name)
        was_training = source.training
        source.eval()
        logger, handler = self._collecting()
        try:
            runner = pyautoattack.AutoAttack(
                source,
                norm=_NORMS[self.norm or "linf"],
                eps=eps,
                version=self.version,
                attacks=list(self.stage_names) if self.version == "custom" else None,
                seed=self.seed,
                device=images.device,
            )
            runner.verbose = False
            with torch.no_grad():
                logits = source(images)
            robust = logits.argmax(dim=1) == labels
            targets = max(1, min(runner.apgd_targeted.n_target_classes, int(logits.shape[1]) - 1))
            runner.apgd_targeted.n_target_classes = targets
            runner.fab.n_target_classes = targets
            self.stage_settings = _stage_settings(runner, self.stage_names)
            adversarial = images.detach().clone()
            for stage in self.stage_names:
                indices = robust.nonzero().flatten()
                if indices.numel() > 0:
                    runner.attacks_to_run = [stage]
                    # its own random streams are reseeded by each attack: keep ours as they were
                    with torch.random.fork_rng(devices=[images.device] if images.device.type == "cuda" else []):
                        staged, _ = runner.run_standard_evaluation(
                            images[indices], labels[indices], batch_size=int(indices.numel())
                        )
                    with torch.no_grad():
                        fooled = source(staged).argmax(dim=1) != labels[indices]
                    adversarial[indices[fooled]] = staged[fooled].detach()
                    robust[indices[fooled]] = False
                yield stage, Perturbed(adversarial.clone(), adversarial - images)
        finally:
            logger.removeHandler(handler)
            source.train(was_training)

    def perturb(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Perturbed:
        results = [result for _, result in self.stages(source, images, labels, eps)]
        return results[-1]


# where pyautoattack keeps each stage's settings: the attack object and the attributes it reads
_STAGE_SETTINGS = {
    "apgd-ce": ("apgd", ("n_iter", "n_restarts")),
    "apgd-dlr": ("apgd", ("n_iter", "n_restarts")),
    "apgd-t": ("apgd_targeted", ("n_iter", "n_restarts", "n_target_classes")),
    "fab": ("fab", ("n_iter", "n_restarts")),
    "fab-t": ("fab", ("n_iter", "n_restarts", "n_target_classes")),
    "square": ("square", ("n_queries", "n_restarts")),
}


def _stage_settings(runner: object, stages: Sequence[str]) -> dict[str, dict[str, object]]:
    """Each stage's settings as pyautoattack will run it (its version sets them), by attribute name."""
    found: dict[str, dict[str, object]] = {}
    for stage in stages:
        holder, names = _STAGE_SETTINGS.get(stage, ("", ()))
        attack = getattr(runner, holder, None)
        found[stage] = {name: getattr(attack, name) for name in names if isinstance(getattr(attack, name, None), int)}
    return found


class APGD(_PyAutoAttack):
    """APGD alone (Croce and Hein 2020): 100 iterations, one restart, as in AutoAttack standard."""

    name = "apgd"
    norm = "linf"
    default_eps = DEFAULT_EPS["linf"]
    loss = "ce"

    def __init__(self, norm: str = "linf", seed: int = 0, iterations: int = 100, restarts: int = 1) -> None:
        super().__init__(norm, seed)
        self.iterations, self.restarts = iterations, restarts

    def perturb(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Perturbed:
        require_pyautoattack(self.name)
        from pyautoattack.autopgd_base import APGDAttack

        logger, handler = self._collecting()
        try:
            attack = APGDAttack(
                source, n_iter=self.iterations, norm=_NORMS[self.norm or "linf"], n_restarts=self.restarts, eps=eps,
                seed=self.seed, loss=self.loss, device=images.device, logger=logger,
            )
            with torch.random.fork_rng(devices=[images.device] if images.device.type == "cuda" else []):
                adversarial = attack.perturb(images, labels).detach()
        finally:
            logger.removeHandler(handler)
        return Perturbed(adversarial, adversarial - images)


class APGDCE(APGD):
    """APGD on the cross-entropy loss."""

    name = "apgd-ce"
    loss = "ce"


class APGDDLR(APGD):
    """APGD on the difference-of-logits-ratio loss; needs 3 classes or more."""

    name = "apgd-dlr"
    loss = "dlr"


AUTOATTACKS: dict[str, type[_PyAutoAttack]] = {cls.name: cls for cls in (AutoAttack, APGDCE, APGDDLR)}
