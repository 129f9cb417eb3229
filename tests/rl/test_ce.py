"""The one token cross-entropy (SFT's warm-up and CodeRL's supervised step), on hand-computed cases."""

from __future__ import annotations

import math

import torch

from codefalcon.rl import masked_token_cross_entropy
from support import close


def test_summed_cross_entropy_and_its_gradient_hand_computed() -> None:
    # Vocab 2. Position 0: logits (0, ln 3) -> p = (1/4, 3/4), label 0 -> -ln(1/4) = ln 4.
    # Position 1: same logits, label 1 -> -ln(3/4). Position 2: ignored (-100), whatever it holds.
    logits = torch.tensor([[[0.0, math.log(3.0)]] * 3], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[0, 1, -100]])
    loss, n = masked_token_cross_entropy(logits, labels)
    assert n == 2
    close(loss, math.log(4.0) - math.log(0.75))  # a sum, not a mean: 1.386294 + 0.287682
    loss.backward()
    # d CE / d logits = softmax - one_hot: (1/4 - 1, 3/4) and (1/4, 3/4 - 1); 0 where ignored
    close(logits.grad, [[[-0.75, 0.75], [0.25, -0.25], [0.0, 0.0]]])


def test_nothing_to_score_gives_zero() -> None:
    loss, n = masked_token_cross_entropy(torch.zeros(1, 2, 3), torch.full((1, 2), -100))
    assert n == 0 and float(loss) == 0.0
