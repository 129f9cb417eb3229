"""GRPO and RLOO: group-relative advantages and the clipped token-level loss (DAPO style).

Each step, for ``tasks_per_step`` tasks:

1. sample ``group_size`` programs per task, execute them, score them (`collect_rollouts`); with
   ``grpo.oversample`` > 1 (dynamic sampling), sample that many times more tasks and keep the
   first ``tasks_per_step`` groups whose rewards differ (`informative_rows`);
2. advantage: each sample's reward relative to its own group, so no value model is needed.
   GRPO: (r - mean_g) / (std_g + eps), or r - mean_g with ``grpo.scale_rewards: none`` (Dr. GRPO);
   RLOO: r - mean of the other G - 1 rewards. That function is the only difference between the two;
3. loss: ``grpo_loss``, -min(ratio A, clip(ratio, 1 - eps_low, 1 + eps_high) A) per token
   (+ beta k3 against the frozen start policy when ``grpo.beta > 0``), a token mean over the
   step's loss tokens; samples cut at the token budget are dropped (``grpo.mask_truncated``);
4. update: ``updates_per_step`` optimiser steps, each accumulated over micro-batches weighted by
   their share of the loss tokens (so the gradient is the full-batch token mean);
5. log and checkpoint (`codefalcon.rl.train.train_loop`).

On-policy (``updates_per_step: 1``) the old log-probs are the current ones detached (ratio 1),
so no extra forward pass is needed, unless another engine sampled (``backend:``): then the
trainer recomputes them, logs their gap to the engine's (``sample/logp_gap``) and, with
``tis_cap``, weighs each token's surrogate by the truncated importance ratio
(`engine_correction`). The losses are the pure functions of `codefalcon.rl.losses.grpo`; see
docs/rl.md for their length biases.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import Tensor

from codefalcon.models.prompter import Prompter
from codefalcon.rl.logprobs import gather_logprobs
from codefalcon.rl.losses.grpo import (
    GroupStats,
    group_advantages,
    grpo_loss,
    informative_rows,
    rloo_advantages,
)
from codefalcon.rl.policy_setup import Reference, frozen_reference
from codefalcon.rl.rollout import Rollouts, rollout_metrics
from codefalcon.rl.session import PromptFor, Session, open_session
from codefalcon.rl.stats import to_metrics
from codefalcon.rl.train import train_loop
from codefalcon.rl.train_config import GRPOOptions, TrainConfig
from codefalcon.rl.update import (
    engine_correction,
    entropy_metric,
    gradient_step,
    policy_forward,
    rollout_logprobs,
    take,
)
from codefalcon.tasks.record import Task

Advantages = Callable[[Tensor, int], tuple[Tensor, GroupStats]]
"""(B,) rewards, group size -> (B,) advantages and their group stats."""


def advantages_for(config: TrainConfig) -> Advantages:
    """GRPO's group-normalised advantages, or RLOO's leave-one-out ones (``config.algo``)."""
    if config.algo == "rloo":
        return rloo_advantages
    return partial(group_advantages, scale=config.grpo.scale_rewards)


def train(config: TrainConfig, progress: bool = True, *, allow_config_change: bool = False) -> dict[str, Any]:
    """Run (or resume) GRPO or RLOO training; the run summary (see `codefalcon.rl.train.train_rl`)."""
    with open_session(config, allow_config_change) as session:
        policy = session.policy
        reference = None  # the frozen start policy, loaded only if its KL is weighed
        if config.grpo.beta > 0:
            reference = frozen_reference(policy, config.model, config.dtype, config.lora is not None)
        optimizer = session.optimizer()
        start = session.resume(optimizer)
        prompt_for = Prompter.from_policy(policy, config.sampling.max_new_tokens).base
        one_step = partial(train_step, session, optimizer, reference, advantages_for(config), prompt_for)
        return train_loop(session, start, one_step, partial(session.save, optimizer), prompt_for, progress)


def train_step(
    session: Session,
    optimizer: torch.optim.Optimizer,
    reference: Reference | None,
    advantages_of: Advantages,
    prompt_for: PromptFor,
    step: int,
    tasks: list[Task],
) -> dict[str, float]:
    """One GRPO / RLOO step (see the module docstring); returns the step's metrics."""
    config, model = session.config, session.policy.model
    temperature, micro = config.sampling.temperature, config.micro_batch_size

    # sample G programs per task, execute and score them; dynamic sampling keeps informative groups
    extra = oversampled_tasks(session, tasks, step)
    sampled, record = session.sample(tasks + extra, step, prompt_for)
    rollouts = sampled
    if extra:
        keep = informative_rows(sampled.rewards, config.group_size, len(tasks))
        record["sample/groups_kept"] = len(keep) / config.group_size
        rollouts = sampled.rows(keep)
    t0 = time.perf_counter()

    # advantage: each reward against its own group's
    advantages, group_stats = advantages_of(rollouts.rewards, config.group_size)
    record.update(to_metrics(group_stats, "adv"))
    mask = rollouts.loss_mask(drop_truncated=config.grpo.mask_truncated)
    old_logp = None  # on-policy: ratio 1 with the right gradient, no extra forward pass
    if config.updates_per_step > 1 or rollouts.engine_logprobs is not None:
        old_logp, _ = rollout_logprobs(model, rollouts, micro, temperature, session.autocast)
    is_weights = None  # the sampling engine's correction (None when HF sampled)
    if old_logp is not None:
        is_weights, engine_metrics = engine_correction(rollouts, old_logp, config.tis_cap)
        record.update(engine_metrics)
    ref_logp = None
    if reference is not None:
        with reference() as frozen:
            ref_logp, _ = rollout_logprobs(frozen, rollouts, micro, temperature, session.autocast)

    # loss and update, accumulated over micro-batches
    def loss_of(index: list[int]) -> tuple[Tensor, dict[str, float]]:
        rows = rollouts.rows(index)
        logits, _ = policy_forward(model, rows, temperature, session.autocast)
        adv, rows_mask, old, ref, weights = take(index, advantages, mask, old_logp, ref_logp, is_weights)
        return group_relative_loss(logits, rows, adv, rows_mask, old, ref, config.grpo, config.algo, weights)

    for _ in range(config.updates_per_step):
        record.update(gradient_step(optimizer, loss_of, mask, micro, config.max_grad_norm, session.world))
    record["time/update"] = time.perf_counter() - t0
    record.update(rollout_metrics(sampled))  # of everything sampled, kept or not
    return record


def oversampled_tasks(session: Session, tasks: list[Task], step: int) -> list[Task]:
    """Dynamic sampling's extra tasks of a step: round((oversample - 1) x len(tasks)) other
    training tasks, drawn with a seed of (run seed, step, rank), so a resumed run draws the same."""
    config = session.config
    n = round((config.grpo.oversample - 1) * len(tasks))
    if n == 0:
        return []
    chosen = {task.task_id for task in tasks}
    pool = [task for task in session.tasks if task.task_id not in chosen]
    rng = random.Random(f"codefalcon.oversample/{config.seed}/{step}/{session.world.rank}")
    return rng.sample(pool, min(n, len(pool)))


def group_relative_loss(
    logits: Tensor,
    rows: Rollouts,
    advantages: Tensor,
    mask: Tensor,
    old_logp: Tensor | None,
    ref_logp: Tensor | None,
    options: GRPOOptions,
    name: str,
    is_weights: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """`grpo_loss` of a micro-batch from its (B, C, V) logits, and its metrics (``loss/<name>/``).

    ``mask`` already leaves truncated samples out when ``options.mask_truncated``; they are passed
    to the loss as well, which is what counts them (``loss/<name>/n_truncated``). ``is_weights``:
    the truncated importance weights (``tis_cap``). FALCON's inner loop uses this loss too.
    """
    logp = gather_logprobs(logits, rows.completion_ids, rows.completion_mask)
    loss, stats = grpo_loss(
        logp,
        old_logp,
        advantages,
        mask,
        eps_low=options.eps_low,
        eps_high=options.eps_high,
        ref_logp=ref_logp,
        beta=options.beta,
        truncated=rows.truncated if options.mask_truncated else None,
        is_weights=is_weights,
    )
    return loss, {**to_metrics(stats, f"loss/{name}"), **entropy_metric(logits, mask)}
