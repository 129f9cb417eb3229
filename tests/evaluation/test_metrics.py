"""APPS accuracies, verdict breakdowns and the summary, on hand-built execution results."""

from __future__ import annotations

import doctest
import json
from types import SimpleNamespace

import pytest

from codefalcon.evaluation import metrics
from codefalcon.evaluation.metrics import (
    accuracy,
    group_by_task,
    split_by_difficulty,
    summarize,
    verdict_counts,
)
from codefalcon.execution.result import ExecutionResult, TestResult, Verdict

P, WA, CE, RE, INFRA = (
    Verdict.PASSED,
    Verdict.WRONG_ANSWER,
    Verdict.COMPILE_ERROR,
    Verdict.RUNTIME_ERROR,
    Verdict.INFRASTRUCTURE_ERROR,
)


def result(n_passed: int, n_tests: int, verdict: Verdict | None = None) -> ExecutionResult:
    """`n_passed` passing tests, then one failure with `verdict` (if not every test passed)."""
    tests = [TestResult(i, P) for i in range(n_passed)]
    if n_passed < n_tests:
        tests.append(TestResult(n_passed, verdict or WA))
    return ExecutionResult(verdict or P, tuple(tests), n_tests)


def compile_error(n_tests: int) -> ExecutionResult:
    return ExecutionResult(CE, (), n_tests)


def test_strict_accuracy_and_average_pass_rate_one_sample_per_task() -> None:
    per_task = {
        "a": [result(2, 4, WA)],  # 2/4 tests
        "b": [result(4, 4)],  # all pass
        "c": [compile_error(3)],  # APPS: compile error counts 0
    }
    acc = accuracy(per_task)
    assert acc.strict_accuracy == pytest.approx(1 / 3, abs=1e-12)  # only b
    assert acc.avg_pass_rate == pytest.approx((0.5 + 1.0 + 0.0) / 3, abs=1e-12)
    assert (acc.n_tasks, acc.n_samples, acc.n_unscored, acc.reason) == (3, 3, 0, None)


def test_accuracy_averages_samples_within_a_task_first() -> None:
    # a: samples pass/fail -> strict 0.5, rates (1 + 0.25)/2 = 0.625; b: fail 0/2 -> 0, 0.
    per_task = {"a": [result(4, 4), result(1, 4, RE)], "b": [result(0, 2, WA)]}
    acc = accuracy(per_task)
    assert acc.strict_accuracy == pytest.approx((0.5 + 0.0) / 2, abs=1e-12)
    assert acc.avg_pass_rate == pytest.approx((0.625 + 0.0) / 2, abs=1e-12)


def test_infrastructure_errors_are_not_scored() -> None:
    harness_failed = ExecutionResult(INFRA, (TestResult(0, INFRA),), 3)
    acc = accuracy({"a": [result(3, 3), harness_failed]})
    assert (acc.strict_accuracy, acc.avg_pass_rate, acc.n_samples, acc.n_unscored) == (
        1.0,
        1.0,
        2,
        1,
    )


def test_accuracy_undefined_when_a_task_has_no_scored_sample() -> None:
    harness_failed = ExecutionResult(INFRA, (), 3)
    acc = accuracy({"a": [result(3, 3)], "b": [harness_failed], "c": []})
    assert acc.strict_accuracy is None and acc.avg_pass_rate is None
    assert acc.reason == "2 of 3 tasks have no scored sample (e.g. 'b')"
    assert accuracy({}).reason == "no tasks"


def test_verdict_counts_lists_every_verdict() -> None:
    counts = verdict_counts([result(1, 1), result(0, 1, WA), result(0, 2, WA), compile_error(1)])
    assert counts == {
        "passed": 1,
        "wrong_answer": 2,
        "runtime_error": 0,
        "timeout": 0,
        "memory_exceeded": 0,
        "compile_error": 1,
        "infrastructure_error": 0,
    }


def test_group_by_task_keeps_sample_order() -> None:
    samples = [SimpleNamespace(task_id=t) for t in ("a", "b", "a")]
    r0, r1, r2 = result(1, 1), result(0, 1, WA), compile_error(1)
    assert group_by_task(samples, [r0, r1, r2]) == {"a": [r0, r2], "b": [r1]}
    with pytest.raises(ValueError, match="3 samples but 2 results"):
        group_by_task(samples, [r0, r1])


def test_split_by_difficulty() -> None:
    per_task = {"a": [result(1, 1)], "b": [compile_error(1)], "c": [result(1, 1)]}
    difficulty = {"a": "interview", "b": None, "c": "interview"}
    groups = split_by_difficulty(per_task, difficulty)
    assert {d: list(g) for d, g in groups.items()} == {
        "interview": ["a", "c"],
        "unspecified": ["b"],
    }


def test_summarize_is_json_and_has_per_difficulty_tables() -> None:
    per_task = {
        "intro/1": [result(2, 2), result(0, 2, WA)],  # c=1 of n=2
        "intro/2": [result(2, 2), result(2, 2)],  # c=2
        "comp/1": [compile_error(5), result(1, 5, RE)],  # c=0, rates 0 and 0.2
    }
    difficulty = {"intro/1": "introductory", "intro/2": "introductory", "comp/1": "competition"}
    summary = json.loads(json.dumps(summarize(per_task, ks=(1, 2, 3), difficulty_of=difficulty)))

    assert (summary["n_tasks"], summary["n_samples"], summary["n_unscored"]) == (3, 6, 0)
    # pass@1 = (1/2 + 1 + 0) / 3; pass@2 = (1 + 1 + 0) / 3; pass@3 undefined (n = 2).
    assert summary["pass_at_k"]["pass@1"]["value"] == pytest.approx(0.5, abs=1e-12)
    assert summary["pass_at_k"]["pass@2"]["value"] == pytest.approx(2 / 3, abs=1e-12)
    assert summary["pass_at_k"]["pass@3"]["value"] is None
    assert "3 of 3 tasks have fewer than 3 samples" in summary["pass_at_k"]["pass@3"]["reason"]
    assert summary["strict_accuracy"] == pytest.approx(0.5, abs=1e-12)
    assert summary["avg_pass_rate"] == pytest.approx((0.5 + 1.0 + 0.1) / 3, abs=1e-12)
    assert summary["verdicts"]["passed"] == 3 and summary["verdicts"]["compile_error"] == 1

    intro, comp = summary["by_difficulty"]["introductory"], summary["by_difficulty"]["competition"]
    assert list(summary["by_difficulty"]) == ["introductory", "competition"]
    assert (intro["n_tasks"], intro["strict_accuracy"]) == (2, 0.75)
    assert intro["pass_at_k"]["pass@1"]["value"] == pytest.approx(0.75, abs=1e-12)
    assert intro["verdicts"]["wrong_answer"] == 1
    assert (comp["strict_accuracy"], comp["avg_pass_rate"]) == (0.0, pytest.approx(0.1))
    assert comp["verdicts"]["compile_error"] == 1 and comp["verdicts"]["runtime_error"] == 1


def test_summarize_counts_unattempted_tasks() -> None:
    # A task listed with no samples makes the scores undefined instead of silently skipped.
    summary = summarize({"a": [result(1, 1)], "b": []}, ks=(1,))
    assert summary["pass_at_k"]["pass@1"]["value"] is None
    assert summary["strict_accuracy"] is None
    assert summary["by_difficulty"]["unspecified"]["n_tasks"] == 2


def test_docstring_examples_hold() -> None:
    assert doctest.testmod(metrics).failed == 0
