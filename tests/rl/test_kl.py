"""KL estimators, per-token KL penalty rewards, and the KL coefficient controllers."""

from __future__ import annotations

import math

import pytest
import torch

from codefalcon.rl import AdaptiveKLController, FixedKLController, kl_k1, kl_k3, kl_penalty_rewards
from support import close

ATOL = 1e-6


def test_estimators_hand_computed():
    logp = torch.tensor([-1.0, -2.0, -1.5], dtype=torch.float64)
    ref = torch.tensor([-2.0, -1.0, -1.5], dtype=torch.float64)
    close(kl_k1(logp, ref), [1.0, -1.0, 0.0])
    # k3 with d = ref - logp: d = -1 -> e^-1 + 1 - 1 = 0.36787944; d = 1 -> e - 1 - 1 = 0.71828183; d = 0 -> 0
    close(kl_k3(logp, ref), [math.exp(-1.0), math.e - 2.0, 0.0])


LOGP = torch.tensor([[-1.0, -1.0, 0.0], [-0.5, -2.0, -1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
REF = torch.tensor([[-2.0, -1.0, 5.0], [-1.0, -2.0, -0.5], [3.0, 3.0, 3.0]], dtype=torch.float64)
MASK = torch.tensor([[1, 1, 0], [1, 1, 1], [0, 0, 0]])
SCORE = torch.tensor([1.0, -0.3, 0.5], dtype=torch.float64)


def test_penalty_rewards_k1_hand_computed():
    rewards, stats = kl_penalty_rewards(SCORE, LOGP, REF, MASK, beta=0.1)
    # row 0: k1 = [1, 0] -> [-0.1, 0 + score 1.0 at the last valid token, pad 0]
    # row 1: k1 = [0.5, 0, -0.5] -> [-0.05, 0, +0.05 + score -0.3 = -0.25]
    # row 2: no valid token -> all 0, its score is dropped
    close(rewards, [[-0.1, 1.0, 0.0], [-0.05, 0.0, -0.25], [0.0, 0.0, 0.0]])
    assert stats.kl == pytest.approx(0.5, abs=ATOL)  # sequence KLs 1 and 0 over the 2 non-empty rows
    assert stats.kl_per_token == pytest.approx(0.2, abs=ATOL)  # (1 + 0 + 0.5 + 0 - 0.5) / 5
    assert stats.non_score_reward == pytest.approx(-0.05, abs=ATOL)  # -0.1 x 0.5
    assert stats.score_mean == pytest.approx(0.35, abs=ATOL)  # (1 - 0.3) / 2
    assert stats.n_empty_rows == 1.0 and stats.beta == 0.1


def test_penalty_rewards_with_k3_estimator():
    rewards, _ = kl_penalty_rewards(SCORE[:1], LOGP[:1], REF[:1], MASK[:1], beta=0.1, estimator=kl_k3)
    # k3 = [e^-1, 0] -> [-0.1 e^-1, 1.0]
    close(rewards, [[-0.1 * math.exp(-1.0), 1.0, 0.0]])


def test_penalty_rewards_are_detached():
    logp = LOGP.clone().requires_grad_(True)
    rewards, _ = kl_penalty_rewards(SCORE, logp, REF, MASK, beta=0.1)
    assert not rewards.requires_grad


def test_adaptive_controller_hand_computed():
    ctl = AdaptiveKLController(init_beta=0.1, target=1.0, horizon=100)
    # kl 3: error 3/1 - 1 = 2 clipped to 0.2 -> 0.1 x (1 + 0.2 x 10/100) = 0.102
    assert ctl.update(3.0, n_steps=10) == pytest.approx(0.102, abs=1e-12)
    ctl = AdaptiveKLController(0.1, 1.0, 100)
    # kl 1.05: error 0.05 -> 0.1 x (1 + 0.05 x 0.1) = 0.1005
    assert ctl.update(1.05, 10) == pytest.approx(0.1005, abs=1e-12)
    ctl = AdaptiveKLController(0.1, 1.0, 100)
    # kl 0: error -1 clipped to -0.2 -> 0.1 x (1 - 0.02) = 0.098
    assert ctl.update(0.0, 10) == pytest.approx(0.098, abs=1e-12)
    assert ctl.beta == pytest.approx(0.098, abs=1e-12)


@pytest.mark.parametrize("kl", [0.0, 0.5, 0.99, 1.0, 1.01, 1.5, 10.0, 1e6])
def test_adaptive_controller_direction_and_bound(kl):
    ctl = AdaptiveKLController(0.5, target=1.0, horizon=1000)
    new = ctl.update(kl, n_steps=64)
    bound = 0.2 * 64 / 1000  # at most 20% x n / horizon, relative
    assert abs(new / 0.5 - 1.0) <= bound + 1e-12
    if kl > 1.0:
        assert new > 0.5
    elif kl < 1.0:
        assert new < 0.5
    else:
        assert new == 0.5


def test_controller_state_round_trip_and_fixed():
    ctl = AdaptiveKLController(0.1, 6.0, 10000)
    ctl.update(12.0, 256)
    restored = AdaptiveKLController(1.0, 1.0, 1.0)
    restored.load_state_dict(ctl.state_dict())
    assert restored.beta == ctl.beta and restored.target == 6.0 and restored.horizon == 10000
    fixed = FixedKLController(0.05)
    assert fixed.update(100.0, 64) == 0.05 and fixed.beta == 0.05
    with pytest.raises(ValueError):
        AdaptiveKLController(0.1, target=0.0, horizon=10)
    with pytest.raises(ValueError):
        FixedKLController(-1.0)
