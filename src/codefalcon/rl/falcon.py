"""FALCON's meta-RL: long-term memory in the prompts, per-task inner adaptation, a first-order outer step.

Each training step, for a batch of tasks:

1. **Long-term memory in the rollout prompts** (`codefalcon.rl.memory_prompts`): the best
   passing programs of the most similar *other* training tasks, retrieved from the
   `LongTermMemory`, are put before the task under a token budget (`assemble_prompt`; the task
   itself is never cut). Every rollout is then written back to the store, so the memory grows.
2. **Inner loop** (per task): a copy of the trainable weights (the LoRA adapter, or all weights)
   takes ``inner_steps`` plain SGD steps of the group-relative policy-gradient loss on that task's
   short-term memory: its freshly sampled programs and their rewards.
3. **Outer loop**: Reptile (Nichol et al. 2018), the first-order meta-update: the shared weights
   move toward the adapted ones, ``theta <- theta + eps * mean_i(theta_i - theta)``. We hand
   ``-mean_i(theta_i - theta)`` to AdamW as the gradient (Reptile with an Adam outer optimiser),
   so checkpoints, clipping and the learning rate work as for every other algorithm.

Why Reptile rather than first-order MAML: FOMAML needs a second batch per task (query samples)
to take the outer gradient at the adapted weights, which doubles generation, the slowest phase
here; Reptile uses only the inner trajectory. Tasks whose group has no reward variance give no
inner gradient and contribute theta_i - theta = 0, as in Reptile's average over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from codefalcon.rl.algorithms import GroupRelative, Prepared, StepContext
from codefalcon.rl.grpo import group_advantages
from codefalcon.rl.memory_prompts import MemoryPrompts, open_memory
from codefalcon.rl.optim import optimizer_step
from codefalcon.rl.rollout import Rollouts
from codefalcon.rl.train_config import FalconOptions, GRPOOptions

__all__ = ["Falcon", "MemoryPrompts", "open_memory"]


@dataclass
class Falcon:
    """The meta-RL update (see the module docstring); its loss is GRPO's on one task's samples."""

    options: FalconOptions
    grpo: GRPOOptions
    group_size: int
    name: str = "falcon"
    needs_reference: bool = False
    needs_values: bool = False
    supervised_step: bool = False

    def __post_init__(self) -> None:
        self._inner = GroupRelative("falcon", group_advantages, self.grpo, self.group_size, on_policy=True)

    def prepare(self, ctx: StepContext, rollouts: Rollouts) -> Prepared:
        return self._inner.prepare(ctx, rollouts)

    def loss(self, ctx: StepContext, rows: Rollouts, prep: Prepared) -> tuple[Tensor, dict[str, float]]:
        return self._inner.loss(ctx, rows, prep)

    def meta_update(
        self,
        ctx: StepContext,
        rollouts: Rollouts,
        prepared: Prepared,
        optimizer: torch.optim.Optimizer,
        max_grad_norm: float,
    ) -> dict[str, float]:
        """Inner adaptation per task, then one Reptile step of the shared weights."""
        params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
        base = [p.detach().clone() for p in params]
        delta = [torch.zeros_like(p) for p in params]
        n_tasks = rollouts.size // self.group_size
        adapted, inner_loss, entropy = 0, 0.0, 0.0
        for g in range(n_tasks):
            rows = list(range(g * self.group_size, (g + 1) * self.group_size))
            prep = prepared.rows(rows)
            if not bool(prep.loss_mask.any()) or bool((prep.advantages == 0).all()):
                continue  # no learning signal in this task's group: theta_i = theta
            for k in range(self.options.inner_steps):
                loss, stats = self.loss(ctx, rollouts.rows(rows), prep)
                inner_loss += float(loss.detach())
                entropy += stats["policy/entropy"] if k == 0 else 0.0  # of the shared policy
                _sgd_step(params, loss, self.options.inner_lr)
            with torch.no_grad():
                for d, p, b in zip(delta, params, base, strict=True):
                    d += p - b
                    p.copy_(b)
            adapted += 1
        metrics = {"falcon/adapted_tasks": float(adapted), "falcon/tasks": float(n_tasks)}
        if adapted == 0:
            return metrics
        for p, d in zip(params, delta, strict=True):
            p.grad = -d / n_tasks  # Reptile: the outer "gradient" points from theta_i back to theta
        metrics["falcon/meta_grad_norm"] = optimizer_step(optimizer, max_grad_norm)
        metrics["falcon/inner_loss"] = inner_loss / (adapted * self.options.inner_steps)
        metrics["policy/entropy"] = entropy / adapted
        return metrics


def _sgd_step(params: list[torch.nn.Parameter], loss: Tensor, lr: float) -> None:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            if g is not None:
                p -= lr * g
