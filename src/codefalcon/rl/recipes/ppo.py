"""PPOCoder's PPO (Shojaee et al. 2023): KL-penalised token rewards, GAE on a value head, clipped losses.

Each step, for ``tasks_per_step`` tasks:

1. sample ``group_size`` programs per task, execute them, score them (`collect_rollouts`; the
   reward can include PPOCoder's compiler, AST and data-flow parts, ``reward.static_weights``);
2. old log-probs and values of the sampled tokens, and the frozen start policy's log-probs;
3. token rewards: -beta (log pi - log pi_ref) on every token, the program's reward on the last
   (`kl_penalty_rewards`); beta follows the adaptive controller toward ``ppo.target_kl``;
4. advantage: GAE (gamma 1, lambda 0.95) on the value head, whitened over the batch;
5. loss: clipped policy loss + ``vf_coef`` x clipped value loss, token means;
6. update: ``updates_per_step`` optimiser steps over policy and value head, each accumulated
   over micro-batches weighted by their share of the loss tokens;
7. log and checkpoint (`codefalcon.rl.train.train_loop`); the checkpoint also holds the value
   head and the KL coefficient.

When another engine sampled (``backend:``), step 2 also logs the gap between its log-probs and
the trainer's (``sample/logp_gap``) and, with ``tis_cap``, step 5 weighs each token's clipped
policy term by the truncated importance ratio (`engine_correction`). The losses are the pure
functions of `codefalcon.rl.losses.ppo` and `.kl`.
"""

from __future__ import annotations

import copy
import time
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from codefalcon.models.prompter import Prompter
from codefalcon.rl.distributed import World
from codefalcon.rl.logprobs import gather_logprobs
from codefalcon.rl.losses.kl import AdaptiveKLController, FixedKLController, KLController, kl_penalty_rewards
from codefalcon.rl.losses.masked import masked_whiten
from codefalcon.rl.losses.ppo import explained_variance, gae, ppo_policy_loss, ppo_value_loss
from codefalcon.rl.policy_setup import Reference, frozen_reference
from codefalcon.rl.rollout import rollout_metrics
from codefalcon.rl.session import PromptFor, Session, open_session
from codefalcon.rl.stats import to_metrics
from codefalcon.rl.train import train_loop
from codefalcon.rl.train_config import PPOOptions, TrainConfig
from codefalcon.rl.update import (
    engine_correction,
    entropy_metric,
    gradient_step,
    policy_forward,
    rollout_logprobs,
    take,
)
from codefalcon.tasks.record import Task


class ValueHead(nn.Module):
    """PPO's critic: one linear map from the policy's last hidden state to a value, zero-initialised
    so the first advantages are the plain returns."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, hidden: Tensor) -> Tensor:  # (B, C, H) -> (B, C)
        return self.proj(hidden.float()).squeeze(-1)


def kl_controller(options: PPOOptions) -> KLController:
    """PPOCoder's adaptive KL coefficient, or a fixed one when ``target_kl`` is None."""
    if options.target_kl is None:
        return FixedKLController(options.init_kl_coef)
    return AdaptiveKLController(options.init_kl_coef, options.target_kl, options.kl_horizon)


def train(config: TrainConfig, progress: bool = True, *, allow_config_change: bool = False) -> dict[str, Any]:
    """Run (or resume) PPO training; the run summary (see `codefalcon.rl.train.train_rl`)."""
    kl = kl_controller(config.ppo)
    with open_session(config, allow_config_change) as session:
        policy = session.policy
        reference = frozen_reference(policy, config.model, config.dtype, config.lora is not None)
        # On the policy's device before the optimiser is built over it.
        value_head = ValueHead(policy.model.config.hidden_size).to(session.device)
        optimizer = session.optimizer(value_head)
        start = session.resume(optimizer)
        if start.extra:
            value_head.load_state_dict(start.extra["value_head"])
            kl.load_state_dict(start.extra["kl"])
        prompt_for = Prompter.from_policy(policy, config.sampling.max_new_tokens).base
        one_step = partial(train_step, session, optimizer, reference, value_head, kl, prompt_for)

        def save(step: int, position: tuple[int, int]) -> None:
            extra = {"value_head": copy.deepcopy(value_head.state_dict()), "kl": kl.state_dict()}
            session.save(optimizer, step, position, extra)

        return train_loop(session, start, one_step, save, prompt_for, progress)


def train_step(
    session: Session,
    optimizer: torch.optim.Optimizer,
    reference: Reference,
    value_head: ValueHead,
    kl: KLController,
    prompt_for: PromptFor,
    step: int,
    tasks: list[Task],
) -> dict[str, float]:
    """One PPO step (see the module docstring); returns the step's metrics."""
    config, model, options = session.config, session.policy.model, session.config.ppo
    temperature, micro, autocast = config.sampling.temperature, config.micro_batch_size, session.autocast

    # sample programs, execute and score them
    rollouts, record = session.sample(tasks, step, prompt_for)
    t0 = time.perf_counter()

    # old policy, values and frozen reference on the sampled tokens
    mask = rollouts.loss_mask()
    old_logp, old_values = rollout_logprobs(model, rollouts, micro, temperature, autocast, value_head)
    assert old_values is not None
    is_weights, engine_metrics = engine_correction(rollouts, old_logp, config.tis_cap)
    record.update(engine_metrics)
    with reference() as frozen:
        ref_logp, _ = rollout_logprobs(frozen, rollouts, micro, temperature, autocast)

    # token rewards with the KL penalty, then GAE advantages and returns
    token_rewards, kl_stats = kl_penalty_rewards(rollouts.rewards, old_logp, ref_logp, mask, kl.beta)
    advantages, returns = gae(token_rewards, old_values, mask, options.gamma, options.lam)
    if options.whiten_advantages:
        advantages = whiten_across_ranks(advantages, mask, session.world)
    record.update(to_metrics(kl_stats, "kl"))
    ev = explained_variance(old_values, returns, mask)  # this rank's (merged as a weighted mean)
    if ev is not None:
        record["value/explained_variance"] = ev
    batch_kl, batch_size = kl_across_ranks(kl_stats.kl, mask, rollouts.size, session.world)
    kl.update(batch_kl, n_steps=batch_size)
    record["kl/next_beta"] = kl.beta

    # loss and update, accumulated over micro-batches
    def loss_of(index: list[int]) -> tuple[Tensor, dict[str, float]]:
        rows = rollouts.rows(index)
        logits, values = policy_forward(model, rows, temperature, autocast, value_head)
        assert values is not None
        logp = gather_logprobs(logits, rows.completion_ids, rows.completion_mask)
        adv, rows_mask, old, old_v, ret, weights = take(
            index, advantages, mask, old_logp, old_values, returns, is_weights
        )
        policy_loss, p_stats = ppo_policy_loss(logp, old, adv, rows_mask, options.clip, weights)
        value_loss, v_stats = ppo_value_loss(values, old_v, ret, rows_mask, options.clip)
        metrics = {**to_metrics(p_stats, "loss/policy"), **to_metrics(v_stats, "loss/value")}
        return policy_loss + options.vf_coef * value_loss, {**metrics, **entropy_metric(logits, rows_mask)}

    for _ in range(config.updates_per_step):
        record.update(gradient_step(optimizer, loss_of, mask, micro, config.max_grad_norm, session.world))
    record["time/update"] = time.perf_counter() - t0
    record.update(rollout_metrics(rollouts))
    return record


def whiten_across_ranks(advantages: Tensor, mask: Tensor, world: World, eps: float = 1e-8) -> Tensor:
    """`masked_whiten` over the global batch: the mean and population variance of every rank's
    valid entries (one process: `masked_whiten` itself)."""
    if world.size == 1:
        return masked_whiten(advantages, mask, eps=eps)
    valid = mask.to(torch.bool)
    picked = advantages[valid].double()
    n = world.sum(float(valid.sum()))
    if n == 0:
        return torch.zeros_like(advantages)
    mean = world.sum(float(picked.sum())) / n
    var = world.sum(float(((picked - mean) ** 2).sum())) / n
    whitened = (advantages - mean) * (var + eps) ** -0.5
    return torch.where(valid, whitened, torch.zeros_like(advantages))


def kl_across_ranks(kl: float, mask: Tensor, size: int, world: World) -> tuple[float, int]:
    """The batch's mean KL per sample with tokens (``kl`` is this rank's) and its sample count,
    over every rank: what the adaptive KL controller steps on."""
    if world.size == 1:
        return kl, size
    rows = float(mask.any(dim=1).sum())
    total_rows = world.sum(rows)
    return (world.sum(kl * rows) / total_rows if total_rows else 0.0), int(world.sum(float(size)))
