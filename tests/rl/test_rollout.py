"""Rollout tensorizing at the glue: eos, empty samples, truncation and missing rewards."""

from __future__ import annotations

import torch

from codefalcon.feedback import Reward, RewardBreakdown
from codefalcon.models import Completion, FinishReason, SamplingParams
from codefalcon.models.prompts import ExtractMode, Prompt
from codefalcon.rl.rollout import tensorize_rollouts

EOS = 0


class FakeBackend:
    """What tensorizing needs of a generation back-end: an eos id, a pad id, prompt encoding."""

    eos_ids = (EOS,)
    pad_id = EOS

    def encode(self, prompt: str, max_new_tokens: int) -> tuple[list[int], bool]:
        return [ord(c) for c in prompt], False


def breakdown(total: float | None) -> RewardBreakdown:
    return RewardBreakdown(total, None if total is None else total > 0, Reward(total, ""))


def test_tensorize_pads_keeps_eos_flags_truncation_and_fills_missing_rewards() -> None:
    hi, a = Prompt("hi", ExtractMode.COMPLETION), Prompt("a", ExtractMode.COMPLETION)
    completions = [
        Completion("ab", (5, 6), FinishReason.STOP, ended_by_eos=True),  # eos kept: trained on
        Completion("xyz", (7, 8, 9), FinishReason.LENGTH),  # hit the budget: truncated
        Completion("", (), FinishReason.STOP),  # empty, no eos: a lone eos to train on
        Completion("c", (4,), FinishReason.STOP, ended_by_eos=True),
        Completion("d", (3,), FinishReason.STOP, ended_by_eos=True),
        Completion("e", (2,), FinishReason.STOP, ended_by_eos=True),
    ]
    flat = [("t0", hi, c) for c in completions[:3]] + [("t1", a, c) for c in completions[3:]]
    totals = [1.0, None, 0.0, None, None, None]  # group 0: one missing; group 1: all missing
    rollouts = tensorize_rollouts(
        FakeBackend(),  # type: ignore[arg-type]
        flat,  # type: ignore[arg-type]
        ["p"] * 6,
        [None] * 6,  # type: ignore[list-item]
        [breakdown(t) for t in totals],
        SamplingParams(max_new_tokens=3),
        group_size=3,
    )
    assert rollouts.tasks == ("t0", "t0", "t0", "t1", "t1", "t1")
    assert rollouts.prompt_ids.tolist() == [[104, 105]] * 3 + [[EOS, 97]] * 3  # left-padded
    assert rollouts.prompt_mask.tolist() == [[1, 1]] * 3 + [[0, 1]] * 3
    assert rollouts.completion_ids.tolist() == [
        [5, 6, EOS],
        [7, 8, 9],
        [EOS, EOS, EOS],
        [4, EOS, EOS],
        [3, EOS, EOS],
        [2, EOS, EOS],
    ]
    assert rollouts.completion_mask.tolist() == [[1, 1, 1], [1, 1, 1], [1, 0, 0]] + [[1, 1, 0]] * 3
    assert rollouts.truncated.tolist() == [False, True, False, False, False, False]
    # the missing reward takes its group's mean of the present ones, (1 + 0) / 2, and carries no loss
    assert rollouts.rewards.tolist() == [1.0, 0.5, 0.0, 0.0, 0.0, 0.0]
    assert rollouts.reward_valid.tolist() == [True, False, True, False, False, False]
    mask = rollouts.loss_mask()
    assert mask.sum(dim=1).tolist() == [3, 0, 1, 0, 0, 0]
    assert rollouts.loss_mask(drop_truncated=True).sum(dim=1).tolist() == [3, 0, 1, 0, 0, 0]
    assert mask.dtype == torch.bool


def test_truncated_samples_leave_the_loss_mask_only_when_asked() -> None:
    flat = [("t", Prompt("q", ExtractMode.COMPLETION), Completion("x", (7, 8), FinishReason.LENGTH))] * 2
    rollouts = tensorize_rollouts(
        FakeBackend(),  # type: ignore[arg-type]
        flat,  # type: ignore[arg-type]
        ["p", "p"],
        [None, None],  # type: ignore[list-item]
        [breakdown(0.0), breakdown(1.0)],
        SamplingParams(max_new_tokens=2),
        group_size=2,
    )
    assert rollouts.loss_mask().sum().item() == 4
    assert rollouts.loss_mask(drop_truncated=True).sum().item() == 0
