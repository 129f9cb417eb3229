"""APPS problem folders, the train/test layout, and CodeRL's example-test file."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from codefalcon.tasks import Task, TaskFormatError, load_apps, load_apps_example_tests
from codefalcon.tasks import TestCase as Case  # Test* names would be collected by pytest
from codefalcon.tasks import TestStyle as Style
from codefalcon.tasks.apps_examples import as_call_suite, parse_arguments, parse_value
from codefalcon.tasks.record import TestSuite as Suite


@pytest.fixture(scope="module")
def samples(shared_data: Path) -> dict[str, Task]:
    return {task.task_id: task for task in load_apps(shared_data / "apps-samples")}


def make_problem(root: Path, name: str, files: dict[str, Any]) -> Path:
    """A problem folder; values that are not strings are written as JSON."""
    folder = root / name
    folder.mkdir(parents=True)
    for file, content in files.items():
        (folder / file).write_text(content if isinstance(content, str) else json.dumps(content))
    return folder


STDIO_FILES = {
    "question.txt": "Add two numbers.\n\nInput\n1 2\n\nOutput\n3\n",
    "input_output.json": {"inputs": ["1 2\n", ["4 5"]], "outputs": ["3\n", ["9", ""]]},
    "metadata.json": {"difficulty": "introductory"},
}


def test_loads_the_five_samples(samples: dict[str, Task]) -> None:
    assert list(samples) == ["APPS/1", "APPS/111", "APPS/2287", "APPS/2404", "APPS/4184"]
    styles = {task_id: task.tests.style for task_id, task in samples.items()}
    assert styles == {
        "APPS/1": Style.STDIO,
        "APPS/111": Style.STDIO,
        "APPS/2287": Style.STDIO,
        "APPS/2404": Style.CALL,
        "APPS/4184": Style.CALL,
    }
    difficulties = [task.difficulty for task in samples.values()]
    assert difficulties == ["interview", "interview", "competition", "introductory", "introductory"]
    assert {task.source for task in samples.values()} == {"apps"}
    assert samples["APPS/1"].metadata["url"] == "https://codeforces.com/problemset/problem/1036/B"


def test_stdio_problem(samples: dict[str, Task]) -> None:
    task = samples["APPS/2287"]
    assert task.prompt.startswith("We have a tree with N vertices.")
    assert len(task.tests) == 3 and task.tests.fn_name is None and task.entry_point is None
    assert task.tests.cases[1] == Case(input="5\n1 2\n3 1\n4 3\n3 5\n3\n2 6\n4 3\n5 7\n", expected="No\n")
    assert len(task.solutions) == 10 and task.starter_code == ""


def test_call_problems_keep_their_data_as_is(samples: dict[str, Task]) -> None:
    leetcode, codewars = samples["APPS/2404"], samples["APPS/4184"]
    assert leetcode.tests.fn_name == leetcode.entry_point == "findKthPositive"
    assert leetcode.tests.cases == (Case(input=[[2, 3, 4, 7, 11], 5], expected=9),)
    assert leetcode.starter_code.startswith("class Solution:")
    # Codewars outputs come wrapped in a one-element list; the comparator deals with that.
    assert codewars.tests.cases[0] == Case(input=[1], expected=[False])
    assert len(codewars.tests) == 8 and codewars.starter_code == "def is_prime(n):\n\t"


def test_flat_folder_split_label(shared_data: Path) -> None:
    train = load_apps(shared_data / "apps-samples", split="train", limit=1)
    assert [(task.task_id, task.split) for task in train] == [("APPS/train/1", "train")]


def test_difficulties_and_limit(shared_data: Path) -> None:
    intro = load_apps(shared_data / "apps-samples", difficulties=["introductory"])
    assert [task.task_id for task in intro] == ["APPS/2404", "APPS/4184"]
    assert [t.task_id for t in load_apps(shared_data / "apps-samples", limit=2)] == ["APPS/1", "APPS/111"]
    with pytest.raises(ValueError, match="unknown APPS difficulty"):
        load_apps(shared_data / "apps-samples", difficulties=["intro"])


def test_train_test_root(tmp_path: Path) -> None:
    make_problem(tmp_path / "train", "0000", STDIO_FILES)
    make_problem(tmp_path / "test", "0000", STDIO_FILES)
    make_problem(tmp_path / "test", "0012", STDIO_FILES)
    (tmp_path / "test" / "notes").mkdir()  # not a problem folder: ignored
    both = load_apps(tmp_path)
    assert [(task.task_id, task.split) for task in both] == [
        ("APPS/train/0", "train"),
        ("APPS/0", "test"),
        ("APPS/12", "test"),
    ]
    assert [task.task_id for task in load_apps(tmp_path, split="test")] == ["APPS/0", "APPS/12"]
    assert load_apps(tmp_path / "train")[0].split == "train"  # the folder's own name
    task = both[0]
    assert task.tests.cases[1] == Case(input="4 5", expected="9\n")  # lists of lines are joined
    assert task.solutions == () and task.difficulty == "introductory"


def test_shared_examples_file(shared_data: Path) -> None:
    examples = load_apps_example_tests(shared_data / "apps_test_example_tests.jsonl")
    assert len(examples) == 4937  # 63 of the 5000 lines have no example
    assert 51 not in examples
    assert examples[1].style is Style.STDIO
    assert examples[1].cases[0] == Case(input="100\n", expected="99\n")


def test_examples_are_attached_only_where_the_statement_shows_them(shared_data: Path, tmp_path: Path) -> None:
    # The samples are train-split problems: the test split's examples under the same numbers
    # belong to other problems, and must not be attached even when the folder is called test.
    shared = shared_data / "apps_test_example_tests.jsonl"
    tasks = load_apps(shared_data / "apps-samples", split="test", example_tests=shared)
    assert all(task.example_tests is None for task in tasks)
    lines = [
        {"problem_id": 1, "inputs": ["3\n2 2 3\n4 3 7\n10 1 9\n"], "outputs": ["1\n6\n-1\n"]},
        {"problem_id": 2404, "inputs": [" arr = [2,3,4,7,11], k = 5\n", " arr = [1,2,3,4], k = 2\n"],
         "outputs": [" 9\nExplanation: The missing positive integers are [1,5,6,8,9,10,12,13,...]. "
                     "The 5th missing positive integer is 9.", " 6"]},
    ]  # fmt: skip
    own = tmp_path / "examples.jsonl"
    own.write_text("".join(json.dumps(line) + "\n" for line in lines))
    by_id = {t.task_id: t for t in load_apps(shared_data / "apps-samples", split="test", example_tests=own)}
    assert by_id["APPS/1"].example_tests == Suite(Style.STDIO, (Case(lines[0]["inputs"][0], "1\n6\n-1\n"),))
    call = by_id["APPS/2404"].example_tests
    assert call == Suite(
        Style.CALL,
        (Case(input=[[2, 3, 4, 7, 11], 5], expected=9), Case(input=[[1, 2, 3, 4], 2], expected=6)),
        fn_name="findKthPositive",
    )
    train = load_apps(shared_data / "apps-samples", split="train", example_tests=own)
    assert all(task.example_tests is None for task in train)  # examples are for the test split


@pytest.mark.parametrize(
    ("text", "args"),
    [
        (" [1,2,3], [1,1]\n", [[1, 2, 3], [1, 1]]),
        (' s = "the sky", k = 3\n', ["the sky", 3]),
        ("[1, 2]\n3\n", [[1, 2], 3]),
        (' [["1","0"],\n  ["0","1"]]\n', [[["1", "0"], ["0", "1"]]]),
        ("3 5\n00100\n", None),  # stdin text, not arguments
        ("1)(2", None),
        ("*rest", None),
    ],
)
def test_parse_arguments(text: str, args: list | None) -> None:
    assert parse_arguments(text) == args


def test_parse_value() -> None:
    assert parse_value(" true\nExplanation:\xa0There are ...") is True
    assert parse_value(' ["ad", "ae"].\n') == ["ad", "ae"]
    assert parse_value("null") is None
    assert repr(parse_value("Yes, it is")) == "<unreadable>"


def test_unreadable_call_examples_are_dropped() -> None:
    examples = Suite(Style.STDIO, (Case("[1, 2]", "3"), Case("two words", "3"), Case("[1]", "nope nope")))
    assert as_call_suite(examples, "f") == Suite(Style.CALL, (Case([[1, 2]], 3),), fn_name="f")
    assert as_call_suite(Suite(Style.STDIO, (Case("a b", "c d"),)), "f") is None


def test_no_tests_is_an_error_unless_allowed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_problem(tmp_path, "0001", STDIO_FILES)
    folder = make_problem(
        tmp_path, "0002", {"question.txt": "q", "metadata.json": {"difficulty": "interview"}}
    )
    with pytest.raises(TaskFormatError) as error:
        load_apps(tmp_path)
    assert str(error.value).startswith(f"{folder / 'input_output.json'}: field 'tests': file is missing")
    with caplog.at_level(logging.WARNING):
        tasks = load_apps(tmp_path, allow_no_tests=True)
    assert [task.task_id for task in tasks] == ["APPS/1"]
    assert "skipped 1 APPS problems without tests" in caplog.text


@pytest.mark.parametrize(
    ("files", "file", "field", "problem"),
    [
        ({"question.txt": None}, "question.txt", "prompt", "file is missing"),
        ({"input_output.json": '{"inputs": ["1"],\n "outputs": [}'}, "input_output.json:2", None, "invalid JSON"),
        ({"input_output.json": {"inputs": ["1\n"]}}, "input_output.json", "outputs", "missing"),
        ({"input_output.json": {"inputs": "1\n", "outputs": "2\n"}}, "input_output.json", "inputs", "expected a list"),
        ({"input_output.json": {"inputs": ["1\n"], "outputs": []}}, "input_output.json", "outputs", "0 outputs for 1 inputs"),
        ({"input_output.json": {"inputs": [1], "outputs": ["2"]}}, "input_output.json", "inputs[0]", "a string or a list"),
        ({"input_output.json": {"fn_name": "f", "inputs": [1], "outputs": [2]}}, "input_output.json", "inputs[0]", "list of arguments"),
        ({"input_output.json": {"fn_name": 3, "inputs": [[1]], "outputs": [2]}}, "input_output.json", "fn_name", "expected a string or null"),
        ({"metadata.json": {"difficulty": 2}}, "metadata.json", "difficulty", "expected a string or null, got number"),
        ({"solutions.json": ["print(1)", {"code": 1}]}, "solutions.json", "[1]", "expected a program"),
    ],
)  # fmt: skip
def test_malformed_folder_names_file_folder_and_field(
    tmp_path: Path, files: dict, file: str, field: str | None, problem: str
) -> None:
    contents = {**STDIO_FILES, **files}
    folder = make_problem(
        tmp_path, "0042", {name: text for name, text in contents.items() if text is not None}
    )
    with pytest.raises(TaskFormatError) as error:
        load_apps(tmp_path)
    message = str(error.value)
    assert message.startswith(f"{folder}/{file}: ")  # the folder and the file
    if field is not None:
        assert f"field {field!r}: " in message
    assert problem in message


def test_missing_root_and_bad_split(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_apps(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown APPS split"):
        load_apps(tmp_path, split="dev")  # type: ignore[arg-type]
    make_problem(tmp_path / "train", "0000", STDIO_FILES)
    with pytest.raises(FileNotFoundError, match="no test/ folder"):
        load_apps(tmp_path, split="test")
