"""CodeRL's actor loss: critic-weighted policy gradient with a greedy baseline.

CodeRL (Le et al. 2022) fine-tunes the actor on its own samples with token-level returns

    R_t = p_critic(observed outcome | w_<=t) x (r(sample) - r(greedy baseline))   (relative returns)
    R_t = p_critic(observed outcome | w_<=t) x r(sample)                            (absolute)

where r is the graded test reward (-1 compile error, -0.6 runtime error, -0.3 failed, +1 passed)
and the critic's per-token softmax is read at the class the executor actually observed. The RL
loss is -mean_t log p(w_t) R_t; it alternates with plain cross-entropy on ground-truth programs
(`codefalcon.rl.losses.ce.masked_token_cross_entropy`, the one used by SFT too).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from codefalcon.rl.losses.masked import masked_count, masked_mean
from codefalcon.rl.stats import item


def observed_outcome_probs(critic_logits: Tensor, outcome: Tensor) -> Tensor:
    """The critic's per-token probability of the outcome that was observed: (B, T, K), (B,) -> (B, T).

    ``outcome`` holds class indices in [0, K) (the critic's own ordering of compile error, runtime
    error, failed, passed). Example: logits [[[0, 0, 0, 0]]], outcome [3] -> [[0.25]].
    """
    probs = critic_logits.float().softmax(dim=-1)
    index = outcome.view(-1, 1, 1).expand(-1, probs.shape[1], 1)
    return probs.gather(-1, index).squeeze(-1)


def coderl_token_returns(
    critic_probs: Tensor,
    reward: Tensor,
    baseline_reward: Tensor | None,
    mask: Tensor,
    relative: bool = True,
) -> Tensor:
    """CodeRL's token returns R_t, (B, T), detached; 0 at padding.

    ``critic_probs`` (B, T): p_critic(observed outcome) at each sample token (`observed_outcome_probs`
    over the critic's decoder states, aligned with the sample's tokens). ``reward`` (B,): the
    sample's reward. ``baseline_reward`` (B,): the reward of the greedy decode for the same problem
    (needed when ``relative``; ignored otherwise).
    Example: p [[0.5, 0.8]], r [1.0], baseline [-0.3] -> [[0.65, 1.04]]; absolute -> [[0.5, 0.8]].
    """
    if relative:
        if baseline_reward is None:
            raise ValueError("relative returns need baseline_reward (the greedy sample's reward)")
        advantage = reward - baseline_reward
    else:
        advantage = reward
    returns = critic_probs.detach() * advantage.detach().to(critic_probs.dtype).unsqueeze(1)
    return torch.where(mask.to(torch.bool), returns, torch.zeros_like(returns))


@dataclass(frozen=True)
class PGStats:
    """Diagnostics of `coderl_pg_loss`, detached floats; means are over valid tokens."""

    loss: float
    n_tokens: float
    return_mean: float
    logp_mean: float


def coderl_pg_loss(logp: Tensor, returns: Tensor, mask: Tensor) -> tuple[Tensor, PGStats]:
    """-(1/N) sum over all N valid tokens of the batch of log p(w_t) R_t: scalar and `PGStats`.

    The mean is per token over the whole batch (every valid token weighs the same; a row's weight
    grows with its length), not per sequence. ``returns`` are constants (no gradient flows into
    them). No valid token -> loss 0 (still attached to ``logp``, so backward gives zero grads).
    Example: logp [[-1, -2], [-0.5, pad]], R [[0.5, 1], [2, pad]] -> -(-0.5 - 2 - 1) / 3 = 7/6.
    """
    loss = -masked_mean(logp * returns.detach(), mask)
    stats = PGStats(
        loss=item(loss),
        n_tokens=item(masked_count(logp, mask)),
        return_mean=item(masked_mean(returns, mask)),
        logp_mean=item(masked_mean(logp, mask)),
    )
    return loss, stats
