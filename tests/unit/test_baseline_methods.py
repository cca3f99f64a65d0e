"""PGD adversarial training and TRADES: one training step replayed by hand from the papers' equations.

The references below are written from the equations alone, on a linear classifier whose input
gradients have closed forms (logits z = Wx + b):
- ∂ CE(z, y)/∂x = Wᵀ(softmax(z) − onehot(y))                  (Madry et al. 2018, the PGD ascent)
- ∂ KL(p ‖ softmax(z'))/∂x' = Wᵀ(softmax(z') − p), p fixed      (Zhang et al. 2019, Eq. 5)
so no code of the methods or of the attacks is reused. Each test also shows that the variant of
the reference with the equation changed (β dropped, the KL turned round, the ascent's sign
flipped, α ignored) ends at other weights: the comparison can tell them apart.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gat_tui.config import RunConfig, TradesConfig
from gat_tui.methods import build_method
from gat_tui.methods.pgd_at import PGDAdversarialTraining
from gat_tui.methods.trades import TradesTraining

NUM_CLASSES = 3
LR = 1e-2


def linear_classifier() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, NUM_CLASSES)).double()


def make_batch(seed: int, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 2, 3, 3, generator=generator, dtype=torch.float64)
    return images, torch.randint(0, NUM_CLASSES, (n,), generator=generator)


def softmax_by_hand(logits: torch.Tensor) -> torch.Tensor:
    shifted = logits - logits.max(dim=1, keepdim=True).values
    return shifted.exp() / shifted.exp().sum(dim=1, keepdim=True)


def cross_entropy_by_hand(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return -softmax_by_hand(logits)[torch.arange(len(labels)), labels].log().mean()


def one_hot(labels: torch.Tensor) -> torch.Tensor:
    return torch.eye(NUM_CLASSES, dtype=torch.float64)[labels]


def input_gradient_by_hand(classifier: nn.Sequential, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Wᵀ(softmax(Wx + b) − target): CE's gradient for target = onehot(y), the KL's for target = p."""
    weight = classifier[1].weight.detach()
    with torch.no_grad():
        return ((softmax_by_hand(classifier(x)) - target) @ weight).view_as(x)


def l2_per_image(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.flatten(1).norm(dim=1).view(-1, 1, 1, 1)


def adam_step(classifier: nn.Module, loss: torch.Tensor) -> None:
    optimizer = torch.optim.Adam(classifier.parameters(), lr=LR)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def weights_equal(ours: nn.Module, theirs: nn.Module) -> bool:
    return all(torch.allclose(a, b, rtol=1e-9, atol=1e-12) for a, b in zip(ours.parameters(), theirs.parameters()))


# --- PGD adversarial training ---------------------------------------------------------------


def pgd_at_step_by_hand(
    classifier: nn.Sequential, x: torch.Tensor, y: torch.Tensor, norm: str, eps: float, steps: int, size: float,
    alpha: float, seed: int, ascent_sign: float = 1.0,
) -> torch.Tensor:
    """Madry et al.: x_adv from a uniform start in the ball, `steps` projected ascent steps on CE;
    then one Adam step on α·CE(x) + (1 − α)·CE(x_adv). Returns x_adv."""
    torch.manual_seed(seed)
    if norm == "linf":
        start = torch.empty_like(x).uniform_(-eps, eps)
    else:  # a uniform direction, a uniform radius in [0, eps]
        direction = torch.randn_like(x)
        start = direction / l2_per_image(direction) * (torch.rand(x.shape[0], dtype=x.dtype) * eps).view(-1, 1, 1, 1)
    x_adv = (x + start).clamp(0, 1)
    for _ in range(steps):
        gradient = ascent_sign * input_gradient_by_hand(classifier, x_adv, one_hot(y))
        if norm == "linf":
            x_adv = torch.minimum(torch.maximum(x_adv + size * gradient.sign(), x - eps), x + eps).clamp(0, 1)
        else:
            delta = x_adv + size * gradient / l2_per_image(gradient) - x
            x_adv = (x + delta * torch.clamp(eps / l2_per_image(delta), max=1.0)).clamp(0, 1)
    loss = alpha * cross_entropy_by_hand(classifier(x), y) + (1 - alpha) * cross_entropy_by_hand(classifier(x_adv), y)
    adam_step(classifier, loss)
    return x_adv


@pytest.mark.parametrize(("norm", "eps", "size"), [("linf", 0.2, 0.08), ("l2", 0.6, 0.25)])
def test_one_pgd_at_step_matches_madry_et_al_by_hand(norm: str, eps: float, size: float) -> None:
    classifier = linear_classifier()
    hand = copy.deepcopy(classifier)
    images, labels = make_batch(1)
    method = PGDAdversarialTraining(
        classifier, lr_f=LR, alpha=0.25, eps=eps, clip=True, norm=norm, steps=3, step_size=size, random_start=True
    )
    torch.manual_seed(7)
    result = method.train_step(images, labels, lambda: make_batch(99))
    x_adv = pgd_at_step_by_hand(hand, images, labels, norm, eps, 3, size, alpha=0.25, seed=7)

    assert weights_equal(classifier, hand)
    applied = (x_adv - images).flatten(1)
    assert result.pert_l2 is not None and result.pert_linf is not None
    torch.testing.assert_close(result.pert_l2, applied.norm(dim=1).mean())
    torch.testing.assert_close(result.pert_linf, applied.abs().amax(dim=1).mean())
    # the equation changed: the ascent turned into a descent, or α left out
    for changed in ({"ascent_sign": -1.0}, {"alpha": 0.0}):
        other = copy.deepcopy(linear_classifier())
        keywords = {"alpha": 0.25, "ascent_sign": 1.0, **changed}
        pgd_at_step_by_hand(other, images, labels, norm, eps, 3, size, seed=7, **keywords)
        assert not weights_equal(classifier, other), changed


# --- TRADES ----------------------------------------------------------------------------------


def trades_step_by_hand(
    classifier: nn.Sequential, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int, size: float, beta: float,
    seed: int, ascent_sign: float = 1.0, kl_reversed: bool = False,
) -> torch.Tensor:
    """Zhang et al., Algorithm 1 (L-inf): x' = x + 0.001·N(0, I), `steps` projected sign-ascent
    steps on KL(f(x) ‖ f(x')); then one Adam step on CE(f(x), y) + β·(1/m)Σ KL(f(x) ‖ f(x'))."""
    torch.manual_seed(seed)
    x_adv = (x + 0.001 * torch.randn_like(x)).clamp(0, 1)
    with torch.no_grad():
        p_clean = softmax_by_hand(classifier(x))
    for _ in range(steps):
        gradient = ascent_sign * input_gradient_by_hand(classifier, x_adv, p_clean)
        x_adv = torch.minimum(torch.maximum(x_adv + size * gradient.sign(), x - eps), x + eps).clamp(0, 1)
    p, q = softmax_by_hand(classifier(x)), softmax_by_hand(classifier(x_adv))
    if kl_reversed:
        p, q = q, p
    kl = (p * (p.log() - q.log())).sum(dim=1).mean()
    adam_step(classifier, cross_entropy_by_hand(classifier(x), y) + beta * kl)
    return x_adv


def test_one_trades_step_matches_zhang_et_al_by_hand() -> None:
    classifier = linear_classifier()
    hand = copy.deepcopy(classifier)
    images, labels = make_batch(2)
    method = TradesTraining(classifier, lr_f=LR, beta=6.0, eps=0.2, clip=True, norm="linf", steps=3, step_size=0.08)
    torch.manual_seed(11)
    result = method.train_step(images, labels, lambda: make_batch(99))
    x_adv = trades_step_by_hand(hand, images, labels, 0.2, 3, 0.08, beta=6.0, seed=11)

    assert weights_equal(classifier, hand)
    assert result.pert_linf is not None
    torch.testing.assert_close(result.pert_linf, (x_adv - images).flatten(1).abs().amax(dim=1).mean())
    # the equation changed: β dropped (taken as 1), the KL turned round, the ascent's sign flipped
    for changed in ({"beta": 1.0}, {"kl_reversed": True}, {"ascent_sign": -1.0}):
        other = copy.deepcopy(linear_classifier())
        keywords = {"beta": 6.0, **changed}
        trades_step_by_hand(other, images, labels, 0.2, 3, 0.08, seed=11, **keywords)
        assert not weights_equal(classifier, other), changed


def test_trades_inner_maximisation_raises_the_kl_and_stays_in_the_ball() -> None:
    classifier = linear_classifier()
    images, labels = make_batch(3)
    method = TradesTraining(classifier, lr_f=LR, beta=6.0, eps=0.1, clip=True, norm="l2", steps=5, step_size=None)
    torch.manual_seed(0)
    perturbed = method.perturb(images, labels)
    assert float(perturbed.l2().max()) <= 0.1 + 1e-9
    with torch.no_grad():
        p = softmax_by_hand(classifier(images))
        kl_at = lambda x: (p * (p.log() - softmax_by_hand(classifier(x)).log())).sum(dim=1)  # noqa: E731
        assert bool((kl_at(perturbed.adversarial) > kl_at(images + 0.001 * torch.randn_like(images))).all())


def test_build_method_gives_pgd_at_and_trades_their_settings() -> None:
    base = RunConfig()
    perturbation = base.perturbation.__class__(eps=0.3, clip=False, norm="l2", steps=4, step_size=0.05, random_start=False)
    pgd_at = build_method(
        RunConfig(method="pgd_at", perturbation=perturbation, train=base.train.__class__(alpha=0.2, lr_f=2e-3)),
        4, (1, 8, 8), torch.device("meta"),
    )
    assert isinstance(pgd_at, PGDAdversarialTraining)
    assert (pgd_at.eps, pgd_at.alpha, pgd_at.norm, pgd_at.clip) == (0.3, 0.2, "l2", False)
    assert (pgd_at.attack.norm, pgd_at.attack.steps, pgd_at.attack.step_size, pgd_at.attack.random_start) == ("l2", 4, 0.05, False)
    trades = build_method(RunConfig(method="trades", perturbation=perturbation, trades=TradesConfig(beta=3.0)), 4, (1, 8, 8), torch.device("meta"))
    assert isinstance(trades, TradesTraining)
    assert (trades.beta, trades.eps, trades.attack.norm, trades.attack.steps, trades.attack.step_size) == (3.0, 0.3, "l2", 4, 0.05)
    # step_size 0 means Madry et al.'s 2.5·eps/steps: the attack's default (None)
    default = build_method(RunConfig(method="trades"), 4, (1, 8, 8), torch.device("meta"))
    assert isinstance(default, TradesTraining) and default.attack.step_size is None and default.beta == 6.0
