"""MBPP: the original jsonl (974 problems), the sanitized JSON list (427) and MBPP+."""

from __future__ import annotations

import ast
import json
from collections import Counter
from pathlib import Path

import pytest

from codefalcon.tasks import Task, TaskFormatError, load_mbpp, load_mbpp_plus, load_mbpp_sanitized
from codefalcon.tasks import TestStyle as Style  # a Test* name would be collected by pytest
from codefalcon.tasks.mbpp import mbpp_split, with_test_imports
from codefalcon.tasks.reading import parse_python


@pytest.fixture(scope="module")
def mbpp(shared_data: Path) -> dict[str, Task]:
    return {task.task_id: task for task in load_mbpp(shared_data / "mbpp.jsonl")}


def test_loads_974_tasks_with_the_paper_splits(mbpp: dict[str, Task]) -> None:
    assert len(mbpp) == 974
    assert Counter(task.split for task in mbpp.values()) == {
        "test": 500,
        "train": 374,
        "validation": 90,
        "prompt": 10,
    }
    assert mbpp["Mbpp/10"].split == "prompt" and mbpp["Mbpp/11"].split == "test"
    assert mbpp["Mbpp/510"].split == "test" and mbpp["Mbpp/511"].split == "validation"
    assert mbpp["Mbpp/600"].split == "validation" and mbpp["Mbpp/601"].split == "train"


def test_split_argument(shared_data: Path, mbpp: dict[str, Task]) -> None:
    tasks = load_mbpp(shared_data / "mbpp.jsonl", split="validation")
    assert tasks == [task for task in mbpp.values() if task.split == "validation"]
    assert len(tasks) == 90


def test_unknown_split_is_refused(shared_data: Path) -> None:
    with pytest.raises(ValueError, match="unknown MBPP split 'dev'"):
        load_mbpp(shared_data / "mbpp.jsonl", split="dev")  # type: ignore[arg-type]


def test_task_shape(mbpp: dict[str, Task]) -> None:
    task = mbpp["Mbpp/11"]
    assert (
        task.prompt
        == "Write a python function to remove first and last occurrence of a given character from the string."
    )
    assert task.entry_point == task.tests.fn_name == "remove_Occ"
    assert task.tests.style is Style.ASSERT
    assert [case.code for case in task.tests.cases] == [
        'assert remove_Occ("hello","l") == "heo"',
        'assert remove_Occ("abcda","a") == "bcd"',
        'assert remove_Occ("PHP","P") == "H"',
    ]
    assert task.example_tests == task.tests.head(1)
    assert task.tests.setup == "" and task.completion_prefix == ""
    (solution,) = task.solutions
    assert "\r" not in solution and solution.startswith("def remove_Occ(s,ch):")


def test_entry_point_is_the_called_function_the_code_defines(mbpp: dict[str, Task]) -> None:
    # Task 17's reference defines only square_perimeter; task 160 names the function `solution`.
    assert mbpp["Mbpp/17"].entry_point == "square_perimeter"
    assert mbpp["Mbpp/160"].entry_point == "solution"
    for task in mbpp.values():
        tree = parse_python(task.solutions[0])  # quietly: MBPP code has "\\d" escapes
        assert task.entry_point in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_tree_tasks_keep_setup_that_uses_the_programs_node_class(mbpp: dict[str, Task]) -> None:
    for task_id in ("Mbpp/367", "Mbpp/927"):
        task = mbpp[task_id]
        assert task.tests.setup.startswith("root = Node(1)")
        assert "\r" not in task.tests.setup
        assert "class Node" in task.solutions[0] and "class Node" not in task.tests.setup


def test_modules_used_by_asserts_are_imported_in_setup(mbpp: dict[str, Task]) -> None:
    # Task 596's asserts call sys.getsizeof; MBPP relied on the program's own `import sys`.
    assert mbpp["Mbpp/596"].tests.setup == "import sys"
    assert with_test_imports("import math", ["assert math.isclose(f(), 1)"]) == "import math"
    assert with_test_imports("x = 1", ["assert f(re.escape('a'))"]) == "import re\nx = 1"
    assert with_test_imports("", ["assert obj.attr == 1"]) == ""


def test_include_challenge_adds_the_challenge_asserts(shared_data: Path, mbpp: dict[str, Task]) -> None:
    with_challenge = {t.task_id: t for t in load_mbpp(shared_data / "mbpp.jsonl", include_challenge=True)}
    grown = [
        task_id for task_id, task in with_challenge.items() if len(task.tests) > len(mbpp[task_id].tests)
    ]
    assert len(grown) == 11
    assert with_challenge[grown[0]].example_tests == mbpp[grown[0]].example_tests


def test_sanitized(shared_data: Path) -> None:
    tasks = load_mbpp_sanitized(shared_data / "sanitized-mbpp.json")
    assert len(tasks) == 427
    assert Counter(task.split for task in tasks) == {"test": 257, "train": 120, "validation": 43, "prompt": 7}
    by_id = {task.task_id: task for task in tasks}
    assert by_id["Mbpp/82"].tests.setup == "import math"  # from test_imports
    assert by_id["Mbpp/82"].source == "mbpp_sanitized"
    assert len(load_mbpp_sanitized(shared_data / "sanitized-mbpp.json", split="test")) == 257


def test_mbpp_plus(shared_data: Path) -> None:
    tasks = {t.task_id: t for t in load_mbpp_plus(shared_data / "MbppPlus-v0.2.0.jsonl.gz")}
    assert len(tasks) == 378
    task = tasks["Mbpp/82"]
    assert task.entry_point == "volume_sphere" and len(task.tests) == 3
    assert task.tests.setup == "import math"
    assert all(case.code.startswith("assert ") for case in task.tests.cases)
    assert tasks["Mbpp/120"].tests.setup == "import math"  # math.isclose, no import in the file
    assert tasks["Mbpp/793"].metadata["plus_input"] == []  # written as {} in the file
    assert tasks["Mbpp/633"].split == "train"  # MBPP+ draws on MBPP's train ids too


def test_mbpp_split_boundaries() -> None:
    assert [mbpp_split(n) for n in (1, 10, 11, 510, 511, 600, 601, 974)] == [
        "prompt", "prompt", "test", "test", "validation", "validation", "train", "train"
    ]  # fmt: skip


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


GOOD = {"task_id": 11, "text": "t", "code": "def f(x):\n    return x\n", "test_setup_code": "",
        "test_list": ["assert f(1) == 1"], "challenge_test_list": []}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"test_list": "assert f(1) == 1"}, "test_list", "expected a list, got string"),
        ({"test_list": ["assert f(1) == 1", 3]}, "test_list[1]", "expected a string, got number"),
        ({"task_id": "11"}, "task_id", "expected an integer, got string"),
        ({"code": "def f(:"}, "code", "not valid Python"),
        ({"test_list": []}, "test_list", "no tests"),
    ],
)
def test_malformed_line_names_file_line_and_field(
    tmp_path: Path, change: dict, field: str, problem: str
) -> None:
    path = _write_jsonl(tmp_path / "mbpp.jsonl", [GOOD, {**GOOD, **change}])
    with pytest.raises(TaskFormatError) as error:
        load_mbpp(path)
    assert str(error.value).startswith(f"{path}:2: field '{field}': ")
    assert problem in str(error.value)


def test_missing_field(tmp_path: Path) -> None:
    row = {key: value for key, value in GOOD.items() if key != "text"}
    path = _write_jsonl(tmp_path / "mbpp.jsonl", [row])
    with pytest.raises(TaskFormatError, match=r"mbpp.jsonl:1: field 'text': missing"):
        load_mbpp(path)


def test_sanitized_errors_name_the_list_item(tmp_path: Path) -> None:
    item = {"source_file": "x", "task_id": 2, "prompt": "p", "code": "def f(): pass",
            "test_imports": [], "test_list": ["assert f() is None"]}  # fmt: skip
    path = tmp_path / "sanitized.json"
    path.write_text(json.dumps([item, {**item, "test_imports": "import math"}]))
    with pytest.raises(TaskFormatError, match=r"sanitized.json: field '\[1\].test_imports': expected a list"):
        load_mbpp_sanitized(path)
