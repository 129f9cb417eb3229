"""HumanEval-X: loader counts and field mapping per language, registry names, format errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from codefalcon.tasks import Task, TaskFormatError, load_benchmark, load_humaneval, load_humanevalx
from codefalcon.tasks import TestStyle as Style  # a Test* name would be collected by pytest
from codefalcon.tasks.humanevalx import CPP_HEADERS, signature_name

FILES = {
    "cpp": "humanevalx_cpp",
    "java": "humanevalx_java",
    "js": "humanevalx_js",
    "python": "humanevalx_python",
}
PREFIXES = {"cpp": "CPP", "java": "Java", "js": "JavaScript", "python": "Python"}


def rows(shared_data: Path, language: str) -> list[dict]:
    with gzip.open(shared_data / f"{FILES[language]}.jsonl.gz", "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def tasks(shared_data: Path) -> dict[str, list[Task]]:
    return {lang: load_humanevalx(shared_data / f"{name}.jsonl.gz") for lang, name in FILES.items()}


@pytest.mark.parametrize("language", sorted(FILES))
def test_164_tasks_per_language_with_ids_read_from_the_file(tasks, language: str) -> None:
    loaded = tasks[language]
    assert len(loaded) == 164
    assert [t.task_id for t in loaded[:2]] == [f"{PREFIXES[language]}/0", f"{PREFIXES[language]}/1"]
    assert {t.tests.language for t in loaded} == {language}
    assert {t.metadata["language"] for t in loaded} == {language}
    assert {t.source for t in loaded} == {"humanevalx"} and {t.split for t in loaded} == {"test"}
    assert all(t.entry_point for t in loaded)
    assert sum(t.example_tests is None for t in loaded) == 6  # six rows have no example_test


@pytest.mark.parametrize("language", ["cpp", "java", "js"])
def test_braced_languages_map_prompt_solution_and_test_program(shared_data, tasks, language) -> None:
    row, task = rows(shared_data, language)[0], tasks[language][0]
    assert task.prompt == task.completion_prefix == row["prompt"]
    # CodeGeeX's harness: prompt + completion, the test program appended after a newline.
    assert task.solutions == (row["prompt"] + row["canonical_solution"],)
    assert task.tests.style is Style.PROGRAM and len(task.tests) == 1
    assert task.tests.cases[0].code == row["test"]
    assert task.example_tests is not None and task.example_tests.cases[0].code == row["example_test"]
    assert task.example_tests.language == language
    assert task.entry_point == {"cpp": "has_close_elements"}.get(language, "hasCloseElements")
    assert task.metadata["declaration"] == row["declaration"]


def test_cpp_prelude_adds_the_headers_the_prompt_lacks(tasks) -> None:
    task = tasks["cpp"][0]  # its prompt includes stdio.h, vector and math.h
    prelude = task.metadata["program_prelude"]
    assert "#include<algorithm>" in prelude and "#include<vector>" not in prelude
    assert task.runnable("X").startswith(prelude) and task.runnable("X").endswith("X")
    assert all(h in t.prompt or h in t.metadata["program_prelude"] for t in tasks["cpp"] for h in CPP_HEADERS)
    assert all("program_prelude" not in t.metadata for t in tasks["java"] + tasks["js"])


def test_python_loads_as_humaneval_does(tasks) -> None:
    humaneval = load_humaneval()
    for ours, theirs in zip(tasks["python"], humaneval, strict=True):
        assert ours.task_id == theirs.task_id.replace("HumanEval", "Python")
        assert (ours.prompt, ours.entry_point, ours.solutions) == (
            theirs.prompt,
            theirs.entry_point,
            theirs.solutions,
        )
        assert ours.tests.cases == theirs.tests.cases and ours.tests.fn_name == theirs.tests.fn_name
        assert ours.tests.style is Style.ASSERT and ours.tests.language == "python"
    # HumanEval-X's tests end with `check(name)`, which would run on the prompt's stub in setup.
    task = tasks["python"][0]
    assert task.tests.setup.rstrip().splitlines()[-1].startswith("    assert")
    assert task.example_tests is not None and "def check(has_close_elements)" in task.example_tests.setup


def test_entry_points_come_from_the_signature_line() -> None:
    assert signature_name("/* doc */\nconst addOne = (x) => {\n", "js") == "addOne"
    prompt = "#include<string>\nstring f(string s){\n    // doc: g(s) calls\n"
    assert signature_name(prompt, "cpp") == "f"  # C++ 10/32/38/50 end with a comment line


def test_language_is_checked_against_the_ids(shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(
        TaskFormatError, match=r"humanevalx_cpp.jsonl.gz:1: field 'task_id': 'CPP/0' is a cpp task"
    ):
        load_humanevalx(shared_data / "humanevalx_cpp.jsonl.gz", "java")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**rows(shared_data, "js")[0], "task_id": "Go/0"}) + "\n")
    with pytest.raises(
        TaskFormatError, match=r"bad.jsonl:1: field 'task_id': 'Go/0' is not a HumanEval-X id"
    ):
        load_humanevalx(bad)
    missing = tmp_path / "missing.jsonl"
    row = {k: v for k, v in rows(shared_data, "js")[1].items() if k != "test"}
    missing.write_text(json.dumps(rows(shared_data, "js")[0]) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(TaskFormatError, match=r"missing.jsonl:2: field 'test': missing"):
        load_humanevalx(missing)


def test_registry_takes_the_file_or_the_folder_with_a_language(shared_data: Path, tasks) -> None:
    assert load_benchmark("humanevalx", shared_data, language="java") == tasks["java"]
    assert load_benchmark("humanevalx", shared_data / "humanevalx_js.jsonl.gz") == tasks["js"]
    with pytest.raises(ValueError, match="is a folder: name the language"):
        load_benchmark("humanevalx", shared_data)
    with pytest.raises(ValueError, match="language is for benchmark humanevalx"):
        load_benchmark("mbpp", shared_data / "mbpp.jsonl", language="cpp")
    with pytest.raises(ValueError, match="needs a data file"):
        load_benchmark("humanevalx", None, language="cpp")
