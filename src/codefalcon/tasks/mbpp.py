"""MBPP (Austin et al., 2021): the original jsonl of 974 problems and the sanitized subset.

Each problem is an English sentence, a reference program and three ``assert f(...) == ...``
lines. The function name appears only in the asserts, which is why the first one is also given
as ``example_tests``: CodeRL and FALCON show it to the model so it knows what to call the function.

Splits follow the task ids (the paper's section 2.1): 1-10 few-shot prompt examples, 11-510 test,
511-600 validation, 601-974 train. The sanitized file and MBPP+ keep the original ids.
"""

from __future__ import annotations

import ast
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from codefalcon.tasks.reading import Where, get, get_strings, iter_jsonl, parse_python, read_json
from codefalcon.tasks.record import Task, TestCase, TestStyle, TestSuite

MbppSplit = Literal["test", "train", "validation", "prompt", "all"]
SPLITS = ("prompt", "test", "validation", "train")


def mbpp_split(number: int) -> str:
    """The split of MBPP task ``number`` (its integer id)."""
    if number <= 10:
        return "prompt"
    if number <= 510:
        return "test"
    return "validation" if number <= 600 else "train"


def load_mbpp(
    path: str | Path, split: MbppSplit | None = None, include_challenge: bool = False
) -> list[Task]:
    """Tasks of the original ``mbpp.jsonl``, all of them when ``split`` is None or ``"all"``.

    ``include_challenge`` appends the ``challenge_test_list`` asserts (11 problems have them) to
    the hidden tests. ``test_setup_code`` becomes the suite's trusted setup: for tasks 367 and
    927 it builds a tree from a ``Node`` class that the *program* defines.
    """
    _check_split(split)
    tasks = []
    for row, where in iter_jsonl(path):
        number = get(row, "task_id", int, where)
        if split not in (None, "all") and mbpp_split(number) != split:
            continue
        asserts = get_strings(row, "test_list", where)
        if include_challenge:
            asserts = asserts + get_strings(row, "challenge_test_list", where)
        code = get(row, "code", str, where)
        setup = get(row, "test_setup_code", str, where, default="")
        text = get(row, "text", str, where)
        tasks.append(mbpp_task(number, text, code, asserts, setup, where, "mbpp"))
    return tasks


def load_mbpp_sanitized(path: str | Path, split: MbppSplit | None = None) -> list[Task]:
    """Tasks of ``sanitized-mbpp.json`` (427 hand-checked problems, a JSON list, same ids).

    Its ``test_imports`` (e.g. ``import math`` for ``math.isclose`` asserts) become the setup.
    """
    _check_split(split)
    path = Path(path)
    rows = read_json(path)
    if not isinstance(rows, list):
        raise Where(path).error(None, "expected a JSON list of problems")
    tasks = []
    for index, row in enumerate(rows):
        where, prefix = Where(path), f"[{index}]."
        if not isinstance(row, dict):
            raise where.error(f"[{index}]", "expected an object")
        number = get(row, "task_id", int, where, prefix=prefix)
        if split not in (None, "all") and mbpp_split(number) != split:
            continue
        asserts = get_strings(row, "test_list", where, prefix=prefix)
        setup = "\n".join(get_strings(row, "test_imports", where, prefix=prefix))
        code = get(row, "code", str, where, prefix=prefix)
        text = get(row, "prompt", str, where, prefix=prefix)
        task = mbpp_task(number, text, code, asserts, setup, where, "mbpp_sanitized", prefix)
        tasks.append(task)
    return tasks


def mbpp_task(
    number: int,
    text: str,
    code: str,
    asserts: list[str],
    setup: str,
    where: Where,
    source: str,
    prefix: str = "",
) -> Task:
    """One MBPP problem: one assert test case per line, the first one also as the example."""
    code, setup = _unix(code), _unix(setup)
    if not asserts:
        raise where.error(prefix + "test_list", "no tests")
    fn_name = entry_point_of(code, asserts[0], where, prefix)
    setup = with_test_imports(setup, asserts)
    cases = tuple(TestCase(code=_unix(line)) for line in asserts)
    tests = TestSuite(TestStyle.ASSERT, cases, fn_name=fn_name, setup=setup)
    return Task(
        task_id=f"Mbpp/{number}",
        prompt=text,
        tests=tests,
        source=source,
        entry_point=fn_name,
        solutions=(code,),
        example_tests=tests.head(1),
        split=mbpp_split(number),
    )


def entry_point_of(code: str, first_assert: str, where: Where, prefix: str = "") -> str:
    """The function the tests exercise: the first one called in ``first_assert`` that ``code``
    defines, else ``code``'s first top-level function.

    >>> entry_point_of("def h(x): ...\\ndef f(x): ...", "assert f(1) == 2", Where(Path("x")))
    'f'
    """
    try:
        defined = [node for node in parse_python(code).body if isinstance(node, _DEFS)]
    except SyntaxError as error:
        raise where.error(prefix + "code", f"not valid Python ({error.msg})") from None
    try:
        test = parse_python(first_assert)
    except SyntaxError as error:
        raise where.error(prefix + "test_list[0]", f"not valid Python ({error.msg})") from None
    names = {node.name for node in defined}
    for node in ast.walk(test):  # breadth first: the outermost call comes first
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
            return node.func.id
    functions = [node.name for node in defined if not isinstance(node, ast.ClassDef)]
    if not functions:
        raise where.error(prefix + "code", "defines no top-level function")
    return functions[0]


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def with_test_imports(setup: str, tests: Sequence[str]) -> str:
    """``setup`` preceded by ``import m`` for each standard module the tests use but do not import.

    MBPP's harness ran the asserts in the program's own namespace, so ``sys.getsizeof`` (task
    596) or ``math.isclose`` (MBPP+ 120) worked through the *program's* imports. Here tests run in
    a separate process that sees only the program's functions, so it imports those modules itself.

    >>> with_test_imports("", ["assert math.isclose(f(1), 2.0)"])
    'import math'
    """
    bound = set()
    with contextlib.suppress(SyntaxError):
        for node in ast.walk(parse_python(setup)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                bound |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    needed: list[str] = []
    for code in tests:
        with contextlib.suppress(SyntaxError):
            for node in ast.walk(parse_python(code)):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    name = node.value.id
                    if name in sys.stdlib_module_names and name not in bound | set(needed):
                        needed.append(name)
    return "\n".join([*(f"import {name}" for name in needed), *([setup] if setup else [])])


def _check_split(split: str | None) -> None:
    if split not in (None, "all", *SPLITS):
        raise ValueError(f"unknown MBPP split {split!r}; choose one of {', '.join(SPLITS)}, all")


def _unix(text: str) -> str:
    """MBPP's programs have Windows line endings; the executor and the AST tools want ``\\n``."""
    return text.replace("\r\n", "\n")
