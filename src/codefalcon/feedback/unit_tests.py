"""Unit-test rewards: how well a program did on its tests, from its `ExecutionResult`.

Three modes, as in the literature: ``binary`` (all tests pass; the default), ``pass_ratio`` (the
fraction of tests passed) and ``coderl`` (CodeRL's graded table: compile error -1.0, runtime
error incl. timeout and memory -0.6, failed test -0.3, passed +1.0). Every mode gives a passing
program exactly `PASS_VALUE`, which `codefalcon.feedback.compose` relies on.

A harness failure (``infrastructure_error``) is not the program's fault: its reward is *missing*
(None), never a penalty. A suite with no tests has no unit-test reward either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from codefalcon.execution.result import ExecutionResult, TestResult, Verdict
from codefalcon.feedback.record import Reward

PASS_VALUE = 1.0
"""The reward of a program that passed every test, in every mode."""

# CodeRL's reward table (Le et al. 2022, eq. 6) keyed by our verdicts.
CODERL_REWARDS: Mapping[Verdict, float] = MappingProxyType(
    {
        Verdict.COMPILE_ERROR: -1.0,
        Verdict.RUNTIME_ERROR: -0.6,
        Verdict.TIMEOUT: -0.6,
        Verdict.MEMORY_EXCEEDED: -0.6,
        Verdict.WRONG_ANSWER: -0.3,
        Verdict.PASSED: PASS_VALUE,
    }
)


def binary_reward(result: ExecutionResult) -> Reward:
    """1.0 if every test passed, else 0.0.

    >>> from codefalcon.execution import ExecutionResult, TestResult, Verdict
    >>> ok = ExecutionResult(Verdict.PASSED, (TestResult(0, Verdict.PASSED),), n_tests=1)
    >>> binary_reward(ok)
    Reward(value=1.0, explanation='passed 1/1 tests')
    >>> bad = ExecutionResult(Verdict.WRONG_ANSWER, (TestResult(0, Verdict.WRONG_ANSWER),), n_tests=2)
    >>> binary_reward(bad).value
    0.0
    """
    return _scored(result, lambda r: PASS_VALUE if r.passed else 0.0)


def pass_ratio_reward(result: ExecutionResult) -> Reward:
    """The fraction of the suite's tests that passed (tests that did not run count as failed).

    Only meaningful on a full run: after ``stop_on_first_failure`` it counts the tests before the
    first failure. `UnitTestRule.runs_all_tests` tells callers which mode needs a full run.

    >>> from codefalcon.execution import ExecutionResult, TestResult, Verdict
    >>> tests = (TestResult(0, Verdict.PASSED), TestResult(1, Verdict.PASSED),
    ...          TestResult(2, Verdict.WRONG_ANSWER), TestResult(3, Verdict.PASSED))
    >>> pass_ratio_reward(ExecutionResult(Verdict.WRONG_ANSWER, tests, n_tests=4))
    Reward(value=0.75, explanation='wrong_answer on test 2 (passed 3/4 tests)')
    """
    return _scored(result, lambda r: r.pass_ratio)


def coderl_reward(result: ExecutionResult) -> Reward:
    """CodeRL's graded reward: -1.0 compile error, -0.6 runtime error, timeout or memory,
    -0.3 failed test, +1.0 passed.

    >>> from codefalcon.execution import ExecutionResult, TestResult, Verdict
    >>> crash = TestResult(0, Verdict.RUNTIME_ERROR, error_type="ZeroDivisionError", line=3)
    >>> coderl_reward(ExecutionResult(Verdict.RUNTIME_ERROR, (crash,), n_tests=3))
    Reward(value=-0.6, explanation='runtime_error on test 0: ZeroDivisionError at line 3 (passed 0/3 tests)')
    """
    return _scored(result, lambda r: CODERL_REWARDS[r.verdict])


def _scored(result: ExecutionResult, value: Callable[[ExecutionResult], float]) -> Reward:
    """``value(result)`` with the shared explanation; missing for harness failures and empty suites."""
    if result.n_tests == 0:
        return Reward(None, "no tests to run")
    if result.verdict is Verdict.INFRASTRUCTURE_ERROR:
        return Reward(None, f"harness failure, not scored: {describe_result(result)}")
    return Reward(float(value(result)), describe_result(result))


def describe_result(result: ExecutionResult) -> str:
    """One line saying how a program did: its first failure, if any, and the tests passed."""
    counts = f"passed {result.n_passed}/{result.n_tests} tests"
    failure = result.first_failure
    if result.passed or failure is None:
        return counts
    return f"{_describe_test(failure)} ({counts})"


def _describe_test(test: TestResult) -> str:
    text = f"{test.verdict.value} on test {test.index}"
    if test.error_type:
        text += f": {test.error_type}"
    if test.line is not None:
        text += f" at line {test.line}"
    return text


def _zero_ceiling(n_tests: int) -> float:
    return 0.0


def _coderl_ceiling(n_tests: int) -> float:
    return CODERL_REWARDS[Verdict.WRONG_ANSWER]


def _ratio_ceiling(n_tests: int) -> float:
    # The best failing program passes every test but one.
    return (n_tests - 1) / n_tests if n_tests else 0.0


@dataclass(frozen=True)
class UnitTestRule:
    """A unit-test reward mode and what composition needs to know about it."""

    name: str
    score: Callable[[ExecutionResult], Reward]
    """The reward function."""
    fail_ceiling: Callable[[int], float]
    """The highest value a *failing* program can get on a suite of n tests (below `PASS_VALUE`)."""
    runs_all_tests: bool
    """Whether the score needs every test run (False: stopping at the first failure is enough)."""


UNIT_TEST_RULES: Mapping[str, UnitTestRule] = MappingProxyType(
    {
        "binary": UnitTestRule("binary", binary_reward, _zero_ceiling, runs_all_tests=False),
        "pass_ratio": UnitTestRule("pass_ratio", pass_ratio_reward, _ratio_ceiling, runs_all_tests=True),
        "coderl": UnitTestRule("coderl", coderl_reward, _coderl_ceiling, runs_all_tests=False),
    }
)
"""The unit-test modes by name (read-only)."""


def unit_test_rule(name: str) -> UnitTestRule:
    """The mode called ``name``; an unknown name is an error listing the choices."""
    try:
        return UNIT_TEST_RULES[name]
    except KeyError:
        choices = ", ".join(UNIT_TEST_RULES)
        raise ValueError(f"unknown unit-test reward {name!r}; choose one of {choices}") from None
