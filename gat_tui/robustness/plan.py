"""What `gat-tui eval` is asked to run: attack names with their ε, parsed and checked, as plans.

Everything here fails fast with an EvalError naming the option and value, before any model
or data is loaded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from torch import nn

from gat_tui.attacks import ATTACKS, AUTOATTACKS, Attack, AutoAttack, GATAttack
from gat_tui.attacks.autoattack import DEFAULT_EPS, VERSIONS, MissingExtraError, minimum_classes, require_pyautoattack


class EvalError(ValueError):
    """An evaluation that cannot run as asked; the message names the option or file at fault."""


@dataclass(frozen=True)
class AttackPlan:
    attack: Attack
    eps_values: tuple[float, ...]


@dataclass(frozen=True)
class AttackSpec:
    """An attack named on the command line, with its own ε values when given (`fgsm:2/255,8/255`)."""

    name: str
    eps_values: tuple[float, ...] = ()


@dataclass(frozen=True)
class AutoAttackOptions:
    """--norm, --version and --aa-attacks: how AutoAttack and APGD attacks are built."""

    norm: str = "linf"
    version: str = "standard"
    stages: tuple[str, ...] = ()


def parse_sizes(text: str, option: str, shown: str | None = None) -> tuple[float, ...]:
    """Comma-separated ε values, each a number or a fraction (8/255), finite and >= 0; errors
    name `option` and `shown` (the whole value given, `text` by default)."""
    shown = text if shown is None else shown
    example = "0.5,1,2 or 2/255,8/255" if option == "--eps" else f"{shown.partition(':')[0]}:0.5,1 or {shown.partition(':')[0]}:2/255,8/255"
    values = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = float(Fraction(part)) if "/" in part else float(part)
        except (ValueError, ZeroDivisionError):
            raise EvalError(f"{option} {shown!r}: {part!r} is not a number; expected e.g. {option} {example}") from None
        if not math.isfinite(value) or value < 0:
            raise EvalError(f"{option} {shown!r}: {part!r} is not a finite size; expected finite numbers >= 0")
        values.append(value)
    return tuple(values)


def parse_attack_spec(text: str) -> AttackSpec:
    """`NAME` or `NAME:EPS,EPS` (as --attack takes it); the name is checked by `plan_attacks`."""
    name, colon, sizes = text.partition(":")
    name = name.strip()
    if not colon:
        return AttackSpec(name)
    if not sizes.strip():
        raise EvalError(f"--attack {text!r}: no ε after ':'; expected e.g. --attack {name}:2/255,8/255")
    return AttackSpec(name, parse_sizes(sizes, "--attack", text))


def _autoattack_plan(name: str, options: AutoAttackOptions, num_classes: int | None) -> Attack:
    try:
        require_pyautoattack(name)
    except MissingExtraError as error:
        raise EvalError(str(error)) from None
    if options.norm not in ("linf", "l2"):
        raise EvalError(f"--norm {options.norm!r}: expected linf or l2")
    if name == "autoattack":
        if options.version == "custom" and not options.stages:
            raise EvalError("--version custom needs --aa-attacks, e.g. --aa-attacks apgd-ce,apgd-t")
        if options.version != "custom" and options.stages:
            raise EvalError(f"--aa-attacks {','.join(options.stages)!r}: only with --version custom (--version {options.version} runs its own)")
        try:
            attack: Attack = AutoAttack(options.norm, options.version, options.stages)
        except ValueError as error:
            option = "--aa-attacks" if options.version == "custom" else "--version"
            raise EvalError(f"{option}: {error}") from None
        stages = options.stages or VERSIONS[options.version]
    else:
        attack = AUTOATTACKS[name](options.norm)
        stages = (name,)
    needed = minimum_classes(stages)
    if num_classes is not None and num_classes < needed:
        hard = [stage for stage in stages if minimum_classes([stage]) > num_classes]
        raise EvalError(
            f"--attack {name}: {', '.join(hard)} needs models of at least {needed} classes; this one has {num_classes}"
            + (" (choose other stages with --version custom --aa-attacks apgd-ce,fab-t,square)" if name == "autoattack" else "")
        )
    return attack


def plan_attacks(
    names: Sequence[str | AttackSpec],
    eps_values: Sequence[float],
    clip: bool,
    generator: nn.Module | None,
    pgd_steps: int,
    pgd_step_size: float | None,
    autoattack: AutoAttackOptions | None = None,
    num_classes: int | None = None,
) -> list[AttackPlan]:
    """An `AttackPlan` per named attack, at its own ε values, or `eps_values`, or its defaults.

    `autoattack` and `apgd-ce`/`apgd-dlr` (needing pyautoattack) follow `autoattack`'s options;
    with `num_classes`, attacks whose losses need more classes are refused here, before any work.
    """
    plans = []
    for entry in names:
        spec = entry if isinstance(entry, AttackSpec) else parse_attack_spec(entry)
        name = spec.name
        if name in AUTOATTACKS:
            attack: Attack = _autoattack_plan(name, autoattack or AutoAttackOptions(), num_classes)
            defaults = DEFAULT_EPS[attack.norm or "linf"]
            plans.append(AttackPlan(attack, spec.eps_values or tuple(eps_values) or defaults))
            continue
        if name not in ATTACKS:
            raise EvalError(f"--attack {name!r}: unknown; expected one of {', '.join([*ATTACKS, *AUTOATTACKS])}")
        cls = ATTACKS[name]
        if cls is GATAttack:
            if generator is None:
                raise EvalError("--attack gat needs a generator: --generator CHECKPOINT of a gat or gat_attack run")
            if spec.eps_values:
                raise EvalError(f"--attack {entry}: gat attacks at its generator's own power; it takes no ε")
            plans.append(AttackPlan(GATAttack(generator, clip), (0.0,)))
            continue
        if name.startswith("pgd"):
            attack = cls(clip=clip, steps=pgd_steps, step_size=pgd_step_size)  # type: ignore[call-arg]
        else:
            attack = cls(clip=clip)
        plans.append(AttackPlan(attack, spec.eps_values or tuple(eps_values) or cls.default_eps))
    return plans
