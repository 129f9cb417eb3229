"""Device plumbing that a CPU-only machine can still check: what moves, and which autocast runs.

The "meta" device stands in for a GPU: its tensors have a device but no data, so a tensor left
behind on the CPU shows up in the assertions.
"""

from __future__ import annotations

import warnings

import torch

from codefalcon.rl.optim import bf16_autocast
from codefalcon.rl.rollout import Rollouts
from codefalcon.rl.update import take


def _rollouts() -> Rollouts:
    return Rollouts(
        tasks=("t0", "t1"),  # type: ignore[arg-type]  # only tensors matter here
        prompt_ids=torch.tensor([[0, 5], [6, 7]]),
        prompt_mask=torch.tensor([[0, 1], [1, 1]]),
        completion_ids=torch.tensor([[8, 9, 0], [8, 0, 0]]),
        completion_mask=torch.tensor([[1, 1, 0], [1, 0, 0]]),
        truncated=torch.tensor([False, True]),
        texts=("a", "b"),
        programs=("a", "b"),
        results=(None, None),  # type: ignore[arg-type]
        breakdowns=(None, None),  # type: ignore[arg-type]
        rewards=torch.tensor([1.0, 0.0]),
        reward_valid=torch.tensor([True, True]),
    )


def test_rollouts_to_moves_every_tensor_and_nothing_else() -> None:
    rollouts = _rollouts()
    moved = rollouts.to("meta")
    tensors = {k for k, v in vars(rollouts).items() if isinstance(v, torch.Tensor)}
    assert len(tensors) == 7
    assert all(getattr(moved, k).device.type == "meta" for k in tensors)
    assert all(getattr(rollouts, k).device.type == "cpu" for k in tensors)  # a copy, not in place
    assert moved.texts == rollouts.texts and moved.tasks == rollouts.tasks
    row = moved.rows([1])  # micro-batches are sliced where the tensors live
    assert row.completion_ids.device.type == "meta" and row.completion_ids.shape == (1, 3)


def test_micro_batch_rows_slice_on_the_tensors_device() -> None:
    mask, advantages, missing = take(
        [0], torch.ones(2, 3, device="meta"), torch.zeros(2, device="meta"), None
    )
    assert mask.device.type == advantages.device.type == "meta"
    assert mask.shape == (1, 3) and missing is None


def test_bf16_autocast_follows_the_model_device() -> None:
    with bf16_autocast(True, torch.device("cpu")):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with bf16_autocast(False, "cpu"):
        assert not torch.is_autocast_enabled("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available ... Disabling autocast" here
        with bf16_autocast(True, "cuda:0"):
            assert not torch.is_autocast_enabled("cpu")  # a CUDA model's autocast leaves the CPU alone
