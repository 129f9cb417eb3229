"""Group-relative RL: GRPO and RLOO advantages, and the clipped token-level GRPO loss (DAPO style).

Each prompt is sampled ``group_size`` times; a sample's advantage is its reward relative to its
own group, so no value model is needed. Rewards are laid out group by group: rows
[g x G, (g + 1) x G) of a (B,) tensor are the G samples of prompt g (``repeat_interleave`` order,
as in TRL). A group whose rewards are all equal carries no learning signal: its advantages are
exactly 0 and it is counted in the stats (TRL's ``frac_reward_zero_std``).

The loss (DeepSeekMath GRPO with DAPO's changes, Yu et al. 2025):

    ratio_t = exp(logp_t - old_logp_t)
    l_t = -min(ratio_t A, clip(ratio_t, 1 - eps_low, 1 + eps_high) A) + beta k3_t
    loss = aggregate(l, mask)

- clip-higher: eps_high > eps_low lets low-probability tokens with positive advantage grow more
  before clipping, which keeps entropy from collapsing;
- overlong filtering: ``truncated`` samples (cut at the token budget, so their reward judges an
  unfinished program) are dropped from the loss entirely;
- token-level normalisation (`token_mean`, the default): the sum over all valid tokens of the batch
  divided by their number. Every token weighs the same, so a long sample pulls harder than a short
  one. `sequence_mean` (original GRPO: mean per sample, then over samples) instead gives each sample
  equal weight, so each token of a long sample counts less: long wrong answers are penalised
  less per token and short right answers rewarded more per token, a bias toward longer wrong
  outputs. `ConstantNormalizer` (Dr. GRPO) divides the sum by a fixed B x max_tokens, so the scale
  does not depend on the batch's lengths at all.
- KL to a reference (optional, beta > 0) uses the k3 estimator, added per token.

Pick the normalisation by passing the function as ``aggregate``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from codefalcon.rl.losses.kl import kl_k3
from codefalcon.rl.losses.masked import masked_count, masked_mean, masked_sum
from codefalcon.rl.stats import item

Aggregate = Callable[[Tensor, Tensor], Tensor]


def token_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Sum over all valid tokens of the batch / their number (DAPO); 0 with none.

    Example: rows [1, 1, 1] and [4] -> 7 / 4 = 1.75.
    """
    return masked_mean(x, mask)


def sequence_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over samples (with at least one valid token) of each sample's token mean (GRPO).

    Example: rows [1, 1, 1] and [4] -> (1 + 4) / 2 = 2.5.
    """
    per_row = masked_mean(x, mask, dim=1)  # (B,)
    nonempty = masked_count(x, mask, dim=1) > 0
    return masked_mean(per_row, nonempty)


@dataclass(frozen=True)
class ConstantNormalizer:
    """Sum over all valid tokens / (B x max_tokens) (Dr. GRPO): a scale independent of lengths.

    A callable class, not a closure, so it pickles. Example with max_tokens 4: rows [1, 1, 1] and
    [4] -> 7 / (2 x 4) = 0.875.
    """

    max_tokens: int

    def __call__(self, x: Tensor, mask: Tensor) -> Tensor:
        return masked_sum(x, mask) / (x.shape[0] * self.max_tokens)


@dataclass(frozen=True)
class GroupStats:
    """Diagnostics of the group advantage estimators, detached floats.

    ``n_zero_std_groups`` / ``frac_zero_std``: groups whose rewards are all equal (advantage 0, no
    signal). ``group_std_mean``: mean over groups of the within-group reward std (Bessel).
    """

    n_groups: float
    n_zero_std_groups: float
    frac_zero_std: float
    reward_mean: float
    group_std_mean: float


def group_advantages(
    rewards: Tensor, group_size: int, scale: Literal["std", "none"] = "std", eps: float = 1e-4
) -> tuple[Tensor, GroupStats]:
    """GRPO advantages A_i = (r_i - mean_g) / (std_g + eps), or r_i - mean_g with ``scale="none"``.

    ``rewards`` (B,) with B a multiple of ``group_size`` >= 2, grouped as in the module docstring;
    returns advantages (B,) (detached) and `GroupStats`. std is the Bessel-corrected group std, as
    in TRL. ``scale="none"`` is Dr. GRPO's choice: dividing by std up-weights groups that are almost
    all right or all wrong. Zero-variance groups get exactly 0.
    Example: group [1, 0, 0, 1]: mean 0.5, std sqrt(1/3) = 0.57735 -> +-0.5 / 0.57745 = +-0.865875.
    """
    if scale not in ("std", "none"):
        raise ValueError(f'scale must be "std" or "none" (got {scale!r})')
    grouped, zero = _grouped(rewards, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale == "std":
        centred = centred / (grouped.std(dim=1, keepdim=True) + eps)
    advantages = torch.where(zero.unsqueeze(1), torch.zeros_like(centred), centred)
    return advantages.reshape(-1), _group_stats(grouped, zero)


def rloo_advantages(rewards: Tensor, group_size: int) -> tuple[Tensor, GroupStats]:
    """REINFORCE leave-one-out: A_i = r_i - mean of the other G - 1 rewards of its group.

    Equal to G / (G - 1) x (r_i - mean_g) (Kool et al. 2019; Ahmadian et al. 2024). Same layout,
    shapes and stats as `group_advantages`; zero-variance groups get exactly 0.
    Example: group [1, 0, 0]: 1 - 0 = 1, 0 - 0.5 = -0.5, -0.5.
    """
    grouped, zero = _grouped(rewards, group_size)
    others = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)
    centred = grouped - others
    advantages = torch.where(zero.unsqueeze(1), torch.zeros_like(centred), centred)
    return advantages.reshape(-1), _group_stats(grouped, zero)


def informative_rows(rewards: Tensor, group_size: int, n_groups: int) -> list[int]:
    """Row indices of the first ``n_groups`` groups whose rewards are not all equal (DAPO's dynamic
    sampling: a zero-variance group has zero advantages and only takes the place of one that
    teaches). Fewer if fewer such groups exist; rows of a group stay together and in order.

    Example: group_size 2, rewards [1, 1, 0, 1, 0, 0, 1, 0], n_groups 1 -> [2, 3].
    """
    _, zero = _grouped(rewards, group_size)
    groups = [g for g in range(zero.shape[0]) if not bool(zero[g])][:n_groups]
    return [g * group_size + j for g in groups for j in range(group_size)]


def _grouped(rewards: Tensor, group_size: int) -> tuple[Tensor, Tensor]:
    """(n_groups, G) view of the rewards, and which groups have zero variance."""
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be (B,), got shape {tuple(rewards.shape)}")
    if group_size < 2 or rewards.shape[0] % group_size:
        raise ValueError(
            f"group_size must be >= 2 and divide the batch (got {group_size} for {rewards.shape[0]} rewards)"
        )
    if not bool(torch.isfinite(rewards).all()):
        raise ValueError("rewards must be finite: drop or impute missing rewards before advantages")
    grouped = rewards.detach().view(-1, group_size)
    return grouped, grouped.amax(dim=1) == grouped.amin(dim=1)


def _group_stats(grouped: Tensor, zero: Tensor) -> GroupStats:
    n_groups = grouped.shape[0]
    n_zero = int(zero.sum())
    return GroupStats(
        n_groups=float(n_groups),
        n_zero_std_groups=float(n_zero),
        frac_zero_std=n_zero / n_groups if n_groups else 0.0,
        reward_mean=item(grouped.mean()) if n_groups else 0.0,
        group_std_mean=item(grouped.std(dim=1).mean()) if n_groups else 0.0,
    )


@dataclass(frozen=True)
class GRPOStats:
    """Diagnostics of `grpo_loss`, detached floats over the tokens that count (valid, not truncated).

    ``clip_frac_low``: tokens with A < 0 and ratio < 1 - eps_low; ``clip_frac_high``: A > 0 and
    ratio > 1 + eps_high (those get no gradient). ``kl``: mean k3 per token, None without a
    reference. ``n_truncated``: samples dropped by overlong filtering.
    """

    loss: float
    clip_frac_low: float
    clip_frac_high: float
    clip_frac: float
    ratio_mean: float
    kl: float | None
    n_tokens: float
    n_truncated: float


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.28,
    ref_logp: Tensor | None = None,
    beta: float = 0.0,
    truncated: Tensor | None = None,
    aggregate: Aggregate = token_mean,
    is_weights: Tensor | None = None,
) -> tuple[Tensor, GRPOStats]:
    """The clipped GRPO / DAPO objective (see the module docstring): scalar and `GRPOStats`.

    Shapes: logp, old_logp, mask, ref_logp (B, T); advantages (B,) (one per sample, broadcast over
    its tokens) or (B, T); truncated (B,) bool, True = drop the sample's tokens. ``old_logp=None`` means
    on-policy (old = logp detached, so ratio = 1 with the right gradient). ``is_weights`` (B, T),
    constants: each token's clipped surrogate is multiplied by its weight, the KL term is not
    (truncated importance sampling against the sampling engine, `truncated_is_weights`). With no token left
    (everything padding or truncated) the loss is 0 and the gradient zero.
    Example: logp = old, A = [1, -1], one token each -> -(1 + -1) / 2 = 0.
    """
    if beta > 0 and ref_logp is None:
        raise ValueError("beta > 0 needs ref_logp (the frozen reference's log-probs); or set beta = 0")
    valid = mask.to(torch.bool)
    n_truncated = 0.0
    if truncated is not None:
        dropped = truncated.to(torch.bool)
        valid = valid & ~dropped.unsqueeze(1)
        n_truncated = float(dropped.sum())
    old = logp.detach() if old_logp is None else old_logp.detach()
    adv = advantages.detach().to(logp.dtype)
    adv = adv.unsqueeze(1) if adv.dim() == 1 else adv  # (B, 1) per sample, or (B, T) per token
    # Zero log-ratio at positions that don't count, so exp never sees what padding holds.
    log_ratio = torch.where(valid, logp - old, torch.zeros_like(logp))
    ratio = torch.exp(log_ratio)
    surrogate = torch.minimum(ratio * adv, torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv)
    per_token = -surrogate if is_weights is None else -surrogate * is_weights.detach().to(logp.dtype)
    kl = None
    if ref_logp is not None:
        ref = torch.where(valid, ref_logp.detach(), logp.detach())
        k3 = kl_k3(logp, ref)
        kl = item(masked_mean(k3.detach(), valid))
        if beta > 0:
            per_token = per_token + beta * k3
    loss = aggregate(per_token, valid)
    with torch.no_grad():
        low = ((ratio < 1.0 - eps_low) & (adv < 0)).to(ratio.dtype)
        high = ((ratio > 1.0 + eps_high) & (adv > 0)).to(ratio.dtype)
        stats = GRPOStats(
            loss=item(loss),
            clip_frac_low=item(masked_mean(low, valid)),
            clip_frac_high=item(masked_mean(high, valid)),
            clip_frac=item(masked_mean(low + high, valid)),
            ratio_mean=item(masked_mean(ratio, valid)),
            kl=kl,
            n_tokens=item(masked_count(ratio, valid)),
            n_truncated=n_truncated,
        )
    return loss, stats
