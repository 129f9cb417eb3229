"""The algorithms `codefalcon train` runs: what each computes before the update and its loss.

Each algorithm has two steps, and the shared loop (`codefalcon.rl.train`) does the rest:

- ``prepare(ctx, rollouts)``: tensors computed once per step without gradients (old and reference
  log-probs, values, advantages, returns) and the ``loss_mask`` of tokens that carry loss;
- ``loss(ctx, rollouts, prepared)``: the loss of a micro-batch (rows of both), a token mean over
  its ``loss_mask``; the loop weighs micro-batches by their share of the step's loss tokens, so
  the accumulated gradient equals the full-batch token mean.

The losses themselves are the pure functions of `codefalcon.rl.grpo`, `.ppo`, `.coderl`; the
variant (GRPO or RLOO advantages) is a function passed in, not a string branched on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from codefalcon.models.loading import model_device
from codefalcon.rl.coderl import coderl_pg_loss, coderl_token_returns
from codefalcon.rl.grpo import GroupStats, grpo_loss
from codefalcon.rl.kl import AdaptiveKLController, FixedKLController, KLController, kl_penalty_rewards
from codefalcon.rl.logprobs import completion_forward, entropy_from_logits, gather_logprobs
from codefalcon.rl.masked import masked_mean, masked_whiten
from codefalcon.rl.optim import bf16_autocast
from codefalcon.rl.ppo import explained_variance, gae, ppo_policy_loss, ppo_value_loss
from codefalcon.rl.rollout import Rollouts
from codefalcon.rl.stats import to_metrics
from codefalcon.rl.train_config import CodeRLOptions, GRPOOptions, PPOOptions


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


@dataclass
class StepContext:
    """What the losses need from the loop: the model, the frozen reference, the value head."""

    model: nn.Module
    temperature: float
    micro_batch_size: int
    reference: Callable[[], AbstractContextManager[nn.Module]] | None = None
    """Enters a context giving the frozen reference model (None: no reference needed)."""
    value_head: ValueHead | None = None
    autocast: bool = False
    """Resolved bf16 autocast (`codefalcon.rl.optim.autocast_enabled`), never "auto"."""
    baseline: Tensor | None = None
    """(B,) CodeRL: reward of the greedy decode of each row's task."""
    critic_probs: Callable[[Rollouts], Tensor] | None = None
    """CodeRL: (B, C) critic probability of each row's observed outcome at each token."""

    def forward(self, model: nn.Module, rows: Rollouts, hidden: bool = False) -> tuple[Tensor, Tensor | None]:
        """(B, C, V) logits at the sampling temperature and, with ``hidden``, (B, C) values."""
        with bf16_autocast(self.autocast, model_device(model)):
            logits, states = completion_forward(
                model,
                rows.prompt_ids,
                rows.prompt_mask,
                rows.completion_ids,
                rows.completion_mask,
                self.temperature,
                hidden=hidden,
            )
        values = self.value_head(states) if hidden and self.value_head is not None else None
        return logits.float(), values


@dataclass
class Prepared:
    """Per-step tensors (B, ...) computed before the update; sliced per micro-batch with `rows`."""

    loss_mask: Tensor
    advantages: Tensor
    old_logp: Tensor | None = None
    ref_logp: Tensor | None = None
    old_values: Tensor | None = None
    returns: Tensor | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def rows(self, index: list[int]) -> Prepared:
        i = torch.as_tensor(index, dtype=torch.long, device=self.loss_mask.device)
        pick = {k: (v[i] if isinstance(v, Tensor) else v) for k, v in vars(self).items() if k != "metrics"}
        return replace(self, **pick)


class Algorithm(Protocol):
    name: str
    needs_reference: bool
    needs_values: bool
    supervised_step: bool
    """Alternate each RL update with a CE step on reference solutions (CodeRL)."""

    def prepare(self, ctx: StepContext, rollouts: Rollouts) -> Prepared: ...

    def loss(self, ctx: StepContext, rows: Rollouts, prep: Prepared) -> tuple[Tensor, dict[str, float]]: ...


class GroupRelative:
    """GRPO / RLOO: one advantage per sample from its group's rewards, clipped token-level loss."""

    needs_values = False
    supervised_step = False

    def __init__(
        self,
        name: str,
        advantages: Callable[[Tensor, int], tuple[Tensor, GroupStats]],
        options: GRPOOptions,
        group_size: int,
        on_policy: bool,
    ) -> None:
        self.name, self.advantage_fn, self.options = name, advantages, options
        self.group_size, self.on_policy = group_size, on_policy
        self.needs_reference = options.beta > 0

    def prepare(self, ctx: StepContext, rollouts: Rollouts) -> Prepared:
        advantages, stats = self.advantage_fn(rollouts.rewards, self.group_size)
        mask = rollouts.completion_mask.bool() & rollouts.reward_valid.unsqueeze(1)
        if self.options.mask_truncated:
            mask = mask & ~rollouts.truncated.unsqueeze(1)
        old = None if self.on_policy else _logp_no_grad(ctx, ctx.model, rollouts)
        ref = _reference_logp(ctx, rollouts) if self.needs_reference else None
        return Prepared(mask, advantages, old, ref, metrics=to_metrics(stats, "adv"))

    def loss(self, ctx: StepContext, rows: Rollouts, prep: Prepared) -> tuple[Tensor, dict[str, float]]:
        logits, _ = ctx.forward(ctx.model, rows)
        logp = gather_logprobs(logits, rows.completion_ids, rows.completion_mask)
        loss, stats = grpo_loss(
            logp,
            prep.old_logp,
            prep.advantages,
            prep.loss_mask,
            eps_low=self.options.eps_low,
            eps_high=self.options.eps_high,
            ref_logp=prep.ref_logp,
            beta=self.options.beta,
            # The mask already leaves them out; passing them is what counts them (n_truncated).
            truncated=rows.truncated if self.options.mask_truncated else None,
        )
        return loss, {**to_metrics(stats, f"loss/{self.name}"), **_entropy(logits, prep.loss_mask)}


class PPO:
    """PPOCoder: KL-penalised token rewards, GAE on a value head, clipped policy and value losses."""

    name = "ppo"
    needs_reference = True
    needs_values = True
    supervised_step = False

    def __init__(self, options: PPOOptions) -> None:
        self.options = options
        self.kl: KLController = (
            AdaptiveKLController(options.init_kl_coef, options.target_kl, options.kl_horizon)
            if options.target_kl is not None
            else FixedKLController(options.init_kl_coef)
        )

    def prepare(self, ctx: StepContext, rollouts: Rollouts) -> Prepared:
        mask = rollouts.completion_mask.bool() & rollouts.reward_valid.unsqueeze(1)
        old_logp, old_values = _logp_no_grad(ctx, ctx.model, rollouts, values=True)
        ref_logp = _reference_logp(ctx, rollouts)
        token_rewards, kl_stats = kl_penalty_rewards(rollouts.rewards, old_logp, ref_logp, mask, self.kl.beta)
        advantages, returns = gae(token_rewards, old_values, mask, self.options.gamma, self.options.lam)
        if self.options.whiten_advantages:
            advantages = masked_whiten(advantages, mask)
        metrics = to_metrics(kl_stats, "kl")
        ev = explained_variance(old_values, returns, mask)
        if ev is not None:
            metrics["value/explained_variance"] = ev
        self.kl.update(kl_stats.kl, n_steps=rollouts.size)
        metrics["kl/next_beta"] = self.kl.beta
        return Prepared(mask, advantages, old_logp, ref_logp, old_values, returns, metrics)

    def loss(self, ctx: StepContext, rows: Rollouts, prep: Prepared) -> tuple[Tensor, dict[str, float]]:
        logits, values = ctx.forward(ctx.model, rows, hidden=True)
        logp = gather_logprobs(logits, rows.completion_ids, rows.completion_mask)
        assert prep.old_logp is not None and values is not None and prep.returns is not None
        policy_loss, p_stats = ppo_policy_loss(
            logp, prep.old_logp, prep.advantages, prep.loss_mask, self.options.clip
        )
        value_loss, v_stats = ppo_value_loss(
            values, prep.old_values, prep.returns, prep.loss_mask, self.options.clip
        )
        metrics = {**to_metrics(p_stats, "loss/policy"), **to_metrics(v_stats, "loss/value")}
        return policy_loss + self.options.vf_coef * value_loss, {
            **metrics,
            **_entropy(logits, prep.loss_mask),
        }


class CodeRL:
    """CodeRL's actor loss: -mean_t log p(w_t) R_t with R_t = p_critic(outcome at t) (r - r_greedy)."""

    name = "coderl"
    needs_reference = False
    needs_values = False

    def __init__(self, options: CodeRLOptions) -> None:
        self.options = options
        self.supervised_step = options.ce_coef > 0

    def prepare(self, ctx: StepContext, rollouts: Rollouts) -> Prepared:
        mask = rollouts.completion_mask.bool() & rollouts.reward_valid.unsqueeze(1)
        probs = ctx.critic_probs(rollouts) if ctx.critic_probs else mask.float()
        relative = self.options.relative_returns
        if relative and ctx.baseline is None:
            raise ValueError("coderl.relative_returns needs the greedy baseline rewards")
        returns = coderl_token_returns(probs, rollouts.rewards, ctx.baseline, mask, relative=relative)
        metrics = {"coderl/return_mean": float(masked_mean(returns, mask))}
        if ctx.baseline is not None:
            metrics["coderl/baseline_reward"] = float(ctx.baseline.mean())
        return Prepared(mask, returns, metrics=metrics)

    def loss(self, ctx: StepContext, rows: Rollouts, prep: Prepared) -> tuple[Tensor, dict[str, float]]:
        logits, _ = ctx.forward(ctx.model, rows)
        logp = gather_logprobs(logits, rows.completion_ids, rows.completion_mask)
        loss, stats = coderl_pg_loss(logp, prep.advantages, prep.loss_mask)
        return loss, {**to_metrics(stats, "loss/coderl"), **_entropy(logits, prep.loss_mask)}


def micro_batches(size: int, micro: int) -> Iterator[list[int]]:
    for start in range(0, size, micro):
        yield list(range(start, min(start + micro, size)))


@torch.no_grad()
def _logp_no_grad(ctx: StepContext, model: nn.Module, rollouts: Rollouts, values: bool = False) -> Any:
    """Log-probs (and values) of the sampled tokens under ``model``, micro-batched, no gradient."""
    logps, vals = [], []
    for index in micro_batches(rollouts.size, ctx.micro_batch_size):
        rows = rollouts.rows(index)
        logits, v = ctx.forward(model, rows, hidden=values)
        logps.append(gather_logprobs(logits, rows.completion_ids, rows.completion_mask))
        vals.append(v)
    logp = torch.cat(logps)
    return (logp, torch.cat(vals)) if values else logp


def _reference_logp(ctx: StepContext, rollouts: Rollouts) -> Tensor:
    if ctx.reference is None:
        raise ValueError("this algorithm needs a frozen reference model")
    with ctx.reference() as reference:
        return _logp_no_grad(ctx, reference, rollouts)


def _entropy(logits: Tensor, mask: Tensor) -> dict[str, float]:
    with torch.no_grad():
        return {"policy/entropy": float(masked_mean(entropy_from_logits(logits), mask))}
