"""What `gat-tui eval` is asked to run, planned before any model or data is loaded: each attack
with its settings and ε values, and each refusal's message (the option, the value, what is accepted)."""

from __future__ import annotations

import pytest
from torch import nn

from gat_tui.attacks import FGML2, FGSM, PGDL2, AutoAttack, GATAttack, PGDLinf, RandomL2
from gat_tui.robustness.plan import AttackSpec, AutoAttackOptions, EvalError, parse_attack_spec, parse_sizes, plan_attacks

EIGHT = 8 / 255


def refusal(*args: object, **kwargs: object) -> str:
    with pytest.raises(EvalError) as raised:
        plan_attacks(*args, **kwargs)  # type: ignore[arg-type]
    return str(raised.value)


def test_sizes_are_numbers_or_fractions_and_a_bad_one_is_named_with_an_example() -> None:
    assert parse_sizes(" 0, 2/255 ,1.5", "--eps") == (0.0, 2 / 255, 1.5)
    with pytest.raises(EvalError) as raised:
        parse_sizes("0.5,big", "--eps")
    assert str(raised.value) == "--eps '0.5,big': 'big' is not a number; expected e.g. --eps 0.5,1,2 or 2/255,8/255"
    with pytest.raises(EvalError) as raised:
        parse_sizes("2/0", "--attack", "pgd-l2:2/0")
    assert str(raised.value) == "--attack 'pgd-l2:2/0': '2/0' is not a number; expected e.g. --attack pgd-l2:0.5,1 or pgd-l2:2/255,8/255"
    with pytest.raises(EvalError) as raised:
        parse_sizes("-1/255", "--eps")
    assert str(raised.value) == "--eps '-1/255': '-1/255' is not a finite size; expected finite numbers >= 0"
    with pytest.raises(EvalError, match="'nan' is not a finite size"):
        parse_sizes("nan", "--eps")


def test_an_attack_spec_is_a_name_with_its_own_sizes_after_a_colon() -> None:
    assert parse_attack_spec(" pgd-l2 :0.5, 1") == AttackSpec("pgd-l2", (0.5, 1.0))
    assert parse_attack_spec(" fgsm ") == AttackSpec("fgsm", ())
    with pytest.raises(EvalError) as raised:
        parse_attack_spec("fgsm: ")
    assert str(raised.value) == "--attack 'fgsm: ': no ε after ':'; expected e.g. --attack fgsm:2/255,8/255"


def test_each_attack_is_built_with_the_clip_and_pgd_settings_and_its_sizes() -> None:
    plans = plan_attacks(["fgsm", "fgm-l2:0.5", "random", "pgd-linf", AttackSpec("pgd-l2", (1.5,))], [], False, None, 4, 0.01)
    assert [type(plan.attack) for plan in plans] == [FGSM, FGML2, RandomL2, PGDLinf, PGDL2]
    assert all(plan.attack.clip is False for plan in plans)
    for plan in plans[3:]:
        assert (plan.attack.steps, plan.attack.step_size) == (4, 0.01)  # type: ignore[attr-defined]
    assert [plan.eps_values for plan in plans] == [FGSM.default_eps, (0.5,), RandomL2.default_eps, PGDLinf.default_eps, (1.5,)]
    assert FGSM.default_eps == tuple(n / 255 for n in (1, 2, 4, 8, 16)) and RandomL2.default_eps == (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
    # sizes given for all serve every attack without its own
    shared = plan_attacks(["fgsm", "pgd-l2:1"], [0.1, 0.2], True, None, 10, None)
    assert [plan.eps_values for plan in shared] == [(0.1, 0.2), (1.0,)]
    assert shared[0].attack.clip is True and shared[1].attack.step_size is None  # type: ignore[attr-defined]


def test_gat_attacks_with_the_generator_given_at_no_eps_and_refuses_one() -> None:
    generator = nn.Identity()
    (plan,) = plan_attacks(["gat"], [0.3], False, generator, 10, None)
    assert isinstance(plan.attack, GATAttack) and plan.attack.generator is generator and plan.attack.clip is False
    assert plan.eps_values == (0.0,)
    assert [p.attack.name for p in plan_attacks(["gat", "fgsm"], [], True, generator, 10, None)] == ["gat", "fgsm"]  # and the rest
    assert refusal(["gat:0.1"], [], True, generator, 10, None) == "--attack gat:0.1: gat attacks at its generator's own power; it takes no ε"
    assert refusal(["gat"], [], True, None, 10, None) == "--attack gat needs a generator: --generator CHECKPOINT of a gat or gat_attack run"


def test_an_unknown_attack_lists_every_known_one() -> None:
    assert refusal(["fgsm", "cw:0.1"], [], True, None, 10, None) == (
        "--attack 'cw': unknown; expected one of fgsm, fgm-l2, random, pgd-linf, pgd-l2, gat, autoattack, apgd-ce, apgd-dlr"
    )


@pytest.mark.usefixtures("pyautoattack")
def test_autoattack_and_apgd_follow_the_norm_version_and_stages_with_robustbench_s_sizes() -> None:
    plans = plan_attacks(["autoattack", "apgd-dlr", "apgd-ce:0.25"], [], True, None, 10, None, AutoAttackOptions("l2", "rand"))
    auto, dlr, ce = (plan.attack for plan in plans)
    assert isinstance(auto, AutoAttack) and (auto.norm, auto.version, auto.stage_names) == ("l2", "rand", ("apgd-ce", "apgd-dlr"))
    assert (dlr.name, dlr.norm, ce.name, ce.norm) == ("apgd-dlr", "l2", "apgd-ce", "l2")
    assert [plan.eps_values for plan in plans] == [(0.5,), (0.5,), (0.25,)]
    (linf,) = plan_attacks(["autoattack"], [], True, None, 10, None)  # the defaults: standard, L∞, at 8/255
    assert (linf.attack.norm, linf.attack.version, linf.eps_values) == ("linf", "standard", (EIGHT,))  # type: ignore[attr-defined]
    (custom,) = plan_attacks(["autoattack"], [0.1], True, None, 10, None, AutoAttackOptions("linf", "custom", ("square", "fab")))
    assert (custom.attack.stage_names, custom.eps_values) == (("square", "fab"), (0.1,))  # type: ignore[attr-defined]


@pytest.mark.usefixtures("pyautoattack")
def test_autoattack_s_options_are_refused_naming_the_option() -> None:
    def plan(options: AutoAttackOptions, name: str = "autoattack") -> str:
        return refusal([name], [], True, None, 10, None, options)

    assert plan(AutoAttackOptions(norm="l1")) == "--norm 'l1': expected linf or l2"
    assert plan(AutoAttackOptions(norm="L2"), "apgd-ce") == "--norm 'L2': expected linf or l2"
    assert plan(AutoAttackOptions(version="custom")) == "--version custom needs --aa-attacks, e.g. --aa-attacks apgd-ce,apgd-t"
    assert plan(AutoAttackOptions(version="plus", stages=("apgd-ce", "fab"))) == (
        "--aa-attacks 'apgd-ce,fab': only with --version custom (--version plus runs its own)"
    )
    assert plan(AutoAttackOptions(version="custom", stages=("apgd-ce", "cw"))) == (
        "--aa-attacks: unknown AutoAttack stage 'cw'; expected some of apgd-ce, apgd-dlr, apgd-t, fab, fab-t, square"
    )
    assert plan(AutoAttackOptions(version="fast")) == "--version: version 'fast': expected standard, plus, rand or custom"


@pytest.mark.usefixtures("pyautoattack")
def test_stages_needing_more_classes_are_named_with_the_least_the_cascade_needs() -> None:
    def plan(name: str, options: AutoAttackOptions, classes: int) -> str:
        return refusal([name], [], True, None, 10, None, options, classes)

    hint = " (choose other stages with --version custom --aa-attacks apgd-ce,fab-t,square)"
    assert plan("autoattack", AutoAttackOptions(version="plus"), 2) == (
        f"--attack autoattack: apgd-dlr, apgd-t needs models of at least 4 classes; this one has 2{hint}"
    )
    assert plan("autoattack", AutoAttackOptions(version="plus"), 3) == (
        f"--attack autoattack: apgd-t needs models of at least 4 classes; this one has 3{hint}"
    )
    assert plan("autoattack", AutoAttackOptions("linf", "custom", ("apgd-ce", "apgd-dlr")), 2) == (
        f"--attack autoattack: apgd-dlr needs models of at least 3 classes; this one has 2{hint}"
    )
    assert plan("apgd-dlr", AutoAttackOptions(), 2) == "--attack apgd-dlr: apgd-dlr needs models of at least 3 classes; this one has 2"
    # exactly enough classes, or none known yet (the data is loaded later): planned
    assert len(plan_attacks(["autoattack", "apgd-dlr"], [], True, None, 10, None, AutoAttackOptions(version="plus"), 4)) == 2
    assert len(plan_attacks(["apgd-dlr"], [], True, None, 10, None, AutoAttackOptions(), 3)) == 1
    assert len(plan_attacks(["autoattack"], [], True, None, 10, None, AutoAttackOptions(version="plus"), None)) == 1
