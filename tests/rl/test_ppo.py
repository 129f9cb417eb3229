"""PPO: GAE, the clipped policy and value losses (including gradients), explained variance."""

from __future__ import annotations

import math

import pytest
import torch

from codefalcon.rl import explained_variance, gae, ppo_policy_loss, ppo_value_loss
from support import close

ATOL = 1e-6
F64 = torch.float64


def test_gae_two_steps_hand_computed():
    rewards = torch.tensor([[0.0, 1.0]], dtype=F64)
    values = torch.tensor([[0.5, 0.2]], dtype=F64)
    adv, ret = gae(rewards, values, torch.ones(1, 2), gamma=1.0, lam=0.5)
    # delta_1 = 1 + 0 (terminal) - 0.2 = 0.8 -> A_1 = 0.8
    # delta_0 = 0 + 0.2 - 0.5 = -0.3 -> A_0 = -0.3 + 1 x 0.5 x 0.8 = 0.1
    close(adv, [[0.1, 0.8]])
    close(ret, [[0.6, 1.0]])  # A + V


def test_gae_ppocoder_defaults_with_padding():
    # values and rewards written at padding (99) must never be read
    rewards = torch.tensor([[0.0, 0.0, 1.0, 99.0]], dtype=F64)
    values = torch.tensor([[0.1, 0.2, 0.3, 99.0]], dtype=F64)
    mask = torch.tensor([[1, 1, 1, 0]])
    adv, ret = gae(rewards, values, mask)  # gamma 1, lam 0.95
    # t2: delta = 1 + 0 - 0.3 = 0.7;            A = 0.7
    # t1: delta = 0 + 0.3 - 0.2 = 0.1;          A = 0.1 + 0.95 x 0.7 = 0.765
    # t0: delta = 0 + 0.2 - 0.1 = 0.1;          A = 0.1 + 0.95 x 0.765 = 0.82675
    close(adv, [[0.82675, 0.765, 0.7, 0.0]])
    close(ret, [[0.92675, 0.965, 1.0, 0.0]])


def test_gae_gamma_1_lambda_1_is_reward_to_go_minus_value():
    torch.manual_seed(0)
    rewards = torch.randn(4, 6, dtype=F64)
    values = torch.randn(4, 6, dtype=F64)
    lengths = torch.tensor([6, 3, 1, 0])
    mask = (torch.arange(6) < lengths.unsqueeze(1)).long()
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    kept = rewards * mask
    reward_to_go = kept.flip(1).cumsum(1).flip(1)  # sum_{s >= t} r_s over valid s
    close(adv, (reward_to_go - values) * mask)
    close(ret, reward_to_go * mask)
    assert adv[3].abs().sum() == 0  # all-padding row


def test_policy_loss_hand_computed_and_clipped_tokens_get_no_gradient():
    old = torch.zeros(1, 3, dtype=F64)
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.0]], dtype=F64)).requires_grad_(True)  # ratios 1.5, 0.5, pad
    adv = torch.tensor([[1.0, 1.0, 5.0]], dtype=F64)
    mask = torch.tensor([[1, 1, 0]])
    loss, stats = ppo_policy_loss(logp, old, adv, mask, clip=0.2)
    # token 0: max(-1 x 1.5, -1 x 1.2) = -1.2 (clipped); token 1: max(-0.5, -0.8) = -0.5 -> mean -0.85
    close(loss, -0.85)
    loss.backward()
    # token 0 clipped -> 0; token 1: d(-A ratio)/d logp / N = -0.5 / 2 = -0.25; padding 0
    close(logp.grad, [[0.0, -0.25, 0.0]])
    assert stats.clipfrac == pytest.approx(1.0, abs=ATOL)  # |0.5| and |-0.5| > 0.2
    # approx_kl = mean((r - 1) - ln r) = ((0.5 - ln 1.5) + (-0.5 - ln 0.5)) / 2 = (0.0945349 + 0.1931472) / 2
    assert stats.approx_kl == pytest.approx(((0.5 - math.log(1.5)) + (-0.5 - math.log(0.5))) / 2, abs=ATOL)
    assert stats.ratio_mean == pytest.approx(1.0, abs=ATOL) and stats.n_tokens == 2.0


@pytest.mark.parametrize(("ratio", "advantage"), [(1.25, 1.0), (0.75, -1.0), (1.25, -1.0), (0.75, 1.0)])
def test_policy_ratio_exactly_at_clip_boundary_is_not_clipped(ratio, advantage):
    # exp(ln 1.25) == 1.25 and exp(ln 0.75) == 0.75 exactly in float64; clip 0.25 puts them on the edge
    logp = torch.log(torch.tensor([[ratio]], dtype=F64)).requires_grad_(True)
    loss, stats = ppo_policy_loss(
        logp,
        torch.zeros(1, 1, dtype=F64),
        torch.tensor([[advantage]], dtype=F64),
        torch.ones(1, 1),
        clip=0.25,
    )
    close(loss, -advantage * ratio)
    loss.backward()
    close(logp.grad, [[-advantage * ratio]])  # full gradient, d(-A r)/d logp = -A r
    assert stats.clipfrac == 0.0


def test_policy_loss_all_padding_and_garbage_padding():
    logp = torch.tensor([[float("-inf"), 3.0]], dtype=F64, requires_grad=True)
    loss, stats = ppo_policy_loss(
        logp, torch.zeros(1, 2, dtype=F64), torch.ones(1, 2, dtype=F64), torch.zeros(1, 2)
    )
    loss.backward()
    assert loss.item() == 0.0 and stats.n_tokens == 0.0
    close(logp.grad, [[0.0, 0.0]])


def test_value_loss_clipped_hand_computed_with_gradients():
    values = torch.tensor([[1.5, 1.1, 7.0]], dtype=F64, requires_grad=True)
    old = torch.tensor([[1.0, 1.0, 0.0]], dtype=F64)
    returns = torch.tensor([[2.0, 0.0, 0.0]], dtype=F64)
    mask = torch.tensor([[1, 1, 0]])
    loss, stats = ppo_value_loss(values, old, returns, mask, clip=0.2)
    # token 0: V_clip = 1 + clip(0.5) = 1.2; max((1.5 - 2)^2 = 0.25, (1.2 - 2)^2 = 0.64) = 0.64 (cut)
    # token 1: V_clip = 1 + 0.1 = 1.1 (inside the range); max(1.21, 1.21) = 1.21
    # loss = 0.5 x (0.64 + 1.21) / 2 = 0.4625
    close(loss, 0.4625)
    assert stats.clipfrac == pytest.approx(0.5, abs=ATOL) and stats.n_tokens == 2.0
    loss.backward()
    # token 0: clipped value is constant -> 0; token 1: 0.5 x 2 (1.1 - 0) / 2 = 0.55; padding 0
    close(values.grad, [[0.0, 0.55, 0.0]])


def test_value_loss_unclipped():
    values = torch.tensor([[1.5, 1.1]], dtype=F64)
    loss, stats = ppo_value_loss(
        values,
        torch.ones(1, 2, dtype=F64),
        torch.tensor([[2.0, 0.0]], dtype=F64),
        torch.ones(1, 2),
        clip=None,
    )
    close(loss, 0.365)  # 0.5 x (0.25 + 1.21) / 2
    assert stats.clipfrac == 0.0


def test_explained_variance():
    returns = torch.tensor([[1.0, 2.0, 3.0, 50.0]], dtype=F64)
    values = torch.tensor([[1.0, 2.0, 2.0, -50.0]], dtype=F64)
    mask = torch.tensor([[1, 1, 1, 0]])
    # Var(returns) = 2/3; residuals [0, 0, 1]: mean 1/3, Var = (1/9 + 1/9 + 4/9) / 3 = 2/9 -> 1 - (2/9)/(2/3) = 2/3
    assert explained_variance(values, returns, mask) == pytest.approx(2.0 / 3.0, abs=ATOL)
    assert explained_variance(values, torch.ones(1, 4, dtype=F64), mask) is None  # constant returns
    assert explained_variance(values, returns, torch.zeros(1, 4)) is None  # nothing valid
