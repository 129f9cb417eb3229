"""Rejection-sampling fine-tuning (expert iteration): cross-entropy on the samples that passed.

Which samples to learn from is the whole algorithm; the loss is the supervised one. A task's group
contributes its verified programs only, each distinct program once (an easy task solved eight
times the same way would otherwise outweigh a hard task solved once), and at most
``max_per_task`` of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from codefalcon.rl.losses.masked import masked_mean


def verified_rows(
    passed: Sequence[bool],
    programs: Sequence[str],
    group_size: int,
    *,
    unique: bool = True,
    max_per_task: int | None = None,
) -> Tensor:
    """(B,) bool: the rows to fine-tune on, per group of ``group_size`` consecutive rows.

    A row is kept if it passed, is (with ``unique``) the first row of its group with that program
    text after stripping surrounding whitespace, and is among its group's first ``max_per_task``
    kept rows. Example: group_size 4, passed [1, 1, 0, 1], programs [a, a, b, c] -> [1, 0, 0, 1].
    """
    if len(passed) != len(programs) or len(passed) % group_size:
        raise ValueError(
            f"verified_rows: {len(passed)} results and {len(programs)} programs do not make whole "
            f"groups of group_size {group_size}"
        )
    keep = [False] * len(passed)
    for start in range(0, len(passed), group_size):
        seen: set[str] = set()
        kept = 0
        for i in range(start, start + group_size):
            text = programs[i].strip()
            if (
                not passed[i]
                or (unique and text in seen)
                or (max_per_task is not None and kept >= max_per_task)
            ):
                continue
            seen.add(text)
            keep[i] = True
            kept += 1
    return torch.tensor(keep, dtype=torch.bool)


def rft_loss(logp: Tensor, mask: Tensor) -> tuple[Tensor, dict[str, float]]:
    """Token-mean negative log-likelihood of the kept samples' tokens, and its value as a metric.

    ``logp`` (B, C): log-probs of the sampled tokens at temperature 1; ``mask`` (B, C): the kept
    rows' tokens. Example: logp [[-1, -3]], mask [[1, 0]] -> 1.0 (one token, NLL 1).
    """
    loss = -masked_mean(logp, mask)
    return loss, {"nll": float(loss.detach())}
