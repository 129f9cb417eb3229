"""Short-term memory: bounded per task, JSON round trip, repair feedback text."""

from __future__ import annotations

import json

import pytest

from codefalcon.execution.result import ExecutionResult, TestResult, Verdict
from codefalcon.memory import Feedback, ShortTermMemory


def wrong_answer() -> ExecutionResult:
    tests = (
        TestResult(0, Verdict.PASSED),
        TestResult(1, Verdict.WRONG_ANSWER, input="[1, 2]", expected="3", actual="4"),
    )
    return ExecutionResult(Verdict.WRONG_ANSWER, tests, n_tests=5)


def compile_error() -> ExecutionResult:
    tests = (TestResult(0, Verdict.COMPILE_ERROR, "SyntaxError", "invalid syntax", line=2),)
    return ExecutionResult(Verdict.COMPILE_ERROR, tests, n_tests=5)


def test_keeps_the_last_n_per_task() -> None:
    stm = ShortTermMemory(capacity=2)
    for i in range(3):
        stm.add("a", Feedback(f"p{i}", "wrong_answer", 0, 1))
    stm.add("b", Feedback("q", "passed", 1, 1))
    assert [f.program for f in stm.recent("a")] == ["p1", "p2"]
    assert len(stm) == 2 and stm.recent("zzz") == []
    stm.clear("a")
    assert stm.recent("a") == [] and len(stm.recent("b")) == 1


def test_json_round_trip() -> None:
    stm = ShortTermMemory(capacity=3)
    stm.add("a", Feedback.from_execution("def f(): return 4", wrong_answer(), judge_remarks="Off by one."))
    stm.add("a", Feedback.from_execution("def f(:", compile_error()))
    state = json.loads(json.dumps(stm.to_json()))
    again = ShortTermMemory.from_json(state)
    assert again.capacity == 3 and again.recent("a") == stm.recent("a")


def test_render_for_repair() -> None:
    stm = ShortTermMemory()
    stm.add("a", Feedback.from_execution("def f(): return 4", wrong_answer(), judge_remarks="Off by one."))
    stm.add("a", Feedback.from_execution("def f(:", compile_error()))
    assert stm.render("a") == (
        "Attempt 2: compile_error (0 of 5 tests passed)\n"
        "```python\ndef f(:\n```\n"
        "Compiler error: SyntaxError: invalid syntax\n\n"
        "Attempt 1: wrong_answer (1 of 5 tests passed)\n"
        "```python\ndef f(): return 4\n```\n"
        "Test 2 failed (wrong_answer); input: [1, 2]; expected: 3; got: 4\n"
        "Reviewer: Off by one."
    )
    assert "```" not in stm.render("a", include_program=False)
    assert stm.render("nothing") == ""


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        ShortTermMemory(0)
