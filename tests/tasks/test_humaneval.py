"""HumanEval from the installed package and HumanEval+ from its evalplus file."""

from __future__ import annotations

from pathlib import Path

import pytest

from codefalcon.tasks import Task, load_humaneval, load_humaneval_plus
from codefalcon.tasks import TestStyle as Style  # a Test* name would be collected by pytest
from codefalcon.tasks.humaneval import default_humaneval_path


@pytest.fixture(scope="module")
def humaneval() -> dict[str, Task]:
    return {task.task_id: task for task in load_humaneval()}


def test_loads_all_164_tasks_from_the_package(humaneval: dict[str, Task]) -> None:
    assert len(humaneval) == 164
    assert list(humaneval)[:2] == ["HumanEval/0", "HumanEval/1"]
    assert {task.split for task in humaneval.values()} == {"test"}
    assert {task.source for task in humaneval.values()} == {"humaneval"}


def test_task_shape(humaneval: dict[str, Task]) -> None:
    task = humaneval["HumanEval/0"]
    assert task.entry_point == "has_close_elements"
    assert task.completion_prefix == task.prompt
    assert task.prompt.lstrip().startswith("from typing import List")
    assert task.tests.style is Style.ASSERT
    assert [case.code for case in task.tests.cases] == ["check(candidate)"]
    assert task.tests.fn_name == "has_close_elements"
    assert task.tests.setup.startswith(task.prompt + "\n\n")
    assert "def check(candidate):" in task.tests.setup
    (solution,) = task.solutions
    assert solution.startswith(task.prompt) and "return False" in solution
    assert task.example_tests is None


def test_setup_carries_prompt_helpers(humaneval: dict[str, Task]) -> None:
    # HumanEval/32's check calls `poly`, which only the prompt defines.
    task = humaneval["HumanEval/32"]
    assert "poly(" in task.tests.setup.split("def check")[1]
    assert "def poly(" in task.tests.setup


def test_explicit_path_gives_the_same_tasks(humaneval: dict[str, Task]) -> None:
    path = default_humaneval_path()
    assert path.name == "HumanEval.jsonl.gz"
    assert load_humaneval(path) == list(humaneval.values())


def test_humaneval_plus_keeps_base_tests_and_extra_inputs(
    shared_data: Path, humaneval: dict[str, Task]
) -> None:
    plus = load_humaneval_plus(shared_data / "HumanEvalPlus-v0.1.10.jsonl.gz")
    assert len(plus) == 164
    task = plus[0]
    assert task.task_id == "HumanEval/0" and task.source == "humaneval_plus"
    assert task.tests == humaneval["HumanEval/0"].tests  # its `test` is HumanEval's check
    assert task.solutions != humaneval["HumanEval/0"].solutions  # evalplus' corrected reference
    assert task.metadata["base_input"][0] == [[1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3]
    assert len(task.metadata["plus_input"]) > 100
    assert plus[32].metadata["atol"] == 0.0001
