"""Rejection-sampling fine-tuning (expert iteration, RFT): learn only from the programs that passed.

Each step, for ``tasks_per_step`` tasks:

1. sample ``group_size`` programs per task, execute them, score them (`collect_rollouts`);
2. select: the samples that passed every hidden test, each distinct program of a task once, at
   most ``rft.max_per_task`` per task (`verified_rows`); samples cut at the token budget do not
   count (``rft.drop_truncated``), since learning them would teach the model not to stop;
3. loss: the token-mean negative log-likelihood of the selected samples at temperature 1
   (`rft_loss`): the warm-up's cross-entropy, on the model's own verified programs;
4. update: ``updates_per_step`` optimiser steps over them, accumulated over micro-batches;
5. log and checkpoint (`codefalcon.rl.train.train_loop`).

It is the positive-only special case of the policy gradient with a binary reward (failing samples
push nothing down), which is why it stays stable at learning rates where GRPO's negative
gradients make a small model collapse (docs/rl.md), and it needs a model that already solves
some tasks by sampling. Samples drawn by another engine (``backend:``) are learnt from as they
are: supervised learning needs no importance correction, so ``tis_cap`` is refused.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import torch
from torch import Tensor

from codefalcon.models.prompter import Prompter
from codefalcon.rl.logprobs import gather_logprobs
from codefalcon.rl.losses.rft import rft_loss, verified_rows
from codefalcon.rl.rollout import rollout_metrics
from codefalcon.rl.session import PromptFor, Session, open_session
from codefalcon.rl.train import train_loop
from codefalcon.rl.train_config import TrainConfig
from codefalcon.rl.update import entropy_metric, gradient_step, policy_forward
from codefalcon.tasks.record import Task


def train(config: TrainConfig, progress: bool = True, *, allow_config_change: bool = False) -> dict[str, Any]:
    """Run (or resume) RFT; the run summary (see `codefalcon.rl.train.train_rl`)."""
    with open_session(config, allow_config_change) as session:
        optimizer = session.optimizer()
        start = session.resume(optimizer)
        prompt_for = Prompter.from_policy(session.policy, config.sampling.max_new_tokens).base
        one_step = partial(train_step, session, optimizer, prompt_for)
        return train_loop(session, start, one_step, partial(session.save, optimizer), prompt_for, progress)


def train_step(
    session: Session, optimizer: torch.optim.Optimizer, prompt_for: PromptFor, step: int, tasks: list[Task]
) -> dict[str, float]:
    """One RFT step (see the module docstring); returns the step's metrics."""
    config, model, options = session.config, session.policy.model, session.config.rft

    # sample G programs per task, execute them
    rollouts, record = session.sample(tasks, step, prompt_for)
    t0 = time.perf_counter()

    # select the verified programs
    passed = [r.passed for r in rollouts.results]
    keep = verified_rows(
        passed, rollouts.programs, config.group_size, unique=options.unique, max_per_task=options.max_per_task
    ).to(rollouts.truncated.device)
    if options.drop_truncated:
        keep &= ~rollouts.truncated
    keep &= rollouts.reward_valid
    record["rft/kept"] = float(keep.sum())
    record["rft/tasks_with_kept"] = float((keep.view(-1, config.group_size).sum(dim=1) > 0).float().mean())
    # only the kept rows go through the model: the rest carry no loss
    kept = rollouts.rows(keep.nonzero().flatten().tolist())
    mask = kept.loss_mask()
    record["rft/tokens"] = float(mask.sum())

    # supervised loss on them and update, accumulated over micro-batches
    def loss_of(index: list[int]) -> tuple[Tensor, dict[str, float]]:
        rows = kept.rows(index)
        logits, _ = policy_forward(model, rows, 1.0, session.autocast)
        rows_mask = rows.loss_mask()
        logp = gather_logprobs(logits, rows.completion_ids, rows.completion_mask)
        loss, stats = rft_loss(logp, rows_mask)
        return loss, {**{f"loss/rft/{k}": v for k, v in stats.items()}, **entropy_metric(logits, rows_mask)}

    for _ in range(config.updates_per_step):
        record.update(
            gradient_step(
                optimizer, loss_of, mask, config.micro_batch_size, config.max_grad_norm, session.world
            )
        )
    record["time/update"] = time.perf_counter() - t0
    record.update(rollout_metrics(rollouts))
    return record
