"""CodeRL: critic-weighted token returns and the policy-gradient loss (its CE step: test_ce.py)."""

from __future__ import annotations

import pytest
import torch

from codefalcon.rl import coderl_pg_loss, coderl_token_returns, observed_outcome_probs
from support import close

ATOL = 1e-6


def test_observed_outcome_probs_reads_the_observed_class():
    # token 0: uniform over 4 classes -> 0.25; token 1: logits ln[1, 2, 3, 4] -> probs [.1, .2, .3, .4]
    logits = torch.log(torch.tensor([[[1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]]]))
    close(observed_outcome_probs(logits, torch.tensor([3])), [[0.25, 0.4]])
    close(observed_outcome_probs(logits, torch.tensor([1])), [[0.25, 0.2]])


def test_relative_and_absolute_token_returns():
    p = torch.tensor([[0.5, 0.8, 0.9], [0.7, 0.6, 0.1]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    reward = torch.tensor([1.0, -0.6], dtype=torch.float64)  # passed; runtime error
    baseline = torch.tensor([-0.3, -0.6], dtype=torch.float64)  # greedy: failed test; runtime error
    # row 0: r - b = 1.3 -> [0.5 x 1.3, 0.8 x 1.3, pad] = [0.65, 1.04, 0]
    # row 1: r - b = 0 -> no signal
    close(coderl_token_returns(p, reward, baseline, mask), [[0.65, 1.04, 0.0], [0.0, 0.0, 0.0]])
    # absolute: R_t = p x r -> [0.5, 0.8, 0], [0.7 x -0.6, 0.6 x -0.6, 0.1 x -0.6] = [-0.42, -0.36, -0.06]
    close(
        coderl_token_returns(p, reward, None, mask, relative=False),
        [[0.5, 0.8, 0.0], [-0.42, -0.36, -0.06]],
    )
    with pytest.raises(ValueError, match="baseline"):
        coderl_token_returns(p, reward, None, mask)


def test_token_returns_are_constants():
    p = torch.tensor([[0.5]], requires_grad=True)
    assert not coderl_token_returns(
        p, torch.tensor([1.0]), torch.tensor([0.0]), torch.ones(1, 1)
    ).requires_grad


def test_pg_loss_hand_computed_with_gradients():
    # -inf in padding must not leak into the loss (nan x 0) or the gradient
    logp = torch.tensor([[-1.0, -2.0], [-0.5, float("-inf")]], dtype=torch.float64, requires_grad=True)
    returns = torch.tensor([[0.5, 1.0], [2.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1], [1, 0]])
    loss, stats = coderl_pg_loss(logp, returns, mask)
    # -(1/3)(-1 x 0.5 + -2 x 1 + -0.5 x 2) = -(1/3)(-3.5) = 7/6
    close(loss, 7.0 / 6.0)
    assert stats.loss == pytest.approx(7.0 / 6.0, abs=ATOL)
    assert stats.n_tokens == 3.0
    assert stats.return_mean == pytest.approx(3.5 / 3.0, abs=ATOL)  # (0.5 + 1 + 2) / 3
    assert stats.logp_mean == pytest.approx(-3.5 / 3.0, abs=ATOL)  # (-1 - 2 - 0.5) / 3
    loss.backward()
    # d loss / d logp_t = -R_t / N: [-0.5/3, -1/3], [-2/3, 0 at padding]
    close(logp.grad, [[-0.5 / 3, -1.0 / 3], [-2.0 / 3, 0.0]])


def test_pg_loss_all_padding_is_zero_with_zero_grad():
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    loss, stats = coderl_pg_loss(logp, torch.ones(1, 2), torch.zeros(1, 2))
    loss.backward()
    assert loss.item() == 0.0 and stats.n_tokens == 0.0
    close(logp.grad, [[0.0, 0.0]])
