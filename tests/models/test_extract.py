"""Program extraction: hand-written edge cases, then real SmolLM2 outputs (data/completions.jsonl)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from codefalcon.models import ExtractMode, extract_program
from codefalcon.models.extract import (
    fenced_blocks,
    remove_top_level_usage,
    repair_body,
    select_code_block,
    trim_trailing_prose,
)
from codefalcon.tasks import Task, TestCase, TestSuite, load_apps, load_humaneval, load_mbpp
from codefalcon.tasks import TestStyle as Style

FIXTURE = Path(__file__).parent / "data" / "completions.jsonl"

# Model code is full of invalid escapes ("\w"); the test's own ast.parse would warn on each.
pytestmark = [
    pytest.mark.filterwarnings("ignore::SyntaxWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

HEADER = 'from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """Sum of xs."""\n'
TASK = Task(
    "t/total",
    HEADER,
    TestSuite(Style.ASSERT, (TestCase(code="check(candidate)"),), fn_name="total"),
    entry_point="total",
    completion_prefix=HEADER,
)
MBPP_TASK = Task(
    "mbpp/1", "Add two numbers.", TestSuite(Style.ASSERT, (TestCase(code="assert add(1, 2) == 3"),))
)
STDIO_TASK = Task(
    "apps/1", "Print the sum.", TestSuite(Style.STDIO, (TestCase(input="1 2\n", expected="3\n"),))
)
FUNCTION = "def total(xs: List[int]) -> int:\n    return sum(xs)\n"


def test_completion_body_is_appended_to_the_prompt() -> None:
    program = extract_program(TASK, "    return sum(xs)\n", ExtractMode.COMPLETION)
    assert program == HEADER + "    return sum(xs)\n"


@pytest.mark.parametrize(
    "stop", ["\ndef helper", "\nclass A:", "\nif __name__", "\nprint(total", "\n# test", "\nassert t"]
)
def test_completion_is_cut_at_codex_stops(stop: str) -> None:
    program = extract_program(TASK, f"    return sum(xs)\n{stop} rest", "completion")
    assert program == HEADER + "    return sum(xs)\n"


def test_indented_stop_words_do_not_cut() -> None:
    body = (
        "    # comment\n    def inner(y):\n        return y\n    print(1)\n    return sum(map(inner, xs))\n"
    )
    assert extract_program(TASK, body, "completion") == HEADER + body


def test_indented_body_with_only_a_nested_def_stays_a_body() -> None:
    body = "    def inner(y):\n        return y\n    total = sum(map(inner, xs))\n"
    assert extract_program(TASK, body, "completion") == HEADER + body


def test_repeated_function_replaces_the_stub_not_appended_twice() -> None:
    program = extract_program(TASK, FUNCTION, "completion")
    assert program == "from typing import List\n\n\n" + FUNCTION
    assert program.count("def total") == 1


def test_chat_fenced_function_keeps_prompt_imports() -> None:
    answer = f"Here is the function:\n\n```python\n{FUNCTION}```\n\nIt adds the numbers up."
    assert extract_program(TASK, answer, "chat") == "from typing import List\n\n\n" + FUNCTION


def test_prompt_helpers_stay_before_the_models_function() -> None:
    prefix = "def helper(x):\n    return x\n\n\ndef main(x):\n    '''Use helper.'''\n"
    task = Task("t/h", prefix, TASK.tests, entry_point="main", completion_prefix=prefix)
    answer = "```python\ndef main(x):\n    return helper(x) + 1\n```"
    program = extract_program(task, answer, "chat")
    assert program == "def helper(x):\n    return x\n\n\ndef main(x):\n    return helper(x) + 1\n"


def test_unterminated_fence_runs_to_the_end() -> None:
    answer = f"Sure! ```python\n{FUNCTION}"
    assert extract_program(TASK, answer, "chat").endswith(FUNCTION)


def test_block_defining_the_entry_point_wins() -> None:
    answer = (
        "Example:\n```python\nprint(total([1, 2]))\n```\nOutput:\n```\n3\n```\n"
        f"Code:\n```python\n{FUNCTION}```\n```python\ndef other():\n    pass\n```"
    )
    assert extract_program(TASK, answer, "chat").endswith(FUNCTION)


def test_first_python_block_when_none_defines_the_name() -> None:
    blocks = fenced_blocks("```bash\npip install x\n```\n```python\nx = 1\n```\n```python\ny = 2\n```")
    assert [tag for tag, _ in blocks] == ["bash", "python", "python"]
    assert select_code_block(blocks, "nothing") == "x = 1\n"
    assert select_code_block(blocks[:1], None) == "pip install x\n"


def test_chat_body_only_is_indented_under_the_header() -> None:
    assert extract_program(TASK, "```python\nreturn sum(xs)\n```", "chat") == HEADER + "    return sum(xs)\n"


def test_chat_body_with_lost_first_indent_is_repaired() -> None:
    body = "total = 0\n    for x in xs:\n        total += x\n    return total"
    program = extract_program(TASK, f"```\n{body}\n```", "chat")
    assert program == HEADER + "    total = 0\n    for x in xs:\n        total += x\n    return total\n"
    ast.parse(program)


def test_indented_fence_contents_are_dedented() -> None:
    answer = (
        f"1. Write it:\n\n   ```python\n   {FUNCTION.replace(chr(10) + '    ', chr(10) + '       ')}   ```"
    )
    assert extract_program(TASK, answer, "chat").endswith(FUNCTION)


def test_chat_without_fences_takes_the_code_span() -> None:
    answer = f"Here's my solution.\n\n{FUNCTION}\nThis runs in linear time."
    assert extract_program(TASK, answer, "chat") == "from typing import List\n\n\n" + FUNCTION


def test_chat_end_markers_and_junk_are_removed() -> None:
    answer = f"```python\n{FUNCTION}```<|im_end|>\n<|im_start|>user\nthanks"
    assert extract_program(TASK, answer, "chat") == "from typing import List\n\n\n" + FUNCTION


def test_demo_code_is_removed_from_function_tasks() -> None:
    answer = (
        "```python\nimport sys\nsys.setrecursionlimit(10000)\nLIMIT = 3\n\n"
        f"{FUNCTION}\n"
        "print(total([1, 2]))\nassert total([]) == 0\nresult = total([5])\n"
        "for x in [[1]]:\n    print(total(x))\n"
        "if __name__ == '__main__':\n    import doctest\n    doctest.testmod()\n"
        "n = int(input())\n```"
    )
    program = extract_program(TASK, answer, "chat")
    assert program == (
        "from typing import List\n\n\nimport sys\nsys.setrecursionlimit(10000)\nLIMIT = 3\n\n" + FUNCTION
    )


def test_stdin_programs_are_kept_whole() -> None:
    code = "a, b = map(int, input().split())\nprint(a + b)\n"
    answer = f"Read the input:\n```python\n{code}```"
    assert extract_program(STDIO_TASK, answer, "chat") == code
    assert extract_program(STDIO_TASK, code + "\nQUESTION:", "program").startswith(code)


def test_stdin_chat_without_fences_starts_at_the_first_code_line() -> None:
    answer = "Solution:\nn = int(input())\nfor _ in range(n):\n    print(n)\nDone, hope it helps!"
    assert (
        extract_program(STDIO_TASK, answer, "chat") == "n = int(input())\nfor _ in range(n):\n    print(n)\n"
    )


def test_mbpp_program_mode_and_done_marker() -> None:
    output = "def add(a, b):\n    return a + b\n[DONE]\nassert add(1, 2) == 3"
    assert extract_program(MBPP_TASK, output, "program") == "def add(a, b):\n    return a + b\n"
    assert extract_program(MBPP_TASK, "[BEGIN]\n" + output, "program") == "def add(a, b):\n    return a + b\n"


def test_broken_output_is_returned_broken() -> None:
    # Truncated by max_new_tokens: no repair that would turn a compile error into a pass.
    truncated = "```python\ndef total(xs: List[int]) -> int:\n    return sum(xs"
    program = extract_program(TASK, truncated, "chat")
    assert program.endswith("    return sum(xs\n")
    with pytest.raises(SyntaxError):
        ast.parse(program)


def test_trim_trailing_prose_stops_at_code() -> None:
    assert trim_trailing_prose("def f(x):\n    return (x\nThe end.") == "def f(x):\n    return (x"
    assert trim_trailing_prose("x = 1\nThis is it.\n") == "x = 1"


def test_repair_body_leaves_unfixable_bodies_alone() -> None:
    assert repair_body(HEADER, "    return (", keep_indent=True) == "    return ("


def test_usage_removal_ignores_unparsable_programs() -> None:
    assert remove_top_level_usage("print(1\n") == "print(1\n"


# ---- real outputs of SmolLM2-135M-Instruct -------------------------------------------------


@pytest.fixture(scope="module")
def fixture_tasks(shared_data: Path) -> dict[str, Task]:
    tasks = {t.task_id: t for t in load_humaneval()}
    tasks |= {t.task_id: t for t in load_mbpp(shared_data / "mbpp.jsonl")}
    tasks |= {t.task_id: t for t in load_apps(shared_data / "apps-samples")}
    return tasks


def fixture_rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def test_fixture_covers_both_benchmarks_and_formats() -> None:
    rows = fixture_rows()
    assert len(rows) >= 80
    assert {r["task_id"].split("/")[0] for r in rows} == {"HumanEval", "Mbpp", "APPS"}
    assert {(r["format"], r["temperature"]) for r in rows} >= {
        ("chat", 0.0),
        ("chat", 0.8),
        ("completion", 0.0),
    }


@pytest.mark.parametrize(
    "row", fixture_rows(), ids=lambda r: f"{r['task_id']}-{r['format']}-{r['temperature']}-{r['sample']}"
)
def test_real_outputs_give_clean_programs(row: dict, fixture_tasks: dict[str, Task]) -> None:
    task = fixture_tasks[row["task_id"]]
    program = extract_program(task, row["completion"], row["mode"])
    assert "```" not in program and "<|im_" not in program
    name = task.entry_point
    written = row["completion"].count(f"def {name}(") if name else 0
    if task.completion_prefix and row["mode"] == "completion" and not written:
        assert program.startswith(task.completion_prefix)
    if name and written:
        # The model wrote the function: it replaces the prompt's stub (never stub + copy), and
        # the program defines it no more often than the model did.
        assert 1 <= program.count(f"def {name}(") <= written, program
    if _parses(program) and task.tests.style is not Style.STDIO:
        tree = ast.parse(program)
        assert not any(isinstance(node, ast.Assert) for node in tree.body)
        assert not any(
            _calls_print(node) for node in tree.body if not isinstance(node, ast.FunctionDef | ast.ClassDef)
        )


def real(task_id: str, fmt: str, temperature: float, sample: int = 0) -> dict:
    return next(
        r
        for r in fixture_rows()
        if (r["task_id"], r["format"], r["temperature"], r["sample"]) == (task_id, fmt, temperature, sample)
    )


def test_real_chat_answer_with_prose(fixture_tasks: dict[str, Task]) -> None:
    row = real("HumanEval/0", "chat", 0.0)
    assert row["completion"].startswith("```python\ndef has_close_elements(")
    assert extract_program(fixture_tasks["HumanEval/0"], row["completion"], "chat") == (
        "from typing import List\n\n\n"
        "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
        "    return any(num - threshold <= 0 for num in numbers)\n"
    )


def test_real_chat_answer_with_demo_code(fixture_tasks: dict[str, Task]) -> None:
    row = real("HumanEval/7", "chat", 0.8, 0)
    assert "print(filter_by_substring(strings, 'a'))" in row["completion"]
    program = extract_program(fixture_tasks["HumanEval/7"], row["completion"], "chat")
    assert "print(" not in program and program.count("def filter_by_substring(") == 1
    assert program.startswith("from typing import List\n\n\ndef filter_by_substring(")
    row = real("Mbpp/19", "chat", 0.8, 1)
    assert "test_duplicate([1, 2, 3, 4, 5]) == False" in row["completion"]
    assert extract_program(fixture_tasks["Mbpp/19"], row["completion"], "chat") == (
        "def test_duplicate(arr):\n    return len(arr) != len(set(arr))\n"
    )


def test_real_completion_that_closes_a_fence_has_no_body(fixture_tasks: dict[str, Task]) -> None:
    row = real("HumanEval/0", "completion", 0.0)
    assert row["completion"].startswith("```\n\nThe function takes")
    task = fixture_tasks["HumanEval/0"]
    assert extract_program(task, row["completion"], "completion") == task.prompt


def test_real_answer_redefining_a_prompt_helper(fixture_tasks: dict[str, Task]) -> None:
    row = real("HumanEval/10", "chat", 0.0)  # repeats is_palindrome, then runs out of tokens
    program = extract_program(fixture_tasks["HumanEval/10"], row["completion"], "chat")
    assert program.count("def is_palindrome(") == 1 and program.startswith("def is_palindrome(")


def test_real_answer_with_another_function_only(fixture_tasks: dict[str, Task]) -> None:
    row = real("HumanEval/38", "chat", 0.8, 1)  # writes encode_cyclic, not decode_cyclic
    task = fixture_tasks["HumanEval/38"]
    program = extract_program(task, row["completion"], "chat")
    assert program.startswith(task.prompt.rstrip("\n") + "\n\n\ndef encode_cyclic(s: str) -> str:")
    ast.parse(program)


def test_real_mbpp_completion_drops_the_demo_call(fixture_tasks: dict[str, Task]) -> None:
    row = real("Mbpp/17", "completion", 0.0)
    assert row["completion"].endswith("\n\nsquare_perimeter(10)")
    assert extract_program(fixture_tasks["Mbpp/17"], row["completion"], "program") == (
        "def square_perimeter(n):\n    return 6 * n\n"
    )


def test_real_outputs_mostly_parse(fixture_tasks: dict[str, Task]) -> None:
    rows = fixture_rows()
    parsed = sum(
        _parses(extract_program(fixture_tasks[r["task_id"]], r["completion"], r["mode"])) for r in rows
    )
    assert parsed / len(rows) >= 0.7, f"only {parsed}/{len(rows)} extracted programs parse"


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def _calls_print(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"
        for n in ast.walk(node)
    )
