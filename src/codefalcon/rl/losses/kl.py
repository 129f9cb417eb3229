"""KL divergence to a frozen reference policy: per-token estimators, penalty rewards, controllers.

Per-token estimators of KL(pi || pi_ref) from samples of pi (Schulman, "Approximating KL
divergence", 2020), with d = log pi_ref(w_t) - log pi(w_t):

- ``kl_k1``: -d = log pi - log pi_ref. Unbiased, can be negative per token; PPOCoder's penalty.
- ``kl_k3``: exp(d) - d - 1. Unbiased and never negative; GRPO's KL term.

Pick one by passing the function (e.g. ``kl_penalty_rewards(..., estimator=kl_k3)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from codefalcon.rl.losses.masked import last_valid_index, masked_count, masked_mean, masked_sum
from codefalcon.rl.stats import item

KLEstimator = Callable[[Tensor, Tensor], Tensor]


def kl_k1(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """log pi - log pi_ref per token (same shape as the inputs). Example: (-1, -2) -> 1."""
    return logp - ref_logp


def kl_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """exp(ref - logp) - (ref - logp) - 1 per token; >= 0, and 0 where the two agree.

    Example: logp = -1, ref = -2 -> d = -1 -> e^-1 + 1 - 1 = 0.367879.
    """
    d = ref_logp - logp
    return torch.exp(d) - d - 1


@dataclass(frozen=True)
class KLPenaltyStats:
    """Diagnostics of `kl_penalty_rewards`, detached floats.

    ``kl``: mean over non-empty rows of the row's summed per-token estimate: the sequence-level KL
    to feed `AdaptiveKLController.update`. ``kl_per_token``: mean over all valid tokens.
    ``non_score_reward``: mean over non-empty rows of the row's summed penalty, -beta x kl.
    ``n_empty_rows``: rows with no valid token (they get no reward, not even their score).
    """

    kl: float
    kl_per_token: float
    non_score_reward: float
    score_mean: float
    beta: float
    n_empty_rows: float


def kl_penalty_rewards(
    score: Tensor,
    logp: Tensor,
    ref_logp: Tensor,
    mask: Tensor,
    beta: float,
    estimator: KLEstimator = kl_k1,
) -> tuple[Tensor, KLPenaltyStats]:
    """Per-token PPO rewards: -beta x KL estimate on every valid token, the score on the last one.

    Shapes: score (B,) the sequence reward from execution; logp, ref_logp, mask (B, T). Returns
    rewards (B, T) (0 at padding, detached: rewards are constants) and `KLPenaltyStats`.
    PPOCoder / Ziegler et al. 2019: r_t = -beta (log pi(w_t) - log pi_ref(w_t)) + [t = last] score.
    Example: score [1.0], logp [[-1, -1]], ref [[-2, -1]], beta 0.1 -> [[-0.1, 1.0]].
    """
    logp, ref_logp, score = logp.detach(), ref_logp.detach(), score.detach()
    valid = mask.to(torch.bool)
    per_token = estimator(logp, ref_logp)
    rewards = torch.where(valid, -beta * per_token, torch.zeros_like(per_token))
    last = last_valid_index(mask)  # (B,), -1 for empty rows
    nonempty = last >= 0
    at_last = torch.nn.functional.one_hot(last.clamp(min=0), mask.shape[1]).to(torch.bool)
    at_last &= nonempty.unsqueeze(1)
    rewards = rewards + torch.where(at_last, score.to(rewards.dtype).unsqueeze(1), torch.zeros_like(rewards))

    row_kl = masked_sum(per_token, mask, dim=1)  # (B,)
    rows = nonempty.to(per_token.dtype)
    stats = KLPenaltyStats(
        kl=item(masked_mean(row_kl, rows)),
        kl_per_token=item(masked_mean(per_token, mask)),
        non_score_reward=item(masked_mean(-beta * row_kl, rows)),
        score_mean=item(masked_mean(score.to(per_token.dtype), rows)),
        beta=float(beta),
        n_empty_rows=item(masked_count(row_kl, ~nonempty)),
    )
    return rewards, stats


class KLController(Protocol):
    """What the training loop needs of a KL coefficient: its value and a per-step update."""

    @property
    def beta(self) -> float: ...

    def update(self, kl: float, n_steps: int) -> float: ...

    def state_dict(self) -> dict[str, float]: ...

    def load_state_dict(self, state: dict[str, float]) -> None: ...


class FixedKLController:
    """A constant KL coefficient; `update` changes nothing."""

    def __init__(self, beta: float) -> None:
        if beta < 0:
            raise ValueError(f"beta must be >= 0 (got {beta})")
        self._beta = float(beta)

    @property
    def beta(self) -> float:
        return self._beta

    def update(self, kl: float, n_steps: int) -> float:
        return self._beta

    def state_dict(self) -> dict[str, float]:
        return {"beta": self._beta}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self._beta = float(state["beta"])


class AdaptiveKLController:
    """A KL coefficient steered toward a target KL (Ziegler et al. 2019; PPOCoder's rule).

    After a batch with measured sequence KL ``kl`` over ``n_steps`` samples:

        beta <- beta x (1 + clip(kl / target - 1, -0.2, 0.2) x n_steps / horizon)

    so beta grows when the policy drifts past the target and shrinks when it stays close, by at
    most 20% x n_steps / horizon per update. Example: beta 0.1, target 1, horizon 100, kl 3,
    n_steps 10 -> error clipped to 0.2 -> beta 0.1 x (1 + 0.2 x 0.1) = 0.102.
    """

    def __init__(self, init_beta: float, target: float, horizon: float) -> None:
        if init_beta < 0 or target <= 0 or horizon <= 0:
            raise ValueError(
                f"need init_beta >= 0, target > 0, horizon > 0 (got {init_beta}, {target}, {horizon})"
            )
        self._beta = float(init_beta)
        self.target = float(target)
        self.horizon = float(horizon)

    @property
    def beta(self) -> float:
        return self._beta

    def update(self, kl: float, n_steps: int) -> float:
        """Move beta after a batch of ``n_steps`` samples whose mean sequence KL was ``kl``; new beta."""
        error = min(max(kl / self.target - 1.0, -0.2), 0.2)
        self._beta *= 1.0 + error * n_steps / self.horizon
        return self._beta

    def state_dict(self) -> dict[str, float]:
        return {"beta": self._beta, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self._beta = float(state["beta"])
        self.target = float(state["target"])
        self.horizon = float(state["horizon"])
