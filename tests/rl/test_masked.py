"""Masked reductions: hand-computed values, padding holding garbage, all-padding rows."""

from __future__ import annotations

import math

import torch

from codefalcon.rl import (
    last_valid_index,
    masked_count,
    masked_mean,
    masked_sum,
    masked_var,
    masked_whiten,
)
from support import close

# Padding holds NaN and inf on purpose: it must never leak into a result.
X = torch.tensor([[1.0, 2.0, float("nan")], [4.0, float("inf"), float("-inf")]], dtype=torch.float64)
MASK = torch.tensor([[1, 1, 0], [1, 0, 0]])


def test_sum_count_mean_over_everything_and_per_row():
    close(masked_sum(X, MASK), 7.0)  # 1 + 2 + 4
    close(masked_count(X, MASK), 3.0)
    close(masked_mean(X, MASK), 7.0 / 3.0)  # token mean: every valid token weighs the same
    close(masked_sum(X, MASK, dim=1), [3.0, 4.0])
    close(masked_mean(X, MASK, dim=1), [1.5, 4.0])  # (1 + 2) / 2, 4 / 1
    assert masked_mean(X, MASK, dim=1, keepdim=True).shape == (2, 1)


def test_bool_and_float_masks_agree():
    close(masked_mean(X, MASK.bool()), masked_mean(X, MASK.to(torch.float64)))


def test_all_padding_rows_and_batches_give_zero_not_nan():
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    close(masked_mean(X, mask, dim=1), [1.5, 0.0])
    close(masked_var(X, mask, dim=1), [0.25, 0.0])  # row 0: values 1, 2 -> mean 1.5, var 0.25
    empty = torch.zeros_like(MASK)
    close(masked_mean(X, empty), 0.0)
    close(masked_var(X, empty), 0.0)
    close(masked_whiten(X, empty), torch.zeros_like(X))


def test_variance_population_and_bessel():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0]])
    # mean 2; squared deviations 1, 0, 1 -> sum 2; / 3 = 2/3, / (3 - 1) = 1
    close(masked_var(x, mask), 2.0 / 3.0)
    close(masked_var(x, mask, unbiased=True), 1.0)
    # a single valid entry: unbiased variance is defined as 0, not a division by zero
    close(masked_var(x, torch.tensor([[1, 0, 0, 0]]), unbiased=True), 0.0)


def test_whiten_hand_computed():
    x = torch.tensor([[1.0, 3.0, 5.0, 7.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0]])
    # valid 1, 3, 5: mean 3, population var (4 + 0 + 4) / 3 = 8/3, std 1.6329931618554521
    std = math.sqrt(8.0 / 3.0)
    close(masked_whiten(x, mask, eps=0.0), [[-2.0 / std, 0.0, 2.0 / std, 0.0]])
    # without centring the mean (3) is added back; padding still 0
    close(masked_whiten(x, mask, shift_mean=False, eps=0.0), [[-2.0 / std + 3, 3.0, 2.0 / std + 3, 0.0]])


def test_gradient_reaches_valid_entries_only():
    x = torch.tensor([[1.0, 2.0, 5.0], [4.0, 7.0, 8.0]], dtype=torch.float64, requires_grad=True)
    masked_mean(x, MASK).backward()
    close(x.grad, [[1 / 3, 1 / 3, 0.0], [1 / 3, 0.0, 0.0]])  # d mean / d x_i = 1 / N for valid i


def test_gradient_stays_finite_when_padding_is_inf():
    x = torch.tensor([[1.0, float("-inf")]], dtype=torch.float64, requires_grad=True)
    masked_mean(x * 2.0, torch.tensor([[1, 0]])).backward()
    close(x.grad, [[2.0, 0.0]])


def test_last_valid_index():
    mask = torch.tensor([[1, 1, 0], [0, 0, 0], [1, 1, 1], [0, 1, 0]])
    assert last_valid_index(mask).tolist() == [1, -1, 2, 1]
