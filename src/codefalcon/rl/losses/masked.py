"""Masked reductions over padded token tensors: sum, mean, variance, whitening.

Every per-token quantity in `codefalcon.rl` is a (B, T) tensor paired with a (B, T) mask that is
1 (or True) where a position holds a real token and 0 at padding. These functions read only the
valid entries. Padding may hold anything, even inf or NaN (the log-probability of a pad token
under a model that never saw it), because values are *selected* with `torch.where`, never
multiplied by the mask (``nan * 0`` is nan). Empty selections (an all-padding row, a batch with
no valid token) give 0, never NaN.

``mask`` must broadcast to ``x``; its dtype may be bool, int or float (nonzero = valid).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _valid(x: Tensor, mask: Tensor) -> Tensor:
    """Boolean mask of x's shape."""
    return mask.to(torch.bool).expand_as(x)


def masked_sum(x: Tensor, mask: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Sum of the valid entries of x: over everything (scalar) or along ``dim``.

    Example: x = [[1, 2, 9]], mask = [[1, 1, 0]] -> 3.
    """
    kept = torch.where(_valid(x, mask), x, torch.zeros_like(x))
    return kept.sum() if dim is None else kept.sum(dim=dim, keepdim=keepdim)


def masked_count(x: Tensor, mask: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Number of valid entries (in x's dtype), over everything or along ``dim``."""
    valid = _valid(x, mask).to(x.dtype)
    return valid.sum() if dim is None else valid.sum(dim=dim, keepdim=keepdim)


def masked_mean(x: Tensor, mask: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Mean of the valid entries of x; 0 where there are none (all-padding rows).

    With ``dim=None`` this is the token-level mean over the whole batch: every valid token weighs
    the same, whatever its row's length. With ``dim=1`` on (B, T) it is the per-row mean, (B,).
    Example: x = [[1, 2, 9], [4, 0, 0]], mask = [[1, 1, 0], [1, 0, 0]] -> (1 + 2 + 4) / 3 = 7/3;
    with dim=1 -> [1.5, 4.0].
    """
    total = masked_sum(x, mask, dim, keepdim)
    count = masked_count(x, mask, dim, keepdim)
    return total / count.clamp(min=1)


def masked_var(
    x: Tensor, mask: Tensor, dim: int | None = None, keepdim: bool = False, unbiased: bool = False
) -> Tensor:
    """Variance of the valid entries of x; 0 where there are none (or one, when unbiased).

    ``unbiased=False`` divides by n (population variance), ``True`` by n - 1 (Bessel).
    Example: valid entries [1, 2, 3] -> 2/3; unbiased -> 1.
    """
    mean = masked_mean(x, mask, dim, keepdim=True)
    centred = torch.where(_valid(x, mask), x - mean, torch.zeros_like(x))
    total = masked_sum(centred.square(), mask, dim, keepdim)
    count = masked_count(x, mask, dim, keepdim)
    return total / (count - float(unbiased)).clamp(min=1)


def masked_whiten(x: Tensor, mask: Tensor, shift_mean: bool = True, eps: float = 1e-8) -> Tensor:
    """(x - mean) / sqrt(var + eps) over all valid entries of x (population variance); 0 at padding.

    Used to normalise PPO advantages over a batch. ``shift_mean=False`` scales without centring
    (adds the mean back), which keeps the sign of every advantage. With no valid entry the result is
    all zeros. Example: valid entries [1, 3] -> mean 2, var 1 -> [-1, 1] (up to eps).
    """
    mean = masked_mean(x, mask)
    var = masked_var(x, mask)
    whitened = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        whitened = whitened + mean
    return torch.where(_valid(x, mask), whitened, torch.zeros_like(x))


def last_valid_index(mask: Tensor) -> Tensor:
    """Index of the last valid position of each row of a (B, T) mask, (B,) long; -1 for empty rows.

    Example: [[1, 1, 0], [0, 0, 0], [1, 1, 1]] -> [1, -1, 2].
    """
    valid = mask.to(torch.bool)
    positions = torch.arange(valid.shape[-1], device=valid.device).expand_as(valid)
    return torch.where(valid, positions, torch.full_like(positions, -1)).amax(dim=-1)
