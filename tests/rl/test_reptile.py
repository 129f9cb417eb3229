"""Reptile's outer gradient on a hand-computed one-parameter case (FALCON's meta-update)."""

from __future__ import annotations

import torch

from codefalcon.rl import reptile_gradients
from support import close


def _task(target: float, theta: torch.nn.Parameter):
    def loss() -> tuple[torch.Tensor, dict[str, float]]:
        value = 0.5 * (theta - target).square().sum()
        return value, {"theta": float(theta.detach())}

    return loss


def test_one_parameter_reptile_step_hand_computed() -> None:
    theta = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    # inner_lr 0.5, two SGD steps, gradient theta - target:
    #   task A, target 3: 1 -> 1 - 0.5 (1 - 3) = 2 -> 2 - 0.5 (2 - 3) = 2.5, theta_A - theta = +1.5
    #   task B, target 0: 1 -> 0.5 -> 0.25,                               theta_B - theta = -0.75
    #   a third task had no signal (theta_C = theta) but counts: n_tasks = 3
    # outer gradient -(1.5 - 0.75) / 3 = -0.25; weights back at theta = 1
    trajectories = reptile_gradients([theta], [_task(3.0, theta), _task(0.0, theta)], 3, 2, 0.5)
    close(theta.detach(), [1.0])
    close(theta.grad, [-0.25])
    # the inner losses before each step: 0.5 (1 - 3)^2 = 2, 0.5 (2 - 3)^2 = 0.5; 0.5 x 1^2, 0.5 x 0.5^2
    close([loss for loss, _ in trajectories[0]], [2.0, 0.5])
    close([loss for loss, _ in trajectories[1]], [0.5, 0.125])
    assert [m["theta"] for _, m in trajectories[0]] == [1.0, 2.0]  # entry 0 is the shared policy's
    # SGD with lr eps is Reptile's theta + eps mean_i(theta_i - theta) = 1 + 0.1 x 0.25
    torch.optim.SGD([theta], lr=0.1).step()
    close(theta.detach(), [1.025])


def test_no_task_to_adapt_leaves_the_gradient_alone() -> None:
    theta = torch.nn.Parameter(torch.tensor([1.0]))
    assert reptile_gradients([theta], [], 4, 2, 0.5) == []
    assert theta.grad is None
