"""Repair, memory and refine prompts for each prompt format; the visible tests of a task."""

from __future__ import annotations

from codefalcon.inference import ExampleSource, Prompter, comment_block, visible_tests
from codefalcon.memory import Feedback, RetrievedExample
from codefalcon.memory.buffer import FailedTest
from codefalcon.models import ExtractMode, PromptFormat
from codefalcon.models.extract import extract_program
from codefalcon.models.prompter import REPAIR_REQUEST
from codefalcon.tasks import Task, record
from inference.fakes import PREFIX, add_task

FEEDBACK = Feedback(
    "def add(a, b):\n    return a - b\n", "wrong_answer", 0, 1,
    failed_tests=(FailedTest(0, "wrong_answer", "[2, 3]", "5", "-1"),),
).render(1)  # fmt: skip
EXAMPLE = RetrievedExample("train/plus", "Add two numbers.", "def plus(x, y):\n    return x + y\n", 0.8)


def mbpp_task() -> Task:
    cases = tuple(record.TestCase(code=f"assert add({i}, 1) == {i + 1}") for i in range(3))
    suite = record.TestSuite(record.TestStyle.ASSERT, cases, "add")
    return Task("Mbpp/1", "Write a function to add two numbers.", suite)


def test_visible_tests_never_come_from_the_hidden_suite_except_mbpps_shown_example():
    assert visible_tests(add_task()).source is ExampleSource.EXAMPLE_TESTS
    found = visible_tests(mbpp_task())
    assert (
        found.source is ExampleSource.FIRST_HIDDEN_TEST and found.suite.cases == mbpp_task().tests.cases[:1]
    )
    no_examples = Task("HumanEval/0", PREFIX, add_task().tests, completion_prefix=PREFIX, entry_point="add")
    assert (
        visible_tests(no_examples).source is ExampleSource.NONE and not visible_tests(no_examples).available
    )


def test_without_context_the_prompt_is_the_plain_prompt():
    prompter = Prompter(PromptFormat.COMPLETION)
    assert prompter.with_context(add_task()) == prompter.base(add_task())


def test_completion_repair_prompt_is_comments_then_the_function_prefix():
    text = Prompter(PromptFormat.COMPLETION).with_context(add_task(), [EXAMPLE], [FEEDBACK]).text
    examples, _, rest = text.partition("# Earlier attempts")
    assert "def plus(x, y):\n    return x + y" in examples  # a retrieved example as code
    assert "# Test 1 failed (wrong_answer); input: [2, 3]; expected: 5; got: -1" in rest
    assert "#     return a - b" in rest and "```" not in text
    assert text.endswith("\n\n" + PREFIX)


def test_chat_repair_prompt_is_one_user_message_with_task_program_and_feedback():
    seen = []

    def render(messages):
        seen.append(messages)
        return "<user>" + messages[0]["content"] + "<assistant>"

    text = Prompter(PromptFormat.CHAT, render).with_context(mbpp_task(), [], [FEEDBACK]).text
    content = seen[-1][0]["content"]
    assert len(seen[-1]) == 1 and seen[-1][0]["role"] == "user"
    assert "Write a function to add two numbers." in content  # the task
    assert "```python\ndef add(a, b):\n    return a - b\n```" in content  # the previous program
    assert "got: -1" in content and content.endswith(REPAIR_REQUEST)
    assert text == f"<user>{content}<assistant>"


def test_budget_drops_retrieved_examples_before_the_task():
    words = lambda s: len(s.split())  # noqa: E731
    prompter = Prompter(PromptFormat.COMPLETION, count_tokens=words, budget=words(PREFIX) + 80)
    text = prompter.with_context(add_task(), [EXAMPLE] * 5, [FEEDBACK]).text
    assert text.endswith(PREFIX) and "got: -1" in text and 0 < text.count("def plus") < 5
    short = Prompter(PromptFormat.COMPLETION, count_tokens=words, budget=words(PREFIX) + 30)
    cut = short.with_context(add_task(), [EXAMPLE], [FEEDBACK]).text
    assert "def plus" not in cut and "\n# [...]\n" in cut and cut.endswith(PREFIX)


def test_continuation_leads_match_each_extract_mode():
    prompter = Prompter(PromptFormat.COMPLETION)
    prompt, lead = prompter.continuation(add_task(), PREFIX + "    x = a + b\n")
    assert (prompt.text, lead) == (PREFIX + "    x = a + b\n", "    x = a + b\n")
    assert extract_program(add_task(), lead + "    return x\n", prompt.mode).endswith("    return x\n")
    chat, chat_lead = Prompter(PromptFormat.CHAT).continuation(mbpp_task(), "def add(a, b):\n")
    assert chat_lead == "```python\ndef add(a, b):\n" and chat.text.endswith(chat_lead)
    program = extract_program(mbpp_task(), chat_lead + "    return a + b\n```", ExtractMode.CHAT)
    assert program == "def add(a, b):\n    return a + b\n"
    assert Prompter(PromptFormat.CHAT).continuation(mbpp_task(), "")[1] == ""  # a fresh sample


def test_comment_block_drops_fences():
    assert comment_block("a\n```python\n  b\n```") == "# a\n#   b"
