"""FALCON's meta-RL: long-term memory in the prompts, per-task inner adaptation, a first-order outer step.

Each step, for ``tasks_per_step`` tasks:

1. **Long-term memory in the prompts** (`MemoryPrompts`): the best passing programs of the most
   similar *other* training tasks, retrieved from the `LongTermMemory`, go before the task under
   a token budget (the task itself is never cut). The prompts are `Prompter.with_context`'s, the
   same `codefalcon solve` builds, so training and inference prompts are byte-identical.
2. Sample ``group_size`` programs per task with those prompts, execute them, score them.
3. Advantage: GRPO's group-relative one (``grpo.scale_rewards``).
4. **Inner loop** (per task): a copy of the trainable weights (the LoRA adapter, or all weights)
   takes ``falcon.inner_steps`` plain SGD steps of GRPO's loss on that task's short-term memory:
   its fresh samples and their rewards.
5. **Outer loop**: Reptile (Nichol et al. 2018), ``theta <- theta + eps * mean_i(theta_i - theta)``
   (`reptile_gradients`), with ``-mean_i(theta_i - theta)`` given to AdamW as the gradient, so
   clipping, the learning rate and checkpoints work as for every other algorithm.
6. Every rollout is written to the long-term store (the memory grows); log and checkpoint
   (`codefalcon.rl.train.train_loop`). A resumed run first deletes what its own store got after
   the checkpoint, so retrieval repeats exactly.

Why Reptile rather than first-order MAML: FOMAML needs a second batch per task (query samples)
to take the outer gradient at the adapted weights, which doubles generation, the slowest phase
here; Reptile uses only the inner trajectory. Tasks whose group has no reward variance give no
inner gradient and contribute theta_i - theta = 0, as in Reptile's average over the batch.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import torch
from torch import Tensor

from codefalcon.rl.losses.grpo import group_advantages
from codefalcon.rl.memory_prompts import MemoryPrompts, open_memory, store_references
from codefalcon.rl.optim import optimizer_step
from codefalcon.rl.recipes.grpo import group_relative_loss
from codefalcon.rl.reptile import TaskLoss, reptile_gradients
from codefalcon.rl.rollout import rollout_metrics
from codefalcon.rl.session import Session, open_session
from codefalcon.rl.stats import to_metrics
from codefalcon.rl.train import train_loop
from codefalcon.rl.train_config import TrainConfig
from codefalcon.rl.update import policy_forward, take
from codefalcon.tasks.record import Task


def train(config: TrainConfig, progress: bool = True, *, allow_config_change: bool = False) -> dict[str, Any]:
    """Run (or resume) FALCON training; the run summary (see `codefalcon.rl.train.train_rl`)."""
    with open_session(config, allow_config_change) as session:
        optimizer = session.optimizer()
        start = session.resume(optimizer)
        prompts = memory_prompts(session, start.step)
        one_step = partial(train_step, session, optimizer, prompts)
        return train_loop(session, start, one_step, partial(session.save, optimizer), prompts, progress)


def memory_prompts(session: Session, resume_step: int) -> MemoryPrompts:
    """FALCON's long-term memory, open for the run: rolled back to the checkpoint if it is the
    run's own store, and holding the training tasks' verified reference solutions
    (``falcon.seed_with_references``)."""
    config, options = session.config, session.config.falcon
    memory = session.stack.enter_context(
        open_memory(options.memory or session.out / "memory.db", options.embedder)
    )
    if options.memory is None:
        memory.forget_after(resume_step)
    if options.seed_with_references:
        store_references(memory, session.tasks, config.executor_config)
    budget = (session.policy.max_positions or 4096) - config.sampling.max_new_tokens
    return MemoryPrompts(session.policy, memory, options.retrieve_k, budget, options.example_filter)


def train_step(
    session: Session, optimizer: torch.optim.Optimizer, prompts: MemoryPrompts, step: int, tasks: list[Task]
) -> dict[str, float]:
    """One FALCON step (see the module docstring); returns the step's metrics."""
    config, model, options = session.config, session.policy.model, session.config.falcon
    group_size = config.group_size

    # sample programs under memory-augmented prompts, execute and score them
    rollouts, record = session.sample(tasks, step, prompts)
    t0 = time.perf_counter()

    # advantage: each reward against its own group's
    advantages, group_stats = group_advantages(rollouts.rewards, group_size, scale=config.grpo.scale_rewards)
    record.update(to_metrics(group_stats, "adv"))
    mask = rollouts.loss_mask(drop_truncated=config.grpo.mask_truncated)

    # inner loop on each task's own samples (no signal: theta_i = theta), then the Reptile step
    def task_loss(index: list[int]) -> tuple[Tensor, dict[str, float]]:
        rows = rollouts.rows(index)
        logits, _ = policy_forward(model, rows, config.sampling.temperature, session.autocast)
        adv, rows_mask = take(index, advantages, mask)
        return group_relative_loss(logits, rows, adv, rows_mask, None, None, config.grpo, "falcon")

    n_tasks = rollouts.size // group_size
    groups = [list(range(g * group_size, (g + 1) * group_size)) for g in range(n_tasks)]
    losses: list[TaskLoss] = [
        partial(task_loss, rows) for rows in groups if has_signal(rows, advantages, mask)
    ]
    params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
    trajectories = reptile_gradients(params, losses, n_tasks, options.inner_steps, options.inner_lr)
    record["falcon/adapted_tasks"] = float(len(trajectories))
    record["falcon/tasks"] = float(n_tasks)
    if trajectories:
        record["falcon/meta_grad_norm"] = optimizer_step(optimizer, config.max_grad_norm)
        inner = [loss for trajectory in trajectories for loss, _ in trajectory]
        record["falcon/inner_loss"] = sum(inner) / len(inner)
        first = [trajectory[0][1]["policy/entropy"] for trajectory in trajectories]  # the shared policy's
        record["policy/entropy"] = sum(first) / len(first)
    record["time/update"] = time.perf_counter() - t0

    prompts.record(rollouts, step + 1)  # the long-term memory grows by this step's attempts
    record.update(rollout_metrics(rollouts))
    return record


def has_signal(rows: list[int], advantages: Tensor, mask: Tensor) -> bool:
    """Whether a task's group can move the weights: a loss token, and an advantage that is not 0."""
    rows_advantages, rows_mask = take(rows, advantages, mask)
    return bool(rows_mask.any()) and not bool((rows_advantages == 0).all())
