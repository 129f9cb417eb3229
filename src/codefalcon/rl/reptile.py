"""Reptile's first-order meta-update (Nichol et al. 2018), as a function of parameters and task losses.

For each task i, a copy of the shared weights theta takes ``inner_steps`` plain SGD steps on that
task's loss, giving theta_i; the outer update moves theta toward the adapted weights:

    theta <- theta + eps * (1 / n_tasks) * sum_i (theta_i - theta)

`reptile_gradients` leaves the weights at theta and writes ``-(1 / n_tasks) sum_i (theta_i -
theta)`` into each parameter's ``.grad``, so any optimiser takes the outer step (plain SGD with lr
eps is the formula above; FALCON uses AdamW, i.e. Reptile with an Adam outer optimiser), and
clipping and checkpoints work as for every other update. Tasks the caller leaves out (no
learning signal) count in ``n_tasks`` with theta_i = theta, as in Reptile's average over the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

TaskLoss = Callable[[], tuple[Tensor, dict[str, float]]]
"""One task's loss at the current weights, and its detached metrics."""


def reptile_gradients(
    params: Sequence[torch.nn.Parameter],
    task_losses: Sequence[TaskLoss],
    n_tasks: int,
    inner_steps: int,
    inner_lr: float,
) -> list[list[tuple[float, dict[str, float]]]]:
    """Adapt per task, then set each parameter's ``.grad`` to Reptile's outer gradient.

    Returns each adapted task's inner trajectory: (loss, metrics) before each of its SGD steps
    (entry 0 is the shared policy's). With no task to adapt nothing is written to ``.grad``.
    Example, one parameter theta = 1, inner_lr 0.5, two steps, n_tasks 3: task 0.5 (theta - 3)^2
    goes 1 -> 2 -> 2.5 (+1.5), task 0.5 theta^2 goes 1 -> 0.5 -> 0.25 (-0.75), the third is left
    out; grad = -(1.5 - 0.75) / 3 = -0.25, theta stays 1.
    """
    base = [p.detach().clone() for p in params]
    delta = [torch.zeros_like(p) for p in params]
    trajectories = []
    for task_loss in task_losses:
        trajectory = []
        for _ in range(inner_steps):
            loss, metrics = task_loss()
            trajectory.append((float(loss.detach()), metrics))
            _sgd_step(params, loss, inner_lr)
        with torch.no_grad():
            for d, p, b in zip(delta, params, base, strict=True):
                d += p - b
                p.copy_(b)
        trajectories.append(trajectory)
    if trajectories:
        for p, d in zip(params, delta, strict=True):
            p.grad = -d / n_tasks  # points from the adapted weights back to theta
    return trajectories


def _sgd_step(params: Sequence[torch.nn.Parameter], loss: Tensor, lr: float) -> None:
    grads = torch.autograd.grad(loss, list(params), allow_unused=True)
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            if g is not None:
                p -= lr * g
