"""Engine vs trainer log-probs: truncated importance weights and the gap, on hand-computed numbers."""

from __future__ import annotations

import math

import pytest
import torch

from codefalcon.rl.losses.grpo import grpo_loss
from codefalcon.rl.losses.importance import engine_gap, truncated_is_weights
from codefalcon.rl.losses.ppo import ppo_policy_loss
from support import close

NAN = float("nan")


def test_truncated_is_weights_hand_computed() -> None:
    old = torch.tensor([[-1.0, -2.0, -0.5], [-0.1, -3.0, 0.0]], dtype=torch.float64)
    engine = torch.tensor([[-1.5, -1.0, NAN], [-3.0, -3.0, NAN]], dtype=torch.float64)
    weights = truncated_is_weights(old, engine, cap=2.0)
    # e^0.5 = 1.6487 (under the cap), e^-1 = 0.3679, missing -> 1; e^2.9 = 18.17 -> cap 2, e^0 = 1
    close(weights, [[math.exp(0.5), math.exp(-1.0), 1.0], [2.0, 1.0, 1.0]])
    assert not weights.requires_grad


def test_truncated_is_weights_are_constants_without_nan_gradients() -> None:
    old = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    weights = truncated_is_weights(old, torch.tensor([[NAN, -1.0]]), cap=3.0)
    assert not weights.requires_grad and torch.isfinite(weights).all()


def test_engine_gap_hand_computed() -> None:
    engine = torch.tensor([[-1.0, NAN], [-2.0, NAN]])
    old = torch.tensor([[-1.5, -1.0], [-1.0, 0.0]])
    gap = engine_gap(engine, old, torch.tensor([[1, 1], [1, 0]]))
    # gaps 0.5 and -1 on the two reported tokens; 2 of the 3 sampled tokens reported
    assert gap.logp_gap == pytest.approx(-0.25)
    assert gap.logp_gap_abs == pytest.approx(0.75)
    assert gap.logp_covered == pytest.approx(2 / 3)


def test_engine_gap_without_reported_tokens_is_zero() -> None:
    gap = engine_gap(torch.full((1, 2), NAN), torch.zeros(1, 2), torch.ones(1, 2))
    assert (gap.logp_gap, gap.logp_gap_abs, gap.logp_covered) == (0.0, 0.0, 0.0)


def test_weights_scale_the_surrogate_terms_of_grpo_and_ppo() -> None:
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    mask = torch.ones(1, 2)
    weights = torch.tensor([[0.5, 2.0]])
    # on-policy, A = 1: per-token loss -1 each; weighted -> -(0.5 + 2) / 2 = -1.25
    loss, _ = grpo_loss(logp, None, torch.tensor([1.0]), mask, is_weights=weights)
    assert loss.item() == pytest.approx(-1.25)
    loss.backward()
    close(logp.grad, [[-0.25, -1.0]])  # d/dlogp of -w ratio / 2 at ratio 1
    ppo, _ = ppo_policy_loss(logp.detach(), logp.detach(), torch.ones(1, 2), mask, is_weights=weights)
    assert float(ppo) == pytest.approx(-1.25)
