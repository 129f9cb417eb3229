"""The project's own jsonl task format: exact round trips, atomic writes, precise errors."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from codefalcon.tasks import (
    Task,
    TaskFormatError,
    load_apps,
    load_humaneval,
    load_mbpp,
    load_tasks_jsonl,
    save_tasks_jsonl,
)
from codefalcon.tasks import TestCase as Case  # Test* names would be collected by pytest
from codefalcon.tasks import TestStyle as Style
from codefalcon.tasks.record import TestSuite as Suite

HANDMADE = Task(
    task_id="demo/1",
    prompt="Add two numbers. ünïcode ✓",
    tests=Suite(Style.CALL, (Case([2, 3], 5), Case([], None), Case([{"a": [1.5]}], False)), "add"),
    source="demo",
    entry_point="add",
    starter_code="def add(a, b):\n",
    solutions=("def add(a=0, b=0):\n    return a + b\n",),
    example_tests=Suite(Style.STDIO, (Case("", ""), Case("1 2\n", "3\n"))),
    split="train",
    difficulty="easy",
    metadata={"origin": {"seed": 7, "tags": ["x", None]}},
)


@pytest.fixture(scope="module")
def mixed(shared_data: Path) -> list[Task]:
    """Tasks of every style and loader, including MBPP's tree task with its setup."""
    mbpp = [
        t for t in load_mbpp(shared_data / "mbpp.jsonl", split="test") if t.task_id in ("Mbpp/11", "Mbpp/367")
    ]
    return [*load_humaneval()[:3], *mbpp, *load_apps(shared_data / "apps-samples"), HANDMADE]


@pytest.mark.parametrize("name", ["tasks.jsonl", "tasks.jsonl.gz"])
def test_round_trip_is_exact(tmp_path: Path, mixed: list[Task], name: str) -> None:
    path = tmp_path / name
    save_tasks_jsonl(mixed, path)
    loaded = load_tasks_jsonl(path)
    assert loaded == mixed
    assert [task.metadata for task in loaded] == [task.metadata for task in mixed]  # not compared by ==
    assert [type(task.tests.cases) for task in loaded] == [tuple] * len(mixed)


def test_gzip_by_suffix_and_stable_bytes(tmp_path: Path, mixed: list[Task]) -> None:
    first, second = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    save_tasks_jsonl(mixed, first)
    save_tasks_jsonl(mixed, second)
    assert first.read_bytes()[:2] == b"\x1f\x8b"
    assert first.read_bytes() == second.read_bytes()  # no timestamp in the gzip header
    with gzip.open(first, "rt") as lines:
        assert sum(1 for _ in lines) == len(mixed)


def test_line_format(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    save_tasks_jsonl([HANDMADE], path)
    row = json.loads(path.read_text())
    assert list(row) == [
        "task_id", "prompt", "tests", "source", "entry_point", "starter_code", "completion_prefix",
        "solutions", "example_tests", "split", "difficulty", "metadata",
    ]  # fmt: skip
    assert row["tests"] == {
        "style": "call",
        "cases": [
            {"input": [2, 3], "expected": 5},
            {"input": []},
            {"input": [{"a": [1.5]}], "expected": False},
        ],
        "fn_name": "add",
        "setup": "",
    }


def test_minimal_line_gets_defaults(tmp_path: Path) -> None:
    path = tmp_path / "min.jsonl"
    tests = {"style": "assert", "cases": [{"code": "assert f() == 1"}]}
    path.write_text("\n" + json.dumps({"task_id": "t", "prompt": "p", "tests": tests}) + "\n\n")
    (task,) = load_tasks_jsonl(path)
    assert task == Task("t", "p", Suite(Style.ASSERT, (Case(code="assert f() == 1"),)))


def test_save_refuses_values_json_would_change(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    save_tasks_jsonl([HANDMADE], path)
    before = path.read_bytes()
    tupled = Task("x", "p", Suite(Style.CALL, (Case([(1, 2)], 3),), "f"))
    with pytest.raises(ValueError, match=r"'x': field 'tests.cases\[0\].input\[0\]' holds a tuple"):
        save_tasks_jsonl([HANDMADE, tupled], path)
    with pytest.raises(ValueError, match="key that is not a string"):
        save_tasks_jsonl([Task("y", "p", HANDMADE.tests, metadata={1: "a"})], path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["t.jsonl"]  # no temporary file left behind


def test_save_refuses_what_load_would_reject(tmp_path: Path) -> None:
    bad = Task("z", "p", Suite(Style.STDIO, (Case(input=None, expected="1\n"),)))
    with pytest.raises(TaskFormatError, match=r"out.jsonl:1: field 'tests.cases\[0\].input': missing"):
        save_tasks_jsonl([bad], tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_crash_before_rename_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.jsonl"
    save_tasks_jsonl([HANDMADE], path)
    before = path.read_bytes()

    def crash(*args: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        save_tasks_jsonl([HANDMADE, HANDMADE], path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["t.jsonl"]


GOOD = {
    "task_id": "t1",
    "prompt": "p",
    "tests": {"style": "stdio", "cases": [{"input": "1\n", "expected": "1\n"}]},
}


@pytest.mark.parametrize(
    ("line", "field", "problem"),
    [
        ('{"task_id": "t2", "prompt": ', None, "invalid JSON"),
        ("[1, 2]", None, "expected a JSON object, got list"),
        ({"task_id": "t2", "tests": GOOD["tests"]}, "prompt", "missing"),
        ({**GOOD, "prompt": 3}, "prompt", "expected a string, got number"),
        ({**GOOD, "promt": "p"}, "promt", "unknown field"),
        ({**GOOD, "solutions": "print(1)"}, "solutions", "expected a list, got string"),
        ({**GOOD, "solutions": ["print(1)", None]}, "solutions[1]", "expected a string, got null"),
        ({**GOOD, "tests": {"style": "unit", "cases": []}}, "tests.style", "unknown style 'unit'; use stdio, call, assert"),
        ({**GOOD, "tests": {"style": "stdio"}}, "tests.cases", "missing"),
        ({**GOOD, "tests": {"style": "stdio", "cases": [{"input": 1, "expected": "1"}]}}, "tests.cases[0].input", "expected a string, got number"),
        ({**GOOD, "tests": {"style": "stdio", "cases": ["1"]}}, "tests.cases[0]", "expected an object"),
        ({**GOOD, "tests": {"style": "call", "cases": [], "fn_name": None}}, "tests.fn_name", "required for call-style"),
        ({**GOOD, "tests": {"style": "call", "cases": [{"input": 1}], "fn_name": "f"}}, "tests.cases[0].input", "expected a list"),
        ({**GOOD, "tests": {"style": "assert", "cases": [{"code": " "}]}}, "tests.cases[0].code", "empty test code"),
        ({**GOOD, "tests": {"style": "assert", "cases": [{"cod": "assert 1"}]}}, "tests.cases[0].cod", "unknown field"),
        ({**GOOD, "example_tests": {"style": "assert", "cases": [{}]}}, "example_tests.cases[0].code", "missing"),
        ({**GOOD, "metadata": []}, "metadata", "expected an object, got array"),
        ({**GOOD, "difficulty": 1}, "difficulty", "expected a string or null"),
        ({**GOOD, "tests": {"style": "program", "cases": [{"code": "x"}], "language": "go"}}, "tests.language", "language must be one of python, cpp, java, js"),
        ({**GOOD, "tests": {"style": "assert", "cases": [{"code": "x"}], "language": "cpp"}}, "tests.language", "cpp tests must use the 'program' style"),
        ({**GOOD, "tests": {"style": "program", "cases": [{"code": ""}], "language": "js"}}, "tests.cases[0].code", "empty test code"),
    ],
)  # fmt: skip
def test_errors_name_file_line_and_field(
    tmp_path: Path, line: object, field: str | None, problem: str
) -> None:
    path = tmp_path / "bad.jsonl"
    text = line if isinstance(line, str) else json.dumps(line)
    path.write_text(json.dumps(GOOD) + "\n\n" + text + "\n")
    with pytest.raises(TaskFormatError) as error:
        load_tasks_jsonl(path)
    message = str(error.value)
    assert message.startswith(f"{path}:3: ")  # blank lines count: the number is the file's line
    if field is not None:
        assert f"field {field!r}: " in message
    assert problem in message
    assert (error.value.path, error.value.line, error.value.field) == (path, 3, field)


def test_the_documented_example_line_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "tasks.md").read_text()
    block = doc.split("```json\n")[1].split("```")[0]
    path = tmp_path / "doc.jsonl"
    path.write_text(" ".join(block.splitlines()) + "\n")  # the doc wraps the one line
    (task,) = load_tasks_jsonl(path)
    assert task.tests.cases[0] == Case([2, 3], 5) and task.split == "train"
    save_tasks_jsonl([task], tmp_path / "again.jsonl")
    assert json.loads((tmp_path / "again.jsonl").read_text()) == json.loads(path.read_text())


def test_suite_language_round_trips_and_python_files_keep_their_bytes(tmp_path: Path) -> None:
    cpp = Suite(Style.PROGRAM, (Case(code="int main() { return f() != 1; }\n"),), language="cpp")
    task = Task("CPP/x", "int f() {\n", cpp, completion_prefix="int f() {\n", example_tests=cpp)
    path = tmp_path / "cpp.jsonl"
    save_tasks_jsonl([task, HANDMADE], path)
    loaded = load_tasks_jsonl(path)
    assert loaded == [task, HANDMADE]
    assert loaded[0].tests.language == loaded[0].example_tests.language == "cpp"
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert first["tests"]["language"] == "cpp" and first["tests"]["style"] == "program"
    assert "language" not in second["tests"]  # Python suites are written as before
