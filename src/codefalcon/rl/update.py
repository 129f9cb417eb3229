"""The update mechanics the recipes share: forward passes over rollouts and micro-batch accumulation.

A recipe's loss is a token mean over all the loss tokens of a step's rollouts, but the model sees
``micro_batch_size`` rows at a time. `accumulate_gradients` weighs each micro-batch's token-mean
loss by its share of the step's loss tokens before ``backward``, so the accumulated gradient is
the full-batch token mean (tests/rl/test_update.py checks it to 1e-6 on a linear model).
On several processes the shares are of the *global* batch's loss tokens and `gradient_step` sums
the gradients over the ranks, so the step is the one process would take (`codefalcon.rl.distributed`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from codefalcon.models.loading import model_device
from codefalcon.rl.distributed import SINGLE, World
from codefalcon.rl.logprobs import completion_forward, entropy_from_logits, gather_logprobs
from codefalcon.rl.losses.importance import engine_gap, truncated_is_weights
from codefalcon.rl.losses.masked import masked_mean
from codefalcon.rl.optim import bf16_autocast, optimizer_step
from codefalcon.rl.rollout import Rollouts
from codefalcon.rl.stats import to_metrics

MicroBatchLoss = Callable[[list[int]], tuple[Tensor, dict[str, float]]]
"""The loss of the rollout rows ``index`` (a token mean over their loss tokens) and its metrics."""


def micro_batches(size: int, micro: int) -> Iterator[list[int]]:
    """Consecutive row indices, ``micro`` at a time. Example: (5, 2) -> [0, 1], [2, 3], [4]."""
    for start in range(0, size, micro):
        yield list(range(start, min(start + micro, size)))


def accumulate_gradients(
    loss_of: MicroBatchLoss, loss_mask: Tensor, micro_batch_size: int, total: float | None = None
) -> dict[str, float]:
    """Backward of every micro-batch's loss times its share of the loss tokens; the step's metrics.

    ``loss_mask`` (B, C): the tokens that carry loss; a micro-batch with none is skipped (it would
    add nothing). Metrics are averaged with the same shares. Example: micro-batches holding 3 and
    1 of 4 loss tokens with token means l1 and l2 -> gradient of (3 l1 + 1 l2) / 4. ``total``:
    the loss tokens the shares are of (default: ``loss_mask``'s; on several processes, the global
    batch's, so this rank's gradient and metrics are its part of the global ones).
    """
    total = float(loss_mask.sum()) if total is None else total
    stats: dict[str, float] = {}
    if total == 0:
        return stats
    for index in micro_batches(loss_mask.shape[0], micro_batch_size):
        share = float(take(index, loss_mask)[0].sum()) / total
        if share == 0:
            continue
        loss, micro_stats = loss_of(index)
        (loss * share).backward()
        for key, value in micro_stats.items():
            stats[key] = stats.get(key, 0.0) + share * value
    return stats


def gradient_step(
    optimizer: torch.optim.Optimizer,
    loss_of: MicroBatchLoss,
    loss_mask: Tensor,
    micro_batch_size: int,
    max_grad_norm: float,
    world: World = SINGLE,
) -> dict[str, float]:
    """`accumulate_gradients`, then one clipped optimiser step; a step without loss tokens is skipped.

    With a ``world`` of several ranks the shares are of the global loss tokens and the gradients
    and metrics are summed over the ranks before the step, so all ranks step alike.
    """
    total = world.sum(float(loss_mask.sum()))
    if total == 0:
        return {"loss/skipped_empty_step": 1.0}
    stats = world.sum_metrics(accumulate_gradients(loss_of, loss_mask, micro_batch_size, total))
    world.sum_gradients(p for group in optimizer.param_groups for p in group["params"])
    stats["optim/grad_norm"] = optimizer_step(optimizer, max_grad_norm)
    return stats


def take(index: list[int], *tensors: Tensor | None) -> list[Any]:
    """Rows ``index`` of each (B, ...) tensor, sliced on its device; None stays None."""
    picked = []
    for tensor in tensors:
        if tensor is None:
            picked.append(None)
            continue
        picked.append(tensor[torch.as_tensor(index, dtype=torch.long, device=tensor.device)])
    return picked


def policy_forward(
    model: nn.Module,
    rows: Rollouts,
    temperature: float,
    autocast: bool,
    value_head: nn.Module | None = None,
) -> tuple[Tensor, Tensor | None]:
    """(B, C, V) float32 logits of the completion tokens at the sampling temperature and, with a
    ``value_head``, its (B, C) values read from the same positions."""
    with bf16_autocast(autocast, model_device(model)):
        logits, states = completion_forward(
            model,
            rows.prompt_ids,
            rows.prompt_mask,
            rows.completion_ids,
            rows.completion_mask,
            temperature,
            hidden=value_head is not None,
        )
    values = value_head(states) if value_head is not None else None
    return logits.float(), values


@torch.no_grad()
def rollout_logprobs(
    model: nn.Module,
    rollouts: Rollouts,
    micro_batch_size: int,
    temperature: float,
    autocast: bool,
    value_head: nn.Module | None = None,
) -> tuple[Tensor, Tensor | None]:
    """(B, C) log-probs of the sampled tokens under ``model`` (and values), no gradient: the old
    policy's and the frozen reference's, computed once per step."""
    logps, values = [], []
    for index in micro_batches(rollouts.size, micro_batch_size):
        rows = rollouts.rows(index)
        logits, v = policy_forward(model, rows, temperature, autocast, value_head)
        logps.append(gather_logprobs(logits, rows.completion_ids, rows.completion_mask))
        values.append(v)
    return torch.cat(logps), (torch.cat(values) if value_head is not None else None)


def entropy_metric(logits: Tensor, mask: Tensor) -> dict[str, float]:
    """``policy/entropy``: mean entropy (nats) of the sampling distribution over the loss tokens."""
    with torch.no_grad():
        return {"policy/entropy": float(masked_mean(entropy_from_logits(logits), mask))}


def engine_correction(
    rollouts: Rollouts, old_logp: Tensor, tis_cap: float | None
) -> tuple[Tensor | None, dict[str, float]]:
    """Truncated importance weights of the sampled tokens (None without ``tis_cap`` or engine
    log-probs) and the ``sample/`` metrics comparing the engine with the trainer.

    ``old_logp`` (B, C): the trainer's log-probs of the sampled tokens before the update.
    Metrics: ``sample/logp_gap``, ``sample/logp_gap_abs``, ``sample/logp_covered`` (fraction of
    tokens the engine reported) and, with ``tis_cap``, ``sample/tis_weight_mean`` and
    ``sample/tis_capped_frac`` (tokens whose weight hit the cap), all over the sampled tokens.
    """
    engine = rollouts.engine_logprobs
    if engine is None:
        return None, {}
    sampled = rollouts.completion_mask.bool()
    record = to_metrics(engine_gap(engine, old_logp, sampled), "sample")
    if tis_cap is None:
        return None, record
    weights = truncated_is_weights(old_logp, engine, tis_cap)
    record["sample/tis_weight_mean"] = float(masked_mean(weights, sampled))
    record["sample/tis_capped_frac"] = float(masked_mean((weights >= tis_cap).float(), sampled))
    return weights, record
