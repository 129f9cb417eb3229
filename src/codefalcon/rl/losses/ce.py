"""Token cross-entropy: the one supervised loss (SFT's warm-up and CodeRL's supervised step).

It returns the *sum* over the tokens that count and their number, not the mean, so gradient
accumulation can divide every micro-batch by the token count of the whole optimiser step and the
accumulated gradient is the full-batch token mean (`codefalcon.rl.sft.accumulate_ce`).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def masked_token_cross_entropy(
    logits: Tensor, labels: Tensor, ignore_index: int = -100
) -> tuple[Tensor, int]:
    """Summed cross-entropy over positions whose label is not ``ignore_index``, and their count.

    -100 is PyTorch's default and `codefalcon.models.answers.IGNORE_INDEX` (prompt tokens, padding).

    ``logits``: (B, T, V) already aligned with ``labels`` (B, T): shift causal LM outputs first
    (the logits at t predict token t + 1). Computed in float32 whatever the logits' dtype.
    Example: logits all 0 over 2 classes, labels [[1, ignore]] -> (ln 2 = 0.693147, 1).
    """
    flat = labels.reshape(-1)
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), flat, ignore_index=ignore_index, reduction="sum"
    )
    return loss, int((flat != ignore_index).sum())
