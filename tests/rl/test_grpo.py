"""GRPO / RLOO: group advantages, the clipped token-level loss, overlong filtering, KL, normalisers."""

from __future__ import annotations

import math

import pytest
import torch

from codefalcon.rl import (
    ConstantNormalizer,
    group_advantages,
    grpo_loss,
    informative_rows,
    rloo_advantages,
    sequence_mean,
)
from support import close

ATOL = 1e-6
F64 = torch.float64


REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5], dtype=F64)


def test_group_advantages_std_hand_computed_with_zero_variance_group():
    adv, stats = group_advantages(REWARDS, group_size=4)
    # group 0: mean 0.5; Bessel std = sqrt((4 x 0.25) / 3) = 0.5773502692; + eps 1e-4 = 0.5774502692
    a = 0.5 / (math.sqrt(1.0 / 3.0) + 1e-4)  # 0.8658753...
    # group 1: all 0.5 -> zero variance -> exactly 0, and counted
    close(adv, [a, -a, -a, a, 0.0, 0.0, 0.0, 0.0])
    assert stats.n_groups == 2.0 and stats.n_zero_std_groups == 1.0 and stats.frac_zero_std == 0.5
    assert stats.reward_mean == pytest.approx(0.5, abs=ATOL)
    assert stats.group_std_mean == pytest.approx(math.sqrt(1.0 / 3.0) / 2, abs=ATOL)  # (0.57735 + 0) / 2


def test_group_advantages_without_std_scaling():
    adv, _ = group_advantages(REWARDS, group_size=4, scale="none")
    close(adv, [0.5, -0.5, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0])  # r - group mean


def test_zero_variance_group_is_exactly_zero_despite_rounding():
    # float32 mean of [0.1, 0.1, 0.1] is not exactly 0.1; dividing the residue by eps would blow it up
    adv, stats = group_advantages(torch.tensor([0.1, 0.1, 0.1]), group_size=3)
    assert adv.tolist() == [0.0, 0.0, 0.0] and stats.n_zero_std_groups == 1.0


def test_rloo_advantages_leave_one_out():
    adv, stats = rloo_advantages(torch.tensor([1.0, 0.0, 0.0, 3.0, 3.0, 3.0], dtype=F64), group_size=3)
    # [1, 0, 0]: 1 - (0 + 0)/2 = 1; 0 - (1 + 0)/2 = -0.5 (twice); [3, 3, 3] -> zero variance -> 0
    close(adv, [1.0, -0.5, -0.5, 0.0, 0.0, 0.0])
    assert stats.n_zero_std_groups == 1.0
    # equals G/(G-1) (r - mean) = 1.5 x [2/3, -1/3, -1/3]
    close(adv[:3], 1.5 * (torch.tensor([1.0, 0.0, 0.0], dtype=F64) - 1.0 / 3.0))


@pytest.mark.parametrize("estimator", [group_advantages, rloo_advantages])
def test_group_estimators_reject_bad_input(estimator):
    with pytest.raises(ValueError, match="group_size"):
        estimator(torch.zeros(6), 4)
    with pytest.raises(ValueError, match="group_size"):
        estimator(torch.zeros(6), 1)
    with pytest.raises(ValueError, match="finite"):
        estimator(torch.tensor([1.0, float("nan")]), 2)


def test_group_advantages_rejects_unknown_scale():
    with pytest.raises(ValueError, match="scale"):
        group_advantages(REWARDS, 4, scale="mad")  # type: ignore[arg-type]


# Two samples, three token slots. Row 0: A = +1, ratios [1.0, 1.5, 0.5]. Row 1: A = -1, ratios
# [1.0, 0.5, pad]. Clip range with eps_low 0.2, eps_high 0.28: [0.8, 1.28].
#   row 0 (A = +1): min(r, clip r) = [1, min(1.5, 1.28) = 1.28 (clipped high), min(0.5, 0.8) = 0.5]
#   row 1 (A = -1): min(-r, -clip r) = [-1, min(-0.5, -0.8) = -0.8 (clipped low)]
# per-token loss l = -min(...) = [-1, -1.28, -0.5], [1, 0.8]; sum = -0.98 over N = 5 tokens.
RATIOS = torch.tensor([[1.0, 1.5, 0.5], [1.0, 0.5, 1.0]], dtype=F64)
ADV = torch.tensor([1.0, -1.0], dtype=F64)
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])


def logp_for(ratios=RATIOS):
    return torch.log(ratios).requires_grad_(True)  # with old_logp = 0, ratio = exp(logp)


def test_grpo_loss_token_level_hand_computed_with_gradients():
    logp = logp_for()
    loss, stats = grpo_loss(logp, torch.zeros(2, 3, dtype=F64), ADV, MASK)
    close(loss, -0.98 / 5)  # -0.196
    assert stats.clip_frac_high == pytest.approx(0.2, abs=ATOL)  # 1 of 5
    assert stats.clip_frac_low == pytest.approx(0.2, abs=ATOL)  # 1 of 5
    assert stats.clip_frac == pytest.approx(0.4, abs=ATOL)
    assert stats.ratio_mean == pytest.approx(0.9, abs=ATOL)  # (1 + 1.5 + 0.5 + 1 + 0.5) / 5
    assert stats.n_tokens == 5.0 and stats.n_truncated == 0.0 and stats.kl is None
    loss.backward()
    # unclipped tokens: d(-r A)/d logp / N = -r A / 5; clipped tokens and padding: 0
    close(logp.grad, [[-1.0 / 5, 0.0, -0.5 / 5], [1.0 / 5, 0.0, 0.0]])


def test_grpo_loss_other_normalisers():
    # sequence mean: row 0 -2.78 / 3, row 1 1.8 / 2 = 0.9 -> (-0.926667 + 0.9) / 2 = -0.0133333
    loss, _ = grpo_loss(logp_for(), torch.zeros(2, 3, dtype=F64), ADV, MASK, aggregate=sequence_mean)
    close(loss, (-2.78 / 3 + 0.9) / 2)
    # Dr. GRPO constant: -0.98 / (B 2 x max_tokens 4) = -0.1225
    loss, _ = grpo_loss(logp_for(), torch.zeros(2, 3, dtype=F64), ADV, MASK, aggregate=ConstantNormalizer(4))
    close(loss, -0.1225)


def test_grpo_overlong_filtering_drops_truncated_samples():
    logp = logp_for()
    loss, stats = grpo_loss(
        logp, torch.zeros(2, 3, dtype=F64), ADV, MASK, truncated=torch.tensor([False, True])
    )
    close(loss, -2.78 / 3)  # only row 0 counts: (-1 - 1.28 - 0.5) / 3
    assert stats.n_tokens == 3.0 and stats.n_truncated == 1.0
    assert stats.clip_frac_low == 0.0 and stats.clip_frac_high == pytest.approx(1.0 / 3.0, abs=ATOL)
    loss.backward()
    close(logp.grad, [[-1.0 / 3, 0.0, -0.5 / 3], [0.0, 0.0, 0.0]])


def test_grpo_everything_truncated_or_padding_gives_zero_without_nan():
    logp = torch.tensor([[float("-inf"), 2.0]], dtype=F64, requires_grad=True)
    loss, stats = grpo_loss(
        logp,
        torch.zeros(1, 2, dtype=F64),
        torch.ones(1, dtype=F64),
        torch.tensor([[0, 1]]),
        truncated=torch.tensor([True]),
    )
    loss.backward()
    assert loss.item() == 0.0 and stats.n_tokens == 0.0
    close(logp.grad, [[0.0, 0.0]])


@pytest.mark.parametrize(("ratio", "advantage"), [(1.25, 1.0), (0.75, -1.0)])
def test_grpo_ratio_exactly_at_clip_boundary_is_not_clipped(ratio, advantage):
    logp = torch.log(torch.tensor([[ratio]], dtype=F64)).requires_grad_(True)
    loss, stats = grpo_loss(
        logp,
        torch.zeros(1, 1, dtype=F64),
        torch.tensor([advantage], dtype=F64),
        torch.ones(1, 1),
        eps_low=0.25,
        eps_high=0.25,
    )
    close(loss, -advantage * ratio)
    loss.backward()
    close(logp.grad, [[-advantage * ratio]])
    assert stats.clip_frac == 0.0


def test_grpo_on_policy_old_logp_none():
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -0.3]], dtype=F64, requires_grad=True)
    loss, _ = grpo_loss(logp, None, torch.tensor([2.0, -1.0], dtype=F64), torch.ones(2, 2))
    close(loss, -(2 + 2 - 1 - 1) / 4)  # ratio 1: -mean_t A = -0.5
    loss.backward()
    close(logp.grad, [[-0.5, -0.5], [0.25, 0.25]])  # -A / N


def test_grpo_k3_kl_term():
    logp = torch.tensor([[-1.0]], dtype=F64, requires_grad=True)
    ref = torch.tensor([[-2.0]], dtype=F64)
    loss, stats = grpo_loss(logp, None, torch.zeros(1, dtype=F64), torch.ones(1, 1), ref_logp=ref, beta=0.1)
    # A = 0, so only beta k3: k3 = e^-1 - (-1) - 1 = 0.36787944 -> loss 0.036787944
    close(loss, 0.1 * math.exp(-1.0))
    assert stats.kl == pytest.approx(math.exp(-1.0), abs=ATOL)
    loss.backward()
    # d k3 / d logp = -e^(ref - logp) + 1 = 1 - e^-1 -> x beta = 0.0632120559
    close(logp.grad, [[0.1 * (1 - math.exp(-1.0))]])
    # beta 0 with a reference: KL reported, loss untouched
    loss0, stats0 = grpo_loss(logp, None, torch.zeros(1, dtype=F64), torch.ones(1, 1), ref_logp=ref)
    close(loss0, 0.0)
    assert stats0.kl == pytest.approx(math.exp(-1.0), abs=ATOL)
    with pytest.raises(ValueError, match="ref_logp"):
        grpo_loss(logp, None, torch.zeros(1, dtype=F64), torch.ones(1, 1), beta=0.1)


def test_group_relative_loss_counts_the_truncated_samples_it_drops() -> None:
    # The glue, not the pure loss: the recipe folds truncation into the rollouts' loss mask, and
    # used to log n_truncated = 0 whatever was dropped.
    from types import SimpleNamespace

    from codefalcon.rl.recipes.grpo import group_relative_loss
    from codefalcon.rl.rollout import Rollouts
    from codefalcon.rl.train_config import GRPOOptions

    logits = torch.zeros(3, 2, 5, requires_grad=True)  # uniform: logp = -ln 5 everywhere
    rows = SimpleNamespace(
        completion_ids=torch.tensor([[1, 2], [3, 4], [0, 1]]),
        completion_mask=torch.ones(3, 2, dtype=torch.long),
        truncated=torch.tensor([True, False, True]),
        reward_valid=torch.tensor([True, True, True]),
    )
    advantages = torch.tensor([1.0, -1.0, 0.5])
    for mask_truncated, expected in ((True, 2.0), (False, 0.0)):
        mask = Rollouts.loss_mask(rows, drop_truncated=mask_truncated)  # type: ignore[arg-type]
        options = GRPOOptions(mask_truncated=mask_truncated)
        loss, metrics = group_relative_loss(logits, rows, advantages, mask, None, None, options, "grpo")
        assert metrics["loss/grpo/n_truncated"] == expected
        # on-policy, ratio 1: loss = -token mean of A; only row 1 (A = -1) left when truncation drops
        close(loss, 1.0 if mask_truncated else -(2 * 1.0 - 2 * 1.0 + 2 * 0.5) / 6)
        assert metrics["loss/grpo/n_tokens"] == (2.0 if mask_truncated else 6.0)
        assert metrics["policy/entropy"] == pytest.approx(math.log(5.0), abs=ATOL)


def test_informative_rows_keeps_whole_groups_with_reward_variance_in_order():
    rewards = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0])  # groups: equal, mixed, equal, mixed
    assert informative_rows(rewards, 2, 1) == [2, 3]
    assert informative_rows(rewards, 2, 5) == [2, 3, 6, 7]  # only two groups teach anything
    assert informative_rows(torch.zeros(4), 2, 2) == []
    with pytest.raises(ValueError, match="group_size"):
        informative_rows(torch.zeros(5), 2, 1)
