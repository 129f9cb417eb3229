"""APPS example tests: the input/output pairs shown in the problem statements of the test split.

CodeRL extracted them (``apps_test_example_tests.jsonl``: ``problem_id``, ``inputs``,
``outputs``) to filter and repair samples at inference time without touching the hidden tests.
They are stdin/stdout text. For call-based problems (LeetCode, Codewars) the text is what the
statement shows, e.g. input ``" k = 3, n = 7\\n"`` and output ``" [[1,2,4]]\\nExplanation: ..."``,
so `as_call_suite` turns it into arguments and a return value, and drops what it cannot parse.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from codefalcon.tasks.reading import get, iter_jsonl, parse_python
from codefalcon.tasks.record import TestCase, TestStyle, TestSuite

_JSON_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False}
_JSON_NAMES |= {"None": None}


def load_apps_example_tests(path: str | Path) -> dict[int, TestSuite]:
    """Stdin/stdout example suites by APPS test-split problem id (``0001`` is 1).

    Lines with only a ``problem_id`` (63 of the 5,000: no example was found in the statement)
    are left out, as are lines whose lists are empty.
    """
    suites = {}
    for row, where in iter_jsonl(path):
        number = get(row, "problem_id", int, where)
        if "inputs" not in row and "outputs" not in row:
            continue
        inputs = get(row, "inputs", list, where)
        outputs = get(row, "outputs", list, where)
        if len(inputs) != len(outputs):
            problem = f"{len(outputs)} outputs for {len(inputs)} inputs"
            raise where.error("outputs", problem)
        for name, values in (("inputs", inputs), ("outputs", outputs)):
            for index, value in enumerate(values):
                if not isinstance(value, str):
                    raise where.error(f"{name}[{index}]", "expected a string")
        cases = tuple(TestCase(input=i, expected=o) for i, o in zip(inputs, outputs, strict=True))
        if cases:
            suites[number] = TestSuite(TestStyle.STDIO, cases)
    return suites


def shown_in(statement: str, examples: TestSuite) -> bool:
    """Whether every example input and output occurs in ``statement`` (whitespace ignored)."""
    text = _squash(statement)
    return all(_squash(c.input) in text and _squash(c.expected) in text for c in examples.cases)


def _squash(text: str) -> str:
    return "".join(text.split())


def as_call_suite(examples: TestSuite, fn_name: str) -> TestSuite | None:
    """Statement examples of a call-based problem as a ``call`` suite, or None if none parse.

    A case is kept only if its input reads as an argument list and its output as a value; a case
    that cannot be read is dropped rather than guessed, since a wrong example test would send
    correct programs to repair.

    >>> case = TestCase(input=" k = 3, n = 7\\n", expected=" [[1,2,4]]\\nExplanation: ...")
    >>> as_call_suite(TestSuite(TestStyle.STDIO, (case,)), "f").cases
    (TestCase(input=[3, 7], expected=[[1, 2, 4]], code=''),)
    """
    cases = []
    for case in examples.cases:
        args = parse_arguments(case.input)
        expected = parse_value(case.expected)
        if args is not None and expected is not _UNREADABLE:
            cases.append(TestCase(input=args, expected=expected))
    return TestSuite(TestStyle.CALL, tuple(cases), fn_name=fn_name) if cases else None


def parse_arguments(text: str) -> list[Any] | None:
    """Positional arguments from statement text: ``"[1,2], 3"``, ``"nums = [1,2], k = 3"`` or
    one argument per line; keyword names are dropped, their order kept. None if unreadable.
    """
    text = text.replace("\xa0", " ").strip()
    for attempt in (text, ", ".join(line for line in text.splitlines() if line.strip())):
        call = _parse(f"f({attempt})")
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
            continue  # not an argument list (or text like "1)(2" that closes our call)
        nodes = [*call.args, *(keyword.value for keyword in call.keywords)]
        if any(isinstance(node, ast.Starred) for node in nodes) or any(
            keyword.arg is None for keyword in call.keywords
        ):
            return None
        values = [_literal(node) for node in nodes]
        return None if _UNREADABLE in values else values
    return None


def parse_value(text: str) -> Any:
    """A return value from statement text, cutting an ``Explanation:`` and a final full stop."""
    text = text.replace("\xa0", " ").split("Explanation")[0].strip()
    for attempt in (text, text.removesuffix(".").strip()):
        node = _parse(attempt)
        if node is not None:
            return _literal(node)
    return _UNREADABLE


class _Unreadable:
    """Marks text that is not a literal (``None`` is a legitimate parsed value)."""

    def __repr__(self) -> str:
        return "<unreadable>"


_UNREADABLE = _Unreadable()


def _parse(text: str) -> ast.expr | None:
    """The expression ``text`` holds, or None (bad syntax, null bytes, absurd nesting)."""
    try:
        body = parse_python(text).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return body[0].value if len(body) == 1 and isinstance(body[0], ast.Expr) else None


def _literal(node: ast.AST) -> Any:
    """``ast.literal_eval`` that also reads JSON's ``true``/``false``/``null``."""
    node = _JsonNames().visit(node)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _UNREADABLE


class _JsonNames(ast.NodeTransformer):
    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _JSON_NAMES:
            return ast.copy_location(ast.Constant(_JSON_NAMES[node.id]), node)
        return node
