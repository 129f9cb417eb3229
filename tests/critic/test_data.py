from __future__ import annotations

import json
from pathlib import Path

import pytest

from codefalcon.critic import (
    CriticDataError,
    CriticExample,
    Outcome,
    class_counts,
    load_critic_examples,
    read_result_outcomes,
    split_by_task,
)
from codefalcon.evaluation import Sample, write_results
from codefalcon.execution.result import ExecutionResult, TestResult, Verdict
from codefalcon.tasks import Task
from support import ADD_ASSERTS


def _task(i: int, n_solutions: int = 2) -> Task:
    solutions = tuple(f"def add(a, b):\n    return a + b  # solution {k}\n" for k in range(n_solutions))
    return Task(f"t/{i}", f"Problem {i}: add two numbers.", ADD_ASSERTS, solutions=solutions)


def _result(verdict: Verdict) -> ExecutionResult:
    return ExecutionResult(verdict, (TestResult(0, verdict),), 2)


def _write(tmp: Path, rows: list[tuple[str, str, Verdict]]) -> tuple[Path, Path]:
    """A samples file and its results file, as `codefalcon evaluate` would leave them."""
    samples_path, results_path = tmp / "samples.jsonl", tmp / "samples_results.jsonl"
    samples_path.write_text("".join(json.dumps({"task_id": t, "solution": p}) + "\n" for t, p, _ in rows))
    per_task: dict[str, int] = {}
    samples = []
    for line, (task_id, program, _) in enumerate(rows, start=1):
        samples.append(Sample(task_id, program, line, per_task.get(task_id, 0)))
        per_task[task_id] = per_task.get(task_id, 0) + 1
    write_results(results_path, samples, [_result(v) for _, _, v in rows])
    return samples_path, results_path


ROWS = [
    ("t/0", "def add(a, b):\n    return a - b\n", Verdict.WRONG_ANSWER),
    ("t/0", "def add(a, b)\n", Verdict.COMPILE_ERROR),
    ("t/1", "def add(a, b):\n    raise ValueError\n", Verdict.RUNTIME_ERROR),
    ("t/1", "def add(a, b):\n    while True: pass\n", Verdict.TIMEOUT),
    ("t/1", "def add(a, b):\n    return a + b\n", Verdict.INFRASTRUCTURE_ERROR),
    ("t/2", "def add(a, b):\n    return a + b\n", Verdict.PASSED),
]
TASKS = {t.task_id: t for t in (_task(0), _task(1), _task(2), _task(3))}


def test_examples_from_samples_results_and_references(tmp_path: Path) -> None:
    samples, results = _write(tmp_path, ROWS)
    data = load_critic_examples(samples, results, TASKS)
    generated = [e for e in data.examples if e.origin == "sample"]
    assert [(e.task_id, e.outcome) for e in generated] == [
        ("t/0", Outcome.FAILED_TEST),
        ("t/0", Outcome.COMPILE_ERROR),
        ("t/1", Outcome.RUNTIME_ERROR),
        ("t/1", Outcome.RUNTIME_ERROR),  # a timeout is a runtime error
        ("t/2", Outcome.PASSED),
    ]
    assert data.n_excluded == 1  # the infrastructure error is left out, not labelled
    assert generated[0].problem == TASKS["t/0"].prompt
    # One reference per sampled task (the default), labelled passed; t/3 had no samples.
    references = [e for e in data.examples if e.origin == "reference"]
    assert [(e.task_id, e.outcome) for e in references] == [(f"t/{i}", Outcome.PASSED) for i in range(3)]
    assert references[0].program == TASKS["t/0"].solutions[0]
    assert class_counts(data.examples) == {
        "compile_error": 1,
        "runtime_error": 2,
        "failed_test": 1,
        "passed": 4,
    }
    assert class_counts(data.examples, binary=True) == {"not_passed": 4, "passed": 4}


def test_reference_cap(tmp_path: Path) -> None:
    samples, results = _write(tmp_path, ROWS)
    every = load_critic_examples(samples, results, TASKS, max_references_per_task=None)
    none = load_critic_examples(samples, results, TASKS, max_references_per_task=0)
    assert sum(e.origin == "reference" for e in every.examples) == 6
    assert sum(e.origin == "reference" for e in none.examples) == 0


def test_results_are_matched_by_id_not_order(tmp_path: Path) -> None:
    samples, results = _write(tmp_path, ROWS)
    lines = results.read_text().splitlines()
    results.write_text("\n".join(reversed(lines)) + "\n")
    data = load_critic_examples(samples, results, TASKS, max_references_per_task=0)
    assert [e.outcome for e in data.examples][:2] == [Outcome.FAILED_TEST, Outcome.COMPILE_ERROR]


def test_results_that_do_not_belong_to_the_samples(tmp_path: Path) -> None:
    samples, results = _write(tmp_path, ROWS)
    lines = results.read_text().splitlines()
    results.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(CriticDataError, match=r"samples.jsonl:6: no result for task 't/2' completion 0"):
        load_critic_examples(samples, results, TASKS)
    results.write_text(
        "\n".join([*lines, lines[0].replace('"completion_id": 0', '"completion_id": 9')]) + "\n"
    )
    with pytest.raises(CriticDataError, match="1 results have no sample"):
        load_critic_examples(samples, results, TASKS)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"task_id": "t/0", "completion_id": 0, "passed": True}, 'field "verdict" is missing'),
        ({"task_id": "t/0", "completion_id": 0, "verdict": "ok"}, "field \"verdict\" is 'ok'"),
        (
            {"task_id": "t/0", "completion_id": "0", "verdict": "passed"},
            'field "completion_id" must be an integer',
        ),
    ],
)
def test_bad_result_rows_name_the_line(tmp_path: Path, row: dict, message: str) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(
        json.dumps({"task_id": "t/1", "completion_id": 0, "verdict": "passed"})
        + "\n"
        + json.dumps(row)
        + "\n"
    )
    with pytest.raises(CriticDataError, match=f"r.jsonl:2: {message}"):
        read_result_outcomes(path)


def _examples(n_tasks: int, per_task: int = 3) -> list[CriticExample]:
    return [
        CriticExample(f"t/{i}", "p", f"x = {k}", Outcome.PASSED, "sample")
        for i in range(n_tasks)
        for k in range(per_task)
    ]


def test_split_keeps_each_task_on_one_side() -> None:
    examples = _examples(20)
    train, held = split_by_task(examples, 0.25, seed=1)
    train_ids, held_ids = {e.task_id for e in train}, {e.task_id for e in held}
    assert not train_ids & held_ids
    assert len(held_ids) == 5 and len(train) + len(held) == len(examples)
    # Same tasks and seed, any order: the same split.
    again = split_by_task(list(reversed(examples)), 0.25, seed=1)[1]
    assert {e.task_id for e in again} == held_ids
    assert {e.task_id for e in split_by_task(examples, 0.25, seed=2)[1]} != held_ids


def test_split_edge_cases() -> None:
    assert split_by_task(_examples(3), 0.0) == (_examples(3), [])
    train, held = split_by_task(_examples(2), 0.01)  # rounds to 0 tasks, but asks for some
    assert len({e.task_id for e in held}) == 1 and train
    train, held = split_by_task(_examples(1), 0.5)  # one task can't be on both sides
    assert held == [] and len(train) == 3
    with pytest.raises(ValueError, match="held_out_fraction"):
        split_by_task(_examples(2), 1.0)
