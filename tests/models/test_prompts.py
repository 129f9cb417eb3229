"""Prompt formats per benchmark (HumanEval, MBPP, APPS, synthetic) and per policy type."""

from __future__ import annotations

from pathlib import Path

import pytest

from codefalcon.models import ExtractMode, PromptFormat, build_policy_prompt, build_prompt, prompt_format
from codefalcon.models.prompts import COMPLETION_STOPS, chat_messages, function_name, qa_text
from codefalcon.tasks import Task, TestCase, TestSuite, load_apps, load_humaneval, load_mbpp
from codefalcon.tasks import TestStyle as Style


@pytest.fixture(scope="module")
def humaneval() -> dict[str, Task]:
    return {t.task_id: t for t in load_humaneval()}


@pytest.fixture(scope="module")
def mbpp(shared_data: Path) -> dict[str, Task]:
    return {t.task_id: t for t in load_mbpp(shared_data / "mbpp.jsonl")}


@pytest.fixture(scope="module")
def apps(shared_data: Path) -> dict[str, Task]:
    return {t.task_id: t for t in load_apps(shared_data / "apps-samples")}


def echo_template(messages: list[dict[str, str]]) -> str:
    return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages) + "<assistant>"


def test_humaneval_completion_is_the_prompt_itself(humaneval: dict[str, Task]) -> None:
    task = humaneval["HumanEval/0"]
    prompt = build_prompt(task, PromptFormat.COMPLETION)
    assert prompt.text == task.prompt
    assert prompt.mode is ExtractMode.COMPLETION
    assert prompt.stop == COMPLETION_STOPS
    assert {"\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert"} <= set(prompt.stop)


def test_humaneval_chat_asks_for_the_whole_function_in_a_block(humaneval: dict[str, Task]) -> None:
    task = humaneval["HumanEval/0"]
    prompt = build_prompt(task, PromptFormat.CHAT, echo_template)
    assert prompt.text.startswith("<user>Complete the following Python function.")
    assert f"```python\n{task.prompt.strip()}\n```</user><assistant>" in prompt.text
    assert prompt.mode is ExtractMode.CHAT and prompt.stop == ()


def test_chat_without_renderer_is_the_bare_message(humaneval: dict[str, Task]) -> None:
    task = humaneval["HumanEval/2"]
    assert build_prompt(task, "chat").text == chat_messages(task)[0]["content"]


def test_mbpp_chat_shows_text_first_test_and_function_name(mbpp: dict[str, Task]) -> None:
    task = mbpp["Mbpp/11"]
    text = build_prompt(task, PromptFormat.CHAT).text
    assert text.startswith(
        "You are an expert Python programmer, and here is your task: Write a python function to "
        "remove first and last occurrence of a given character from the string. Your code should "
        'pass this test:\n\nassert remove_Occ("hello","l") == "heo"\n\n'
        "The function must be named `remove_Occ`."
    )
    assert 'remove_Occ("abcda","a")' not in text  # only the first test is shown
    assert text.endswith("```python code block.")


def test_mbpp_completion_is_a_docstring_with_the_example(mbpp: dict[str, Task]) -> None:
    prompt = build_prompt(mbpp["Mbpp/12"], PromptFormat.COMPLETION)
    assert prompt.text == (
        '"""\nWrite a function to sort a given matrix in ascending order according to the sum of '
        "its rows.\nassert sort_matrix([[1, 2, 3], [2, 4, 5], [1, 1, 1]])==[[1, 1, 1], [1, 2, 3], "
        '[2, 4, 5]]\n"""\n'
    )
    assert prompt.mode is ExtractMode.PROGRAM
    assert "\ndef " not in prompt.stop and "\nassert" in prompt.stop  # helpers are allowed


def test_mbpp_qa_is_coderl_call_based(mbpp: dict[str, Task]) -> None:
    text = build_prompt(mbpp["Mbpp/11"], PromptFormat.QA).text
    assert text.startswith("\nQUESTION:\nYou are an expert Python programmer")
    assert text.endswith("`remove_Occ`.\nUse Call-Based format\nANSWER:\n")


def test_apps_stdin_qa_matches_coderl(apps: dict[str, Task]) -> None:
    task = apps["APPS/1"]
    assert task.tests.style is Style.STDIO and not task.starter_code
    text = build_prompt(task, PromptFormat.QA).text
    assert text == f"\nQUESTION:\n{task.prompt}\nUse Standard Input format\nANSWER:\n"


def test_apps_call_based_qa_includes_starter_code(apps: dict[str, Task]) -> None:
    task = apps["APPS/2404"]
    assert task.tests.style is Style.CALL and task.starter_code
    text = qa_text(task)
    assert text == (f"\nQUESTION:\n{task.prompt}\n{task.starter_code}\nUse Call-Based format\nANSWER:\n")


def test_apps_chat_says_how_the_program_is_run(apps: dict[str, Task]) -> None:
    stdin = build_prompt(apps["APPS/1"], PromptFormat.CHAT).text
    assert "reads from standard input and prints the answer" in stdin
    call = build_prompt(apps["APPS/2404"], PromptFormat.CHAT).text
    assert "Use this starter code:\n```python\nclass Solution:" in call
    assert "Write the function `findKthPositive`" in call and "Do not read input" in call


def test_apps_base_model_gets_the_qa_layout_and_a_program_mode(apps: dict[str, Task]) -> None:
    prompt = build_prompt(apps["APPS/1"], PromptFormat.COMPLETION)
    assert prompt.text == qa_text(apps["APPS/1"])
    assert prompt.mode is ExtractMode.PROGRAM and prompt.stop == ("\nQUESTION:",)


def test_synthetic_tasks_complete_their_header() -> None:
    header = 'def double(x: int) -> int:\n    """Return twice x."""\n'
    suite = TestSuite(Style.CALL, (TestCase(input=[2], expected=4),), fn_name="double")
    task = Task("synth/0", header, suite, source="synth", entry_point="double", completion_prefix=header)
    prompt = build_prompt(task, PromptFormat.COMPLETION)
    assert (prompt.text, prompt.mode) == (header, ExtractMode.COMPLETION)
    assert build_prompt(task, PromptFormat.QA).text == (
        f"\nQUESTION:\n{header}\nUse Call-Based format\nANSWER:\n"
    )


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("assert remove_Occ('a', 'b') == ''", "remove_Occ"),
        ("assert math.isclose(area(2), 4.0, rel_tol=0.001)", "area"),
        ("assert set(similar(('a',), ('a',))) == set(('a',))", "similar"),
        ("assert not is_prime(4)", "is_prime"),
        ("assert broken(1 == 1", "broken"),  # does not parse: read by regex
    ],
)
def test_function_name_from_the_first_assert(code: str, name: str) -> None:
    task = Task("mbpp/x", "text", TestSuite(Style.ASSERT, (TestCase(code=code),)))
    assert function_name(task) == name


def test_prompt_format_follows_the_policy(tiny_policy, tiny_t5_dir: Path) -> None:
    from codefalcon.models import load_policy

    assert prompt_format(tiny_policy) is PromptFormat.COMPLETION
    assert prompt_format(load_policy(tiny_t5_dir)) is PromptFormat.QA


@pytest.mark.slow
def test_policy_prompt_uses_the_tokenizers_chat_template(smollm2, humaneval: dict[str, Task]) -> None:
    prompt = build_policy_prompt(humaneval["HumanEval/0"], smollm2)
    assert prompt.text.startswith("<|im_start|>system\n")
    assert prompt.text.endswith("```<|im_end|>\n<|im_start|>assistant\n")
    assert prompt.mode is ExtractMode.CHAT
