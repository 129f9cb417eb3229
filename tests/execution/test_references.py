"""Reference solutions pass their benchmarks' tests; known-wrong variants fail, with the right verdict."""

from __future__ import annotations

import pytest

from codefalcon.execution import Executor, ExecutorConfig, Verdict
from codefalcon.tasks.apps import load_apps
from codefalcon.tasks.humaneval import load_humaneval
from codefalcon.tasks.mbpp import load_mbpp


def _return_none(solution: str) -> str:
    lines = solution.rstrip("\n").split("\n")
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].strip().startswith("return "):
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            lines[i] = f"{indent}return None"
            break
    return "\n".join(lines) + "\n"


def test_humaneval_canonical_pass_and_broken_variants_fail(executor):
    tasks = load_humaneval()
    results = executor.run_batch([(t.solutions[0], t.tests) for t in tasks])
    assert [t.task_id for t, r in zip(tasks, results, strict=True) if not r.passed] == []
    broken = executor.run_batch([(_return_none(t.solutions[0]), t.tests) for t in tasks])
    assert not any(r.passed for r in broken)
    verdicts = {r.verdict for r in broken}
    assert verdicts <= {Verdict.WRONG_ANSWER, Verdict.RUNTIME_ERROR}
    assert sum(r.verdict is Verdict.WRONG_ANSWER for r in broken) > 100


def test_humaneval_flipped_comparison_is_a_wrong_answer(executor):
    (task,) = [t for t in load_humaneval() if t.task_id == "HumanEval/0"]
    flipped = task.solutions[0].replace("if distance < threshold", "if distance > threshold")
    assert flipped != task.solutions[0]
    result = executor.run(flipped, task.tests)
    assert result.verdict is Verdict.WRONG_ANSWER
    assert result.tests[0].expected.startswith("assert candidate(")


def test_apps_samples_pass(shared_data, executor):
    tasks = load_apps(shared_data / "apps-samples")
    results = executor.run_batch([(t.runnable(t.solutions[0]), t.tests) for t in tasks])
    assert all(r.passed for r in results), [
        (t.task_id, r.first_failure) for t, r in zip(tasks, results, strict=True)
    ]


@pytest.mark.slow
def test_every_mbpp_reference_passes(shared_data):
    tasks = load_mbpp(shared_data / "mbpp.jsonl", split="all", include_challenge=True)
    # Mbpp/123's reference (amicable numbers below 9999) needs several seconds on a busy core.
    with Executor(ExecutorConfig(workers=2, timeout=20.0)) as ex:
        results = ex.run_batch([(t.solutions[0], t.tests) for t in tasks])
    failed = [(t.task_id, r.verdict.value) for t, r in zip(tasks, results, strict=True) if not r.passed]
    assert failed == []
    assert len(tasks) == 974
