"""The sampling engine vs the trainer: their log-prob gap, and truncated importance-sampling weights.

When rollouts come from another engine than the trainer's model (CTranslate2, vLLM, a server),
the engine's distribution mu differs from the trainer's pi_old a little (int8 or bf16 kernels, a
sync that lags), so "on-policy" samples are in fact off-policy. Truncated importance sampling
(Yao et al. 2025, "Your efficient RL framework secretly brings you off-policy RL training")
weighs each token's policy-gradient term by min(pi_old / mu, C), detached: unbiased up to the
cap, and bounded where the engine gave a token much more mass than the trainer does.

Engine log-probs come as (B, T) tensors with NaN wherever the engine gave none (a row it
reported nothing for, padding); those tokens get weight 1 and are left out of the gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from codefalcon.rl.losses.masked import masked_count, masked_mean
from codefalcon.rl.stats import item


def truncated_is_weights(old_logp: Tensor, engine_logp: Tensor, cap: float) -> Tensor:
    """(B, T) min(exp(old_logp - engine_logp), cap), detached; 1 where ``engine_logp`` is not finite.

    Example: old [-1, -2, -0.5], engine [-1.5, -1, NaN], cap 2 -> [min(e^0.5, 2) = 1.6487,
    min(e^-1, 2) = 0.3679, 1].
    """
    known = torch.isfinite(engine_logp)
    # Zero log-ratio where unknown, so exp never sees NaN (it would survive torch.where's gradient).
    log_ratio = torch.where(known, old_logp.detach() - engine_logp, torch.zeros_like(engine_logp))
    weights = torch.exp(log_ratio).clamp(max=cap)
    return torch.where(known, weights, torch.ones_like(weights)).detach()


@dataclass(frozen=True)
class EngineGap:
    """Engine vs trainer log-probs over the sampled tokens the engine reported, detached floats.

    ``logp_gap``: mean of engine - trainer (> 0: the engine is more confident in its samples);
    ``logp_gap_abs``: mean absolute gap; ``logp_covered``: fraction of sampled tokens with an engine
    log-prob. All 0 when the engine reported none.
    """

    logp_gap: float
    logp_gap_abs: float
    logp_covered: float


def engine_gap(engine_logp: Tensor, old_logp: Tensor, mask: Tensor) -> EngineGap:
    """`EngineGap` of the tokens in ``mask`` (the sampled ones) where ``engine_logp`` is finite.

    Example: engine [[-1, NaN], [-2, pad]], old [[-1.5, -1], [-1, pad]], mask [[1, 1], [1, 0]]
    -> gaps [0.5, -1]: logp_gap -0.25, logp_gap_abs 0.75, logp_covered 2/3.
    """
    sampled = mask.to(torch.bool)
    known = sampled & torch.isfinite(engine_logp)
    gap = torch.where(known, engine_logp - old_logp.detach(), torch.zeros_like(old_logp))
    n_sampled = item(masked_count(gap, sampled))
    return EngineGap(
        logp_gap=item(masked_mean(gap, known)),
        logp_gap_abs=item(masked_mean(gap.abs(), known)),
        logp_covered=item(masked_count(gap, known)) / n_sampled if n_sampled else 0.0,
    )
