"""The two pieces of step mechanics every recipe shares: bf16 autocast and a clipped step."""

from __future__ import annotations

from typing import Any

import torch


def bf16_autocast(enabled: bool, device: torch.device | str) -> Any:
    """bfloat16 autocast on ``device``'s type (about 2x faster on the CPU here); weights and
    optimiser stay float32. Autocast only affects ops on its own device type, so it must be the
    model's: a "cpu" autocast around a CUDA forward would silently do nothing."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=enabled)


def optimizer_step(optimizer: torch.optim.Optimizer, max_grad_norm: float) -> float:
    """Clip the gradients of the optimiser's parameters, step, clear; returns the pre-clip norm."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return norm
