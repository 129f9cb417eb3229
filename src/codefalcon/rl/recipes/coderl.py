"""CodeRL's actor update (Le et al. 2022): critic-weighted policy gradient against a greedy baseline,
alternating with cross-entropy on the ground-truth programs.

Each step, for ``tasks_per_step`` tasks:

1. sample ``group_size`` programs per task, execute them, score them (`collect_rollouts`; CodeRL's
   graded reward is ``reward.unit_tests: coderl``);
2. baseline: the reward of each task's greedy decode (``coderl.relative_returns``);
3. token returns R_t = p_critic(observed outcome at t) x (r - r_greedy): the trained critic's
   per-token probability of what the executor observed (``coderl.critic``), or 1 without one;
4. loss: -mean_t log p(w_t) R_t over the step's loss tokens (`coderl_pg_loss`);
5. update: ``updates_per_step`` optimiser steps accumulated over micro-batches, then one
   supervised step: ``coderl.ce_coef`` x the answer-token cross-entropy of the tasks' reference
   solutions (the same CE as the warm-up, `codefalcon.rl.sft.accumulate_ce`);
6. log and checkpoint (`codefalcon.rl.train.train_loop`).

When another engine sampled (``backend:``; the greedy baseline comes from it too), the trainer
computes its log-probs of the samples to log their gap to the engine's (``sample/logp_gap``);
with ``tis_cap`` each token's return is multiplied by its truncated importance weight, which
weighs its policy-gradient term (`engine_correction`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import Tensor

from codefalcon.models import Policy
from codefalcon.models.answers import Example, encode_example
from codefalcon.models.prompter import Prompter
from codefalcon.rl.logprobs import gather_logprobs
from codefalcon.rl.losses.coderl import coderl_pg_loss, coderl_token_returns
from codefalcon.rl.losses.masked import masked_mean
from codefalcon.rl.optim import optimizer_step
from codefalcon.rl.rollout import Rollouts, greedy_rewards, rollout_metrics
from codefalcon.rl.session import PromptFor, Session, open_session
from codefalcon.rl.sft import accumulate_ce
from codefalcon.rl.stats import to_metrics
from codefalcon.rl.train import train_loop
from codefalcon.rl.train_config import TrainConfig
from codefalcon.rl.update import (
    engine_correction,
    entropy_metric,
    gradient_step,
    policy_forward,
    rollout_logprobs,
    take,
)
from codefalcon.tasks.record import Task

CriticWeights = Callable[[Rollouts], Tensor]
"""(B, C) critic probability of each row's observed outcome at each completion token."""


def train(config: TrainConfig, progress: bool = True, *, allow_config_change: bool = False) -> dict[str, Any]:
    """Run (or resume) CodeRL training; the run summary (see `codefalcon.rl.train.train_rl`)."""
    with open_session(config, allow_config_change) as session:
        policy = session.policy
        critic = None
        if config.coderl.critic:
            from codefalcon.rl.critic_weights import CriticTokenWeights

            critic = CriticTokenWeights(config.coderl.critic, device=session.device)
        optimizer = session.optimizer()
        start = session.resume(optimizer)
        prompt_for = Prompter.from_policy(policy, config.sampling.max_new_tokens).base
        one_step = partial(train_step, session, optimizer, critic, prompt_for)
        return train_loop(session, start, one_step, partial(session.save, optimizer), prompt_for, progress)


def train_step(
    session: Session,
    optimizer: torch.optim.Optimizer,
    critic: CriticWeights | None,
    prompt_for: PromptFor,
    step: int,
    tasks: list[Task],
) -> dict[str, float]:
    """One CodeRL step (see the module docstring); returns the step's metrics."""
    config, model, options = session.config, session.policy.model, session.config.coderl
    temperature, micro = config.sampling.temperature, config.micro_batch_size

    # sample programs, execute and score them
    rollouts, record = session.sample(tasks, step, prompt_for)

    # the greedy baseline: one greedy program per task, its reward for each of the task's rows
    baseline = None
    if options.relative_returns:
        t0 = time.perf_counter()
        params = session.sampling(step)
        greedy = greedy_rewards(
            session.backend, session.executor, session.scorer, tasks, prompt_for, params, session.encoder
        )
        baseline = greedy.repeat_interleave(config.group_size).to(session.device)
        record["time/baseline"] = time.perf_counter() - t0
    t0 = time.perf_counter()

    # critic-weighted token returns
    mask = rollouts.loss_mask()
    probs = critic(rollouts) if critic is not None else mask.float()
    returns = coderl_token_returns(probs, rollouts.rewards, baseline, mask, relative=options.relative_returns)
    record["coderl/return_mean"] = float(masked_mean(returns, mask))
    if baseline is not None:
        record["coderl/baseline_reward"] = float(baseline.mean())
    if rollouts.engine_logprobs is not None:  # another engine sampled: compare, maybe correct
        old_logp, _ = rollout_logprobs(model, rollouts, micro, temperature, session.autocast)
        is_weights, engine_metrics = engine_correction(rollouts, old_logp, config.tis_cap)
        record.update(engine_metrics)
        if is_weights is not None:  # returns are constants, so this weighs each token's PG term
            returns = returns * is_weights

    # policy-gradient loss and update, accumulated over micro-batches
    def loss_of(index: list[int]) -> tuple[Tensor, dict[str, float]]:
        rows = rollouts.rows(index)
        logits, _ = policy_forward(model, rows, temperature, session.autocast)
        logp = gather_logprobs(logits, rows.completion_ids, rows.completion_mask)
        rows_returns, rows_mask = take(index, returns, mask)
        loss, stats = coderl_pg_loss(logp, rows_returns, rows_mask)
        return loss, {**to_metrics(stats, "loss/coderl"), **entropy_metric(logits, rows_mask)}

    for _ in range(config.updates_per_step):
        record.update(gradient_step(optimizer, loss_of, mask, micro, config.max_grad_norm, session.world))
    if options.ce_coef > 0:
        record.update(supervised_step(session, optimizer, tasks, prompt_for))
    record["time/update"] = time.perf_counter() - t0
    record.update(rollout_metrics(rollouts))
    return record


def supervised_step(
    session: Session, optimizer: torch.optim.Optimizer, tasks: list[Task], prompt_for: PromptFor
) -> dict[str, float]:
    """``ce_coef`` x the answer-token CE on the first reference solution of each task, one step,
    under the prompts the rollouts were sampled from."""
    config, policy, world = session.config, session.policy, session.world
    examples = reference_examples(policy, tasks, prompt_for)
    n_tokens = int(world.sum(sum(e.n_answer_tokens for e in examples)))  # all ranks' references
    if n_tokens == 0:
        return {}
    micro = config.micro_batch_size
    micro_batches = [examples[i : i + micro] for i in range(0, len(examples), micro)]
    coef = config.coderl.ce_coef
    loss, _ = accumulate_ce(policy.model, policy.kind, micro_batches, session.autocast, coef, n_tokens)
    world.sum_gradients(p for group in optimizer.param_groups for p in group["params"])
    optimizer_step(optimizer, config.max_grad_norm)
    return {"loss/ce": world.sum(loss)}


def reference_examples(policy: Policy, tasks: list[Task], prompt_for: PromptFor) -> list[Example]:
    """Each task's first reference solution as a training example, if it fits the context."""
    limit = policy.max_positions or 10**9
    examples = [encode_example(policy, t, t.solutions[0], prompt_for(t)) for t in tasks if t.solutions]
    return [e for e in examples if e.length <= limit]
