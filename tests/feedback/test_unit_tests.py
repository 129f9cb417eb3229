"""Unit-test rewards: the three modes, their explanations, and missing values."""

from __future__ import annotations

import pytest

from codefalcon.execution import ExecutionResult, TestResult, Verdict
from codefalcon.feedback import (
    PASS_VALUE,
    UNIT_TEST_RULES,
    binary_reward,
    coderl_reward,
    pass_ratio_reward,
    unit_test_rule,
)
from feedback.helpers import result

FAILING = [v for v in Verdict if v not in (Verdict.PASSED, Verdict.INFRASTRUCTURE_ERROR)]


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        (Verdict.COMPILE_ERROR, -1.0),
        (Verdict.RUNTIME_ERROR, -0.6),
        (Verdict.TIMEOUT, -0.6),
        (Verdict.MEMORY_EXCEEDED, -0.6),
        (Verdict.WRONG_ANSWER, -0.3),
        (Verdict.PASSED, 1.0),
    ],
)
def test_coderl_table(verdict: Verdict, expected: float) -> None:
    assert coderl_reward(result(verdict)).value == expected


@pytest.mark.parametrize("verdict", FAILING)
def test_binary_fails_every_failing_verdict(verdict: Verdict) -> None:
    assert binary_reward(result(verdict, n_tests=3, n_passed=2)).value == 0.0
    assert binary_reward(result(Verdict.PASSED)).value == 1.0


def test_pass_ratio_counts_tests_not_run_as_failed() -> None:
    # 1 passed, 1 failed, 2 never ran (stopped at first failure): 1/4.
    assert pass_ratio_reward(result(Verdict.WRONG_ANSWER, n_tests=4, n_passed=1)).value == 0.25
    assert pass_ratio_reward(result(Verdict.PASSED, n_tests=4, n_passed=4)).value == 1.0


@pytest.mark.parametrize("score", [binary_reward, pass_ratio_reward, coderl_reward])
def test_infrastructure_error_is_missing_not_a_penalty(score) -> None:
    harness = ExecutionResult(Verdict.INFRASTRUCTURE_ERROR, (TestResult(0, Verdict.INFRASTRUCTURE_ERROR),), 2)
    reward = score(harness)
    assert reward.value is None and reward.missing
    assert "harness failure" in reward.explanation


@pytest.mark.parametrize("score", [binary_reward, pass_ratio_reward, coderl_reward])
def test_empty_suite_is_missing(score) -> None:
    assert score(ExecutionResult(Verdict.PASSED, (), 0)).value is None


def test_explanation_names_the_first_failure() -> None:
    crash = TestResult(1, Verdict.RUNTIME_ERROR, error_type="IndexError", line=7)
    r = ExecutionResult(Verdict.RUNTIME_ERROR, (TestResult(0, Verdict.PASSED), crash), 3)
    assert coderl_reward(r).explanation == "runtime_error on test 1: IndexError at line 7 (passed 1/3 tests)"


@pytest.mark.parametrize("name", list(UNIT_TEST_RULES))
@pytest.mark.parametrize("n_tests", [1, 2, 5, 100])
def test_rules_pass_value_and_fail_ceiling(name: str, n_tests: int) -> None:
    """Every mode gives PASS_VALUE to a pass and at most fail_ceiling(n) to any failure."""
    rule = unit_test_rule(name)
    assert rule.score(result(Verdict.PASSED, n_tests, n_tests)).value == PASS_VALUE
    ceiling = rule.fail_ceiling(n_tests)
    assert ceiling < PASS_VALUE
    for verdict in FAILING:
        for n_passed in range(n_tests):
            assert rule.score(result(verdict, n_tests, n_passed)).value <= ceiling


def test_unknown_mode_lists_choices() -> None:
    with pytest.raises(ValueError, match="binary, pass_ratio, coderl"):
        unit_test_rule("partial")
