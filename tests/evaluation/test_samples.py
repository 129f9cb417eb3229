"""Samples files in, results files out: parsing, error messages, atomic writes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from codefalcon.evaluation.samples import Sample, SamplesError, read_samples, write_results
from codefalcon.execution.result import ExecutionResult, TestResult, Verdict
from codefalcon.tasks import record

CASE = record.TestCase(code="assert candidate(1, 2) == 3")
SUITE = record.TestSuite(record.TestStyle.ASSERT, (CASE,), "add")
Task = record.Task
TASKS = {
    f"HumanEval/{i}": Task(f"HumanEval/{i}", "def add(a, b):\n", SUITE, completion_prefix="P\n")
    for i in range(5)
}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def line(**record: object) -> str:
    return json.dumps(record)


def test_reads_completions_solutions_and_extra_keys(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "samples.jsonl",
        [
            line(task_id="HumanEval/0", completion="  return 1\n", score=0.5),
            "",  # blank lines are skipped but still counted
            line(task_id="HumanEval/1", solution="def add(a, b): ..."),
            line(task_id="HumanEval/0", completion="  return 2\n"),
        ],
    )
    samples = read_samples(path, TASKS)
    assert samples == [
        Sample("HumanEval/0", "P\n  return 1\n", 1, 0),
        Sample("HumanEval/1", "def add(a, b): ...", 3, 0),
        Sample("HumanEval/0", "P\n  return 2\n", 4, 1),
    ]
    assert samples[0].extra == {"score": 0.5}


def test_normalize_id_and_integer_ids(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.jsonl", [line(task_id=3, completion="x")])
    samples = read_samples(path, TASKS, normalize_id=lambda raw: f"HumanEval/{raw}")
    assert samples[0].task_id == "HumanEval/3"


def test_reads_gzip_by_suffix(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl.gz"
    path.write_bytes(gzip.compress(line(task_id="HumanEval/2", completion="c").encode() + b"\n"))
    assert read_samples(path, TASKS)[0].program == "P\nc"


def _bad_id(raw: str) -> str:
    raise ValueError(f"not a HumanEval id: {raw!r}")


@pytest.mark.parametrize(
    ("lines", "where", "expected"),
    [
        (['{"task_id": "HumanEval/0", '], ":1:", "malformed JSON"),
        ([line(task_id="HumanEval/0", completion="x"), "[1, 2]"], ":2:", "expected a JSON object"),
        ([line(completion="x")], ":1:", 'field "task_id" is missing'),
        ([line(task_id="HumanEval/0")], ":1:", 'field "completion" or "solution" is missing'),
        (
            [line(task_id="HumanEval/0", completion="x", solution=5)],
            ":1:",
            'field "solution" must be a string',
        ),
        ([line(task_id=["a"], completion="x")], ":1:", 'field "task_id" must be a string'),
        ([line(task_id=True, completion="x")], ":1:", 'field "task_id" must be a string, got bool'),
        ([line(task_id="HumanEval/0", completion=3)], ":1:", 'field "completion" must be a string'),
        ([line(task_id="HumanEval/0", solution=None)], ":1:", 'field "solution" must be a string'),
        (
            [
                "",
                line(task_id="HumanEval/0", completion="x"),
                line(task_id="Mbpp/9", completion=""),
            ],
            ":3:",
            "field \"task_id\" 'Mbpp/9' is not a known task (5 known: 'HumanEval/0', "
            "'HumanEval/1', 'HumanEval/2', ...)",
        ),
    ],
)
def test_errors_name_file_line_and_field(tmp_path: Path, lines: list[str], where: str, expected: str) -> None:
    path = write_lines(tmp_path / "samples.jsonl", lines)
    with pytest.raises(SamplesError) as err:
        read_samples(path, TASKS)
    assert str(err.value).startswith(f"{path}{where} ")
    assert expected in str(err.value)


def test_error_from_normalize_id_names_line_and_field(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.jsonl", [line(task_id="HE-0", completion="x")])
    with pytest.raises(SamplesError, match=r"s\.jsonl:1: field \"task_id\" 'HE-0': not a Human"):
        read_samples(path, TASKS, normalize_id=_bad_id)


def test_unknown_id_shows_normalised_form(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.jsonl", [line(task_id="9", completion="x")])
    with pytest.raises(SamplesError, match=r"'9' \(normalised 'HumanEval/9'\) is not a known"):
        read_samples(path, TASKS, normalize_id=lambda raw: f"HumanEval/{raw}")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.jsonl", b"", "empty.jsonl: no samples (the file is empty)"),
        ("blank.jsonl", b"\n  \n", "blank.jsonl: no samples"),
        (
            "latin.jsonl",
            b'{"task_id": "HumanEval/0", "completion": ""}\n\xff\n',
            "latin.jsonl:2: not UTF-8",
        ),
        ("broken.jsonl.gz", b"not gzip at all", "broken.jsonl.gz: not a readable gzip file"),
    ],
)
def test_file_level_errors(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(SamplesError, match="^" + str(tmp_path).replace(".", r"\.")) as err:
        read_samples(tmp_path / name, TASKS)
    assert expected in str(err.value)


def test_samples_error_is_a_value_error() -> None:
    assert issubclass(SamplesError, ValueError)


def _results() -> tuple[list[Sample], list[ExecutionResult]]:
    samples = [Sample("HumanEval/1", "p", 1, 0), Sample("HumanEval/0", "q", 2, 0)]
    wrong = TestResult(0, Verdict.WRONG_ANSWER, message="assert failed", expected="3", actual="4")
    results = [
        ExecutionResult(Verdict.PASSED, (TestResult(0, Verdict.PASSED, seconds=0.5),), 1),
        ExecutionResult(Verdict.WRONG_ANSWER, (wrong,), 1),
    ]
    return samples, results


def test_write_results_one_line_per_sample_in_order(tmp_path: Path) -> None:
    samples, results = _results()
    out = write_results(tmp_path / "results.jsonl", samples, results)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows == [
        {
            "task_id": "HumanEval/1",
            "completion_id": 0,
            "passed": True,
            "verdict": "passed",
            "n_tests": 1,
            "tests": [{"index": 0, "verdict": "passed", "seconds": 0.5}],
        },
        {
            "task_id": "HumanEval/0",
            "completion_id": 0,
            "passed": False,
            "verdict": "wrong_answer",
            "n_tests": 1,
            "tests": [
                {
                    "index": 0,
                    "verdict": "wrong_answer",
                    "message": "assert failed",
                    "expected": "3",
                    "actual": "4",
                    "seconds": 0.0,
                }
            ],
        },
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["results.jsonl"]  # no temp file left


def test_write_results_gzip_by_suffix(tmp_path: Path) -> None:
    samples, results = _results()
    out = write_results(tmp_path / "results.jsonl.gz", samples, results)
    rows = [json.loads(x) for x in gzip.decompress(out.read_bytes()).splitlines()]
    assert [r["passed"] for r in rows] == [True, False]


def test_write_results_never_leaves_a_half_written_file(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    out.write_text("old\n")
    samples, results = _results()
    unserialisable = TestResult(0, Verdict.WRONG_ANSWER, input=object())  # type: ignore[arg-type]
    results[1] = ExecutionResult(Verdict.WRONG_ANSWER, (unserialisable,), 1)
    with pytest.raises(TypeError):
        write_results(out, samples, results)  # fails after the first line was written
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.jsonl"]


def test_write_results_length_mismatch(tmp_path: Path) -> None:
    samples, results = _results()
    with pytest.raises(ValueError, match="2 samples but 1 results"):
        write_results(tmp_path / "r.jsonl", samples, results[:1])


def test_solution_wins_over_completion(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(line(task_id="HumanEval/0", completion="ignored", solution="whole program") + "\n")
    (sample,) = read_samples(path, TASKS)
    assert sample.program == "whole program"
