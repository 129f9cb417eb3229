"""Composition: renormalised weights, missing parts, and correctness dominating everything."""

from __future__ import annotations

import itertools

import pytest

from codefalcon.execution import Verdict
from codefalcon.feedback import UNIT_TEST_RULES, Reward, compose, weighted_mean
from feedback.helpers import result

EXTREMES = (None, 0.0, 1e-9, 0.5, 1.0 - 1e-9, 1.0)
WEIGHT_SETS = ({"a": 1.0, "b": 1.0}, {"a": 1e-9, "b": 1e9}, {"a": 0.0, "b": 5.0}, {"a": 1e9, "b": 0.0})
SHARES = (0.0, 0.5, 0.999999)
FAILING = [v for v in Verdict if v not in (Verdict.PASSED, Verdict.INFRASTRUCTURE_ERROR)]


def test_hand_computed_total() -> None:
    # binary pass (c = 1, f = 0): scale = 0.5 * (1 - 0) = 0.5; a = (1*0.2 + 3*0.6)/4 = 0.5;
    # total = 1 + 0.5 * 0.5 = 1.25.
    aux = {"ruff": Reward(0.2, ""), "judge": Reward(0.6, "")}
    b = compose(result(Verdict.PASSED, 2, 2), aux, {"ruff": 1.0, "judge": 3.0}, aux_share=0.5)
    assert b.total == pytest.approx(1.25, abs=1e-12)
    assert b.passed is True and b.aux_scale == 0.5
    assert b.weights == {"ruff": 0.25, "judge": 0.75}
    assert b.correctness.value == 1.0 and b.auxiliaries["judge"].value == 0.6


def test_coderl_failure_uses_its_gap() -> None:
    # coderl wrong answer: c = -0.3, f = -0.3, scale = 0.5 * 1.3 = 0.65; a = 1: total = 0.35.
    b = compose(
        result(Verdict.WRONG_ANSWER), {"x": Reward(1.0, "")}, {"x": 1.0}, rule=UNIT_TEST_RULES["coderl"]
    )
    assert b.total == pytest.approx(0.35, abs=1e-12)
    assert b.passed is False


def test_missing_components_are_excluded_and_weights_renormalised() -> None:
    mean, used = weighted_mean({"a": Reward(None, "x"), "b": Reward(0.4, "")}, {"a": 9.0, "b": 1.0})
    assert (mean, used) == (0.4, {"b": 1.0})
    assert weighted_mean({"a": Reward(None, "x")}, {"a": 1.0}) == (0.0, {})


def test_missing_correctness_makes_total_missing() -> None:
    harness = result(Verdict.INFRASTRUCTURE_ERROR)
    b = compose(harness, {"a": Reward(1.0, "")}, {"a": 1.0})
    assert b.total is None and b.passed is None and b.correctness.value is None


@pytest.mark.parametrize(
    ("aux", "weights", "share", "match"),
    [
        ({"a": Reward(1.5, "")}, {"a": 1.0}, 0.5, r"must be in \[0, 1\]"),
        ({"a": Reward(float("nan"), "")}, {"a": 1.0}, 0.5, r"must be in \[0, 1\]"),
        ({"a": Reward(0.5, "")}, {"b": 1.0}, 0.5, "no weight for reward component 'a'"),
        ({"a": Reward(0.5, "")}, {"a": -1.0}, 0.5, "finite and >= 0"),
        ({}, {}, 1.0, r"aux_share must be in \[0, 1\)"),
    ],
)
def test_invalid_inputs_are_errors(aux, weights, share, match) -> None:
    with pytest.raises(ValueError, match=match):
        compose(result(Verdict.PASSED, 2, 2), aux, weights, aux_share=share)


@pytest.mark.parametrize("mode", list(UNIT_TEST_RULES))
@pytest.mark.parametrize("share", SHARES)
def test_failing_never_outscores_passing(mode: str, share: float) -> None:
    """Exhaustive over verdicts, suite sizes, tests passed, auxiliary extremes and weights: the
    best failing total stays strictly below the worst passing total, across different suites."""
    rule = UNIT_TEST_RULES[mode]
    best_fail, worst_pass = float("-inf"), float("inf")
    for n_tests, weights in itertools.product((1, 2, 3, 100), WEIGHT_SETS):
        passed = result(Verdict.PASSED, n_tests, n_tests)
        failed = [result(verdict, n_tests, n_tests - 1) for verdict in FAILING]  # the best failures
        for a, b in itertools.product(EXTREMES, repeat=2):
            aux = {"a": Reward(a, ""), "b": Reward(b, "")}
            passing = compose(passed, aux, weights, rule=rule, aux_share=share)
            worst_pass = min(worst_pass, passing.total)
            for failure in failed:
                failing = compose(failure, aux, weights, rule=rule, aux_share=share)
                assert failing.passed is False
                best_fail = max(best_fail, failing.total)
    assert best_fail < worst_pass
    assert worst_pass == 1.0  # a pass with no auxiliary credit scores exactly PASS_VALUE


def test_auxiliaries_order_programs_within_pass_and_within_fail() -> None:
    low, high = {"a": Reward(0.1, "")}, {"a": Reward(0.9, "")}
    for verdict, n_passed in ((Verdict.PASSED, 2), (Verdict.WRONG_ANSWER, 1)):
        r = result(verdict, 2, n_passed)
        assert compose(r, low, {"a": 1.0}).total < compose(r, high, {"a": 1.0}).total
