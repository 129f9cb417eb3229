"""Prompts per benchmark and policy type, and how the answer to each must be read.

Three prompt formats, picked by the policy (`prompt_format`):

- ``completion`` (base causal LMs): the model continues text. Tasks with a ``completion_prefix``
  (HumanEval, synthetic tasks) are continued from the function header and docstring, Codex
  style; MBPP-like tasks get a docstring holding the statement and one example test; APPS-like
  tasks get the APPS/CodeRL ``QUESTION: ... ANSWER:`` layout.
- ``chat`` (the tokenizer has a chat template): one user message asking for a ```python block
  (```cpp, ```java, ```javascript for HumanEval-X tasks in those languages).
- ``qa`` (seq2seq models such as CodeT5): CodeRL's ``\\nQUESTION:\\n...\\nANSWER:\\n`` with
  "Use Standard Input format" or "Use Call-Based format".

The task kind is read from the task's structure, not its ``source`` string, so generic jsonl and
synthetic tasks are prompted like the benchmark they resemble: a ``completion_prefix`` means
"complete this function" (HumanEval), stdio/call tests mean "write a program" (APPS), and
assert tests without a prefix mean "write a function like this example" (MBPP).
"""

from __future__ import annotations

import ast
import builtins
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codefalcon.tasks.reading import parse_python
from codefalcon.tasks.record import Task, TestCase, TestStyle
from codefalcon.tasks.translate import LANGUAGE_NAMES

if TYPE_CHECKING:
    from codefalcon.models.loading import Policy

ChatRenderer = Callable[[list[dict[str, str]]], str]
"""Turns chat messages into the model's prompt text (a tokenizer's chat template)."""


class PromptFormat(str, enum.Enum):
    """How a policy wants to be prompted (see the module docstring)."""

    COMPLETION = "completion"
    CHAT = "chat"
    QA = "qa"


class ExtractMode(str, enum.Enum):
    """How `codefalcon.models.extract.extract_program` reads a model's output.

    - ``completion``: the output continues the prompt text; cut at Codex-style stop sequences.
      With a ``completion_prefix`` it is a function body; otherwise it is a whole program.
    - ``chat``: prose with code in markdown fences (possibly unterminated).
    - ``program``: code, maybe fenced; the whole output is the program.
    """

    COMPLETION = "completion"
    CHAT = "chat"
    PROGRAM = "program"


@dataclass(frozen=True)
class Prompt:
    """The exact text given to the tokenizer, and how to read what comes back."""

    text: str
    """Final prompt text; a chat template, if any, is already applied."""
    mode: ExtractMode
    """How to turn the model's output into a program."""
    stop: tuple[str, ...] = ()
    """Stop sequences: generation ends at the first one in the output (which is cut there)."""


COMPLETION_STOPS = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert", "\n```")
"""Codex's stops for function-body completion: any new top-level statement ends the body."""

FUNCTION_STOPS = ("\nassert", "\nprint(", "\nif __name__", '\n"""', "\n```", "\n[DONE]")
"""Stops for a whole function written from a docstring (MBPP completion prompts): the function
may have helpers (so no ``\\ndef``), but tests, demos and a new docstring end it."""

BRACED_STOPS = {
    "cpp": ("\n```", "\nint main", "\n#include"),
    "java": ("\n```", "\npublic class Main", "\nclass Main"),
    "js": ("\n```", "\nconst test", "\nconsole.log(", "\nmodule.exports"),
}
"""Stops for completing a C++/Java/JavaScript body: a test driver or a fence ends the answer.
Not ``\n}``: a Java body closes its method and then its class; extraction cuts at the brace
that closes what the prompt opened (`codefalcon.models.extract.cut_at_closing_brace`)."""

FENCE_TAGS = {"python": "python", "cpp": "cpp", "java": "java", "js": "javascript"}
"""The markdown fence tag a chat model is asked to use for each language."""

QA_STOPS = ("\nQUESTION:",)
"""A base model prompted APPS-style may start the next question after its answer."""

_BUILTIN_NAMES = frozenset(dir(builtins))
_CALL_FORMAT = "\nUse Call-Based format"
_STDIN_FORMAT = "\nUse Standard Input format"
_FENCE_REQUEST = "Reply with the complete code in one ```python code block."


def prompt_format(policy: Policy) -> PromptFormat:
    """The format a loaded policy expects: qa for seq2seq, chat with a template, else completion."""
    if policy.kind == "seq2seq":
        return PromptFormat.QA
    return PromptFormat.CHAT if policy.is_chat else PromptFormat.COMPLETION


def build_policy_prompt(task: Task, policy: Policy) -> Prompt:
    """`build_prompt` with the policy's format and, for chat models, its chat template."""
    fmt = prompt_format(policy)
    render = chat_template_renderer(policy.tokenizer) if fmt is PromptFormat.CHAT else None
    return build_prompt(task, fmt, render)


def build_prompt(task: Task, fmt: PromptFormat, render_chat: ChatRenderer | None = None) -> Prompt:
    """The prompt for ``task`` in format ``fmt``.

    ``render_chat`` turns the chat messages into text (a tokenizer's chat template); without it
    chat prompts fall back to the bare user message.

    >>> from codefalcon.tasks.record import TestSuite, TestStyle
    >>> task = Task("t/0", "def inc(x):\\n", TestSuite(TestStyle.ASSERT, ()),
    ...             entry_point="inc", completion_prefix="def inc(x):\\n")
    >>> build_prompt(task, PromptFormat.COMPLETION).text
    'def inc(x):\\n'
    """
    fmt = PromptFormat(fmt)
    if fmt is PromptFormat.CHAT:
        messages = chat_messages(task)
        text = render_chat(messages) if render_chat else messages[-1]["content"]
        return Prompt(text, ExtractMode.CHAT)
    if fmt is PromptFormat.QA:
        return Prompt(qa_text(task), ExtractMode.PROGRAM)
    if task.completion_prefix:
        return Prompt(task.completion_prefix, ExtractMode.COMPLETION, completion_stops(task))
    if _is_program_task(task):
        return Prompt(qa_text(task), ExtractMode.PROGRAM, QA_STOPS)
    return Prompt(_docstring_text(task), ExtractMode.PROGRAM, FUNCTION_STOPS)


def completion_stops(task: Task) -> tuple[str, ...]:
    """Stop sequences for continuing the task's ``completion_prefix`` in its language."""
    return BRACED_STOPS.get(task.tests.language, COMPLETION_STOPS)


def chat_messages(task: Task) -> list[dict[str, str]]:
    """The user message asking a chat model for the task's code in a fenced block of its language."""
    language = task.tests.language
    if task.completion_prefix and language != "python":
        tag, name = FENCE_TAGS[language], LANGUAGE_NAMES[language]
        content = (
            f"Complete the following {name} code. Reply with the whole program, including its "
            f"includes or imports and the function signature, in one ```{tag} code block, "
            f"without a main function or tests.\n\n```{tag}\n{task.completion_prefix.strip()}\n```"
        )
    elif task.completion_prefix:
        content = (
            "Complete the following Python function. Reply with the whole function, including "
            "its signature and imports, in one ```python code block.\n\n"
            f"```python\n{task.completion_prefix.strip()}\n```"
        )
    elif _is_program_task(task):
        content = f"{task.prompt.strip()}\n\n"
        if task.starter_code.strip():
            content += f"Use this starter code:\n```python\n{task.starter_code.rstrip()}\n```\n\n"
        if task.tests.style is TestStyle.CALL:
            content += f"Write the function `{function_name(task)}`: it is called with the "
            content += "arguments and its return value is checked. Do not read input. "
        else:
            content += "Write a program that reads from standard input and prints the answer. "
        content += _FENCE_REQUEST
    else:
        content = _mbpp_statement(task) + f"\n\n{_FENCE_REQUEST}"
    return [{"role": "user", "content": content}]


def qa_text(task: Task) -> str:
    """CodeRL's seq2seq prompt: ``\\nQUESTION:\\n{statement}[\\n{starter}]{format}\\nANSWER:\\n``.

    Statement and starter code are used raw, as CodeRL's ``generate_prompt`` reads the files,
    since fine-tuned checkpoints are sensitive to the layout. APPS tasks say "Use Standard Input
    format" or "Use Call-Based format" as CodeRL does; function tasks (HumanEval, MBPP) are
    call-based.
    """
    if task.completion_prefix:
        question = task.completion_prefix
    elif _is_program_task(task):
        question = task.prompt + ("\n" + task.starter_code if task.starter_code else "")
    else:
        question = _mbpp_statement(task)
    is_stdio = task.tests.style is TestStyle.STDIO
    return f"\nQUESTION:\n{question}{_STDIN_FORMAT if is_stdio else _CALL_FORMAT}\nANSWER:\n"


def function_name(task: Task) -> str | None:
    """The function the tests call: entry point, call-style ``fn_name``, or the example's callee.

    MBPP records name no entry point, so the name is read from the first assert test: the first
    called name that is not a builtin (``assert math.isclose(area(2), 4)`` gives ``area``).
    """
    if task.entry_point:
        return task.entry_point
    if task.tests.fn_name:
        return task.tests.fn_name
    case = _example_case(task)
    return _called_function(case.code) if case is not None and case.code else None


def example_test_text(task: Task) -> str:
    """One visible test rendered as code or as an input/output pair ("" if the task has none)."""
    case = _example_case(task)
    if case is None:
        return ""
    if case.code:
        return case.code.strip()
    if task.tests.style is TestStyle.CALL:
        return case.call_assert(function_name(task))
    return f"Input:\n{case.input}\nOutput:\n{case.expected}"


def _mbpp_statement(task: Task) -> str:
    """MBPP paper / FALCON wording: the task, one example test and the function name."""
    text = f"You are an expert Python programmer, and here is your task: {task.prompt.strip()}"
    example = example_test_text(task)
    if example:
        text += f" Your code should pass this test:\n\n{example}"
    name = function_name(task)
    if name:
        text += f"\n\nThe function must be named `{name}`."
    return text


def _docstring_text(task: Task) -> str:
    """A base-model prompt for MBPP-like tasks: a module docstring with statement and example."""
    example = example_test_text(task)
    body = task.prompt.strip() + (f"\n{example}" if example else "")
    return f'"""\n{body}\n"""\n'


def _is_program_task(task: Task) -> bool:
    """APPS-like: the tests feed stdin or call a named function, rather than assert code."""
    return task.tests.style in (TestStyle.STDIO, TestStyle.CALL)


def _example_case(task: Task) -> TestCase | None:
    """The first visible example test, else the first hidden one (MBPP shows one in the prompt)."""
    for suite in (task.example_tests, task.tests):
        if suite is not None and suite.cases:
            return suite.cases[0]
    return None


def _called_function(code: str) -> str | None:
    """First called plain name in ``code`` that is not a builtin (None if it doesn't parse)."""
    try:
        tree = parse_python(code)
    except (SyntaxError, ValueError):
        match = re.search(r"assert\s+(?:not\s+)?\(?\s*([A-Za-z_]\w*)\s*\(", code)
        return match.group(1) if match else None
    for node in ast.walk(tree):
        is_call = isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        if is_call and node.func.id not in _BUILTIN_NAMES:
            return node.func.id
    return None


def chat_template_renderer(tokenizer: Any) -> ChatRenderer:
    """A renderer applying the tokenizer's chat template with the assistant turn opened."""

    def render(messages: list[dict[str, str]]) -> str:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    return render
