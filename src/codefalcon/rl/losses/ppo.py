"""PPO pieces for PPOCoder: GAE, the clipped policy and value losses, explained variance.

PPOCoder (Shojaee et al. 2023) trains the policy with per-token rewards (`kl_penalty_rewards`:
a KL penalty on every token, the execution score on the last), a value head, GAE with gamma = 1
and lambda = 0.95, and clip 0.2 for both the policy ratio and the value update; the total loss is
policy + vf_coef x value with vf_coef = 1e-3. All means here are token-level over the batch.

Value alignment: V_t estimates the return from the state *before* token t, i.e. the value head
reads the same position whose logits predict token t (see `completion_logits`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from codefalcon.rl.losses.masked import masked_count, masked_mean, masked_var
from codefalcon.rl.stats import item


def gae(
    rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimates and returns, both (B, T), detached, 0 at padding.

    delta_t = r_t + gamma V_{t+1} - V_t,  A_t = delta_t + gamma lam A_{t+1},  returns_t = A_t + V_t,
    with V_{t+1} = 0 and A_{t+1} = 0 past a row's last valid token: the episode ends there, and
    values or rewards written at padding are never read. Valid tokens must form one contiguous run
    per row (right-padded completions); a hole would end the episode early.
    With gamma = lam = 1, A_t = sum_{s >= t} r_s - V_t (reward-to-go minus value).
    Example: r [[0, 1]], V [[0.5, 0.2]], gamma 1, lam 0.5: delta = [0 + 0.2 - 0.5, 1 - 0.2] =
    [-0.3, 0.8]; A = [-0.3 + 0.5 x 0.8, 0.8] = [0.1, 0.8]; returns [0.6, 1.0].
    """
    valid = mask.to(torch.bool)
    rewards = torch.where(valid, rewards.detach(), torch.zeros_like(rewards))
    values = torch.where(valid, values.detach(), torch.zeros_like(values))
    n_steps = rewards.shape[1]
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(rewards[:, 0])
    next_value = torch.zeros_like(values[:, 0])
    for t in reversed(range(n_steps)):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = torch.where(valid[:, t], delta + gamma * lam * next_advantage, torch.zeros_like(delta))
        advantages[:, t] = advantage
        next_advantage, next_value = advantage, values[:, t]  # both 0 at padding
    returns = torch.where(valid, advantages + values, torch.zeros_like(values))
    return advantages, returns


@dataclass(frozen=True)
class PolicyStats:
    """Diagnostics of `ppo_policy_loss`, detached floats over valid tokens.

    ``clipfrac``: fraction with |ratio - 1| > clip. ``approx_kl``: mean of (ratio - 1) - log ratio
    (the k3 estimate of KL(old || new), >= 0; CleanRL's approx_kl).
    """

    loss: float
    clipfrac: float
    approx_kl: float
    ratio_mean: float
    n_tokens: float


def ppo_policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip: float = 0.2,
    is_weights: Tensor | None = None,
) -> tuple[Tensor, PolicyStats]:
    """PPO's clipped surrogate, token-mean over the batch: scalar and `PolicyStats`.

    ratio_t = exp(logp_t - old_logp_t);  loss = mean_t max(-A_t ratio_t, -A_t clip(ratio_t, 1 +- clip)).
    All of logp, old_logp, advantages, mask are (B, T); old_logp and advantages are constants. A
    token whose ratio has left the clip range in the direction its advantage pushes gets zero
    gradient; at exactly 1 +- clip it is not clipped. Whiten advantages first if wanted
    (`masked_whiten`). Example: ratio [1.5, 0.5], A [1, 1], clip 0.2 -> max(-1.5, -1.2) = -1.2
    (clipped: no gradient) and max(-0.5, -0.8) = -0.5 -> loss -0.85. ``is_weights`` (B, T),
    constants: each token's clipped term is multiplied by its weight (truncated importance
    sampling against the sampling engine, `truncated_is_weights`).
    """
    old_logp, advantages = old_logp.detach(), advantages.detach()
    # Zero log-ratio at padding, so exp never sees what padding holds (no inf, no NaN gradients).
    log_ratio = torch.where(mask.to(torch.bool), logp - old_logp, torch.zeros_like(logp))
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    per_token = torch.maximum(unclipped, clipped)
    if is_weights is not None:
        per_token = per_token * is_weights.detach().to(per_token.dtype)
    loss = masked_mean(per_token, mask)
    with torch.no_grad():
        stats = PolicyStats(
            loss=item(loss),
            clipfrac=item(masked_mean(((ratio - 1.0).abs() > clip).to(ratio.dtype), mask)),
            approx_kl=item(masked_mean((ratio - 1.0) - log_ratio, mask)),
            ratio_mean=item(masked_mean(ratio, mask)),
            n_tokens=item(masked_count(ratio, mask)),
        )
    return loss, stats


@dataclass(frozen=True)
class ValueStats:
    """Diagnostics of `ppo_value_loss`, detached floats over valid tokens.

    ``clipfrac``: fraction of tokens where the clipped error was the larger one (the update is cut).
    """

    loss: float
    clipfrac: float
    value_mean: float
    n_tokens: float


def ppo_value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, clip: float | None = 0.2
) -> tuple[Tensor, ValueStats]:
    """PPO's clipped value loss, 0.5 x token-mean over the batch: scalar and `ValueStats`.

    V_clip = old + clip(V - old, -clip, clip);  loss = 0.5 mean_t max((V - R)^2, (V_clip - R)^2).
    ``clip=None`` gives the plain 0.5 mean (V - R)^2. Shapes (B, T); old_values and returns are
    constants. Example: V 1.5, old 1.0, R 2.0, clip 0.2 -> max(0.25, (1.2 - 2)^2 = 0.64) x 0.5 = 0.32.
    """
    old_values, returns = old_values.detach(), returns.detach()
    error = (values - returns).square()
    if clip is None:
        worst = error
        cut = torch.zeros_like(error, dtype=torch.bool)
    else:
        clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)
        clipped_error = (clipped_values - returns).square()
        worst = torch.maximum(error, clipped_error)
        cut = clipped_error > error
    loss = 0.5 * masked_mean(worst, mask)
    stats = ValueStats(
        loss=item(loss),
        clipfrac=item(masked_mean(cut.to(error.dtype), mask)),
        value_mean=item(masked_mean(values.detach(), mask)),
        n_tokens=item(masked_count(error, mask)),
    )
    return loss, stats


def explained_variance(values: Tensor, returns: Tensor, mask: Tensor) -> float | None:
    """1 - Var(returns - values) / Var(returns) over valid tokens; None when Var(returns) is 0.

    1 is a perfect value function, 0 no better than a constant, negative worse. Undefined (None,
    not NaN, so logs stay valid JSON) when the returns are constant or there are no valid tokens.
    Example: returns [1, 2, 3], values [1, 2, 2] -> 1 - (2/9) / (2/3) = 2/3.
    """
    var_returns = masked_var(returns.detach(), mask)
    if item(var_returns) == 0.0:
        return None
    return 1.0 - item(masked_var(returns.detach() - values.detach(), mask) / var_returns)
