"""Translation tasks from HumanEval-X pairs: pairing by problem number, prompt, tests, metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from codefalcon.tasks import build_translation_tasks, load_benchmark, load_humanevalx, load_translation
from codefalcon.tasks.translate import code_head, comment_block, reference_body


@pytest.fixture(scope="module")
def cpp(shared_data: Path):
    return load_humanevalx(shared_data / "humanevalx_cpp.jsonl.gz")


@pytest.fixture(scope="module")
def java(shared_data: Path):
    return load_humanevalx(shared_data / "humanevalx_java.jsonl.gz")


def test_pairs_by_problem_number_with_the_targets_tests(cpp, java) -> None:
    tasks = build_translation_tasks(cpp, java, "cpp", "java")
    assert len(tasks) == 164
    task = tasks[7]
    assert task.task_id == "translate/cpp-java/7" and task.source == "translate"
    assert task.tests == java[7].tests and task.example_tests == java[7].example_tests
    assert task.entry_point == java[7].entry_point == "filterBySubstring"
    assert task.tests.language == "java" and task.split == "test"
    # Only numbers present on both sides; the order is the target list's.
    some = build_translation_tasks(cpp[5:10], java[::-1], "cpp", "java")
    assert [t.task_id for t in some] == [f"translate/cpp-java/{n}" for n in (9, 8, 7, 6, 5)]


def test_prompt_shows_the_source_program_and_the_target_signature(cpp, java) -> None:
    task = build_translation_tasks(cpp, java, "cpp", "java")[0]
    source_program = cpp[0].metadata["declaration"] + reference_body(cpp[0])
    assert task.prompt == task.completion_prefix
    assert task.prompt.startswith("// Translate this C++ program to Java:\n// #include<stdio.h>\n")
    assert task.prompt.endswith("//\n" + java[0].metadata["declaration"])
    assert "/**" not in task.prompt  # the target's doc comment is left out: translate, don't solve
    assert task.solutions == (task.prompt + reference_body(java[0]),)
    meta = task.metadata
    assert (meta["source_language"], meta["target_language"], meta["language"]) == ("cpp", "java", "java")
    assert (meta["source_task_id"], meta["target_task_id"]) == ("CPP/0", "Java/0")
    assert meta["source_program"] == source_program
    assert meta["target_reference"] == java[0].metadata["declaration"] + reference_body(java[0])


def test_cpp_target_keeps_its_prelude_and_python_target_its_setup(shared_data: Path, cpp) -> None:
    python = load_humanevalx(shared_data / "humanevalx_python.jsonl.gz")
    to_cpp = build_translation_tasks(python, cpp, "python", "cpp")[0]
    assert to_cpp.metadata["program_prelude"] == cpp[0].metadata["program_prelude"]
    assert to_cpp.prompt.startswith("// Translate this Python program to C++:\n// from typing import List\n")
    to_python = build_translation_tasks(cpp, python, "cpp", "python")[32]
    assert to_python.prompt.startswith("# Translate this C++ program to Python:\n# #include")
    assert to_python.tests == python[32].tests  # setup still holds the prompt's `poly` helper
    assert "def poly(" in to_python.prompt and '"""' not in to_python.prompt.split("def find_zero")[1]


def test_cpp_declarations_that_hold_more_than_a_signature_fall_back_to_the_prompt(cpp) -> None:
    # CPP/38's declaration repeats half of a body; the prompt ends at the signature instead.
    assert code_head(cpp[38], "cpp") == cpp[38].prompt
    assert code_head(cpp[0], "cpp") == cpp[0].metadata["declaration"]


def test_comment_block_cannot_be_closed_by_the_source() -> None:
    block = comment_block("int f() { /* x */ return 1; }\n#define A \\\n", "cpp", "java")
    assert block.splitlines() == [
        "// Translate this C++ program to Java:",
        "// int f() { /* x */ return 1; }",
        "// #define A \\",
        "//",  # ends the comment even though the line above continues it
    ]


def test_load_translation_from_the_folder_and_its_errors(shared_data: Path, tmp_path: Path) -> None:
    tasks = load_benchmark("translate", shared_data, source="js", target="python")
    assert len(tasks) == 164 and tasks[0].task_id == "translate/js-python/0"
    assert tasks[0].tests.style.value == "assert"
    with pytest.raises(ValueError, match="source and target are both js"):
        load_translation(shared_data, "js", "js")
    with pytest.raises(ValueError, match="source language must be one of"):
        load_translation(shared_data, "go", "js")
    with pytest.raises(FileNotFoundError, match=r"no humanevalx_cpp\.jsonl\.gz"):
        load_translation(tmp_path, "cpp", "java")
    with pytest.raises(ValueError, match="needs both a source and a target"):
        load_benchmark("translate", shared_data, source="cpp")
    with pytest.raises(ValueError, match=r"not .*humanevalx_cpp\.jsonl\.gz"):
        load_benchmark("translate", shared_data / "humanevalx_cpp.jsonl.gz", source="cpp", target="js")
