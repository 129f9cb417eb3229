"""Micro-batch accumulation at the glue: the accumulated gradient is the full-batch token mean."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from codefalcon.rl import coderl_pg_loss, gather_logprobs, grpo_loss
from codefalcon.rl.rollout import Rollouts
from codefalcon.rl.update import accumulate_gradients, gradient_step, micro_batches, take

F64 = torch.float64
B, C, D, V = 5, 4, 3, 7


def fake_rollouts() -> Rollouts:
    """Five samples of 3, 1, 4, 2 and 4 tokens; row 3's reward is missing, row 4 is truncated."""
    lengths = torch.tensor([3, 1, 4, 2, 4])
    generator = torch.Generator().manual_seed(0)
    return Rollouts(
        tasks=("t0",) * B,  # type: ignore[arg-type]  # only the tensors matter here
        prompt_ids=torch.ones(B, 1, dtype=torch.long),
        prompt_mask=torch.ones(B, 1, dtype=torch.long),
        completion_ids=torch.randint(0, V, (B, C), generator=generator),
        completion_mask=(torch.arange(C) < lengths.unsqueeze(1)).long(),
        truncated=torch.tensor([False, False, False, False, True]),
        texts=("",) * B,
        programs=("",) * B,
        results=(None,) * B,  # type: ignore[arg-type]
        breakdowns=(None,) * B,  # type: ignore[arg-type]
        rewards=torch.tensor([1.0, 0.0, 0.5, 0.5, 1.0]),
        reward_valid=torch.tensor([True, True, True, False, True]),
    )


LossFn = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


def grpo(logp: Tensor, advantages: Tensor, returns: Tensor, mask: Tensor) -> Tensor:
    return grpo_loss(logp, None, advantages, mask)[0]


def coderl(logp: Tensor, advantages: Tensor, returns: Tensor, mask: Tensor) -> Tensor:
    return coderl_pg_loss(logp, returns, mask)[0]


@pytest.mark.parametrize("loss_fn", [grpo, coderl])
@pytest.mark.parametrize(("micro", "drop_truncated"), [(1, False), (2, False), (2, True), (3, True)])
def test_micro_batched_gradient_equals_the_full_batch_token_mean(
    loss_fn: LossFn, micro: int, drop_truncated: bool
) -> None:
    torch.manual_seed(0)
    rollouts = fake_rollouts()
    features = torch.randn(B, C, D, dtype=F64)  # a linear "policy": logits = W x per token
    model = torch.nn.Linear(D, V, dtype=F64)
    advantages = torch.tensor([1.0, -0.5, 0.25, 2.0, -1.0], dtype=F64)
    returns = torch.randn(B, C, dtype=F64)
    mask = rollouts.loss_mask(drop_truncated=drop_truncated)

    def loss_of(index: list[int]) -> tuple[Tensor, dict[str, float]]:
        rows = rollouts.rows(index)
        x, adv, ret, rows_mask = take(index, features, advantages, returns, mask)
        logp = gather_logprobs(model(x), rows.completion_ids, rows.completion_mask)
        loss = loss_fn(logp, adv, ret, rows_mask)
        return loss, {"loss": float(loss.detach())}

    full, _ = loss_of(list(range(B)))
    full.backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    stats = accumulate_gradients(loss_of, mask, micro)
    for p, want in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, want, atol=1e-6, rtol=0)
    assert stats["loss"] == pytest.approx(float(full.detach()), abs=1e-6)  # metrics use the same shares


def test_a_step_without_loss_tokens_is_skipped_and_moves_nothing() -> None:
    model = torch.nn.Linear(2, 1)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)

    def loss_of(index: list[int]) -> tuple[Tensor, dict[str, float]]:
        raise AssertionError("no micro-batch has a loss token")

    stats = gradient_step(optimizer, loss_of, torch.zeros(3, 4, dtype=torch.bool), 2, 1.0)
    assert stats == {"loss/skipped_empty_step": 1.0}
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))


def test_micro_batches_cover_every_row_once_in_order() -> None:
    assert list(micro_batches(5, 2)) == [[0, 1], [2, 3], [4]]
