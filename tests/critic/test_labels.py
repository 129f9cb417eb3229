from __future__ import annotations

import pytest

from codefalcon.critic import (
    BINARY_LABELS,
    OUTCOME_LABELS,
    Outcome,
    class_index,
    class_labels,
    outcome_of_coderl_code,
    outcome_of_result,
    outcome_of_verdict,
)
from codefalcon.execution.result import ExecutionResult, TestResult, Verdict, coderl_code


def test_classes_follow_coderl_order() -> None:
    assert OUTCOME_LABELS == ("compile_error", "runtime_error", "failed_test", "passed")
    assert [int(o) for o in Outcome] == [0, 1, 2, 3]
    assert class_labels(binary=False) == OUTCOME_LABELS
    assert class_labels(binary=True) == BINARY_LABELS == ("not_passed", "passed")


@pytest.mark.parametrize(
    ("verdict", "outcome"),
    [
        (Verdict.COMPILE_ERROR, Outcome.COMPILE_ERROR),
        (Verdict.RUNTIME_ERROR, Outcome.RUNTIME_ERROR),
        (Verdict.TIMEOUT, Outcome.RUNTIME_ERROR),
        (Verdict.MEMORY_EXCEEDED, Outcome.RUNTIME_ERROR),
        (Verdict.WRONG_ANSWER, Outcome.FAILED_TEST),
        (Verdict.PASSED, Outcome.PASSED),
        (Verdict.INFRASTRUCTURE_ERROR, None),
    ],
)
def test_every_verdict_has_its_outcome(verdict: Verdict, outcome: Outcome | None) -> None:
    assert outcome_of_verdict(verdict) is outcome
    assert outcome_of_verdict(verdict.value) is outcome  # as read from a results file
    # Agrees with the executor's CodeRL codes wherever those are defined.
    code = coderl_code(verdict)
    assert (outcome is None) == (code is None)
    if code is not None:
        assert outcome_of_coderl_code(code) is outcome


def test_result_outcome_is_the_overall_verdicts() -> None:
    tests = (TestResult(0, Verdict.PASSED), TestResult(1, Verdict.TIMEOUT))
    assert outcome_of_result(ExecutionResult(Verdict.TIMEOUT, tests, 2)) is Outcome.RUNTIME_ERROR
    harness = ExecutionResult(Verdict.INFRASTRUCTURE_ERROR, (TestResult(0, Verdict.INFRASTRUCTURE_ERROR),), 1)
    assert outcome_of_result(harness) is None


def test_coderl_codes_distinguish_bools_from_ints() -> None:
    assert outcome_of_coderl_code(False) is Outcome.FAILED_TEST
    assert outcome_of_coderl_code(True) is Outcome.PASSED
    with pytest.raises(ValueError, match="not a CodeRL outcome code"):
        outcome_of_coderl_code(0)  # a plain 0 is not CodeRL's False
    with pytest.raises(ValueError):
        outcome_of_coderl_code(-3)


def test_binary_classes_are_passed_or_not() -> None:
    assert [class_index(o, binary=True) for o in Outcome] == [0, 0, 0, 1]
    assert [class_index(o, binary=False) for o in Outcome] == [0, 1, 2, 3]
    # "passed" is the last class in both variants.
    assert class_labels(True)[class_index(Outcome.PASSED, True)] == "passed"
    assert class_labels(False)[class_index(Outcome.PASSED, False)] == "passed"
