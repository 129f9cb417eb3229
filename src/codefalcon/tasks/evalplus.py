"""HumanEval+ and MBPP+ (evalplus, Liu et al., 2023) files, with their *base* tests only.

evalplus adds many test inputs (``base_input``, ``plus_input``) but no expected outputs: those
come from running the reference solution (evalplus' ``get_groundtruth``), which is execution,
not loading. So these loaders give the tasks with the original assert tests (HumanEval+'s
``test`` is HumanEval's ``check``; MBPP+'s ``assertion`` holds the fixed MBPP asserts), the
corrected reference solutions, and the extra inputs plus ``atol`` in ``Task.metadata``
(``base_input``, ``plus_input``: lists of argument lists) for a later stage to turn into tests.
"""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path
from typing import Any

from codefalcon.tasks.humaneval import humaneval_task
from codefalcon.tasks.mbpp import mbpp_split, with_test_imports
from codefalcon.tasks.reading import Where, get, iter_jsonl, parse_python
from codefalcon.tasks.record import Task, TestCase, TestStyle, TestSuite


def load_humaneval_plus(path: str | Path) -> list[Task]:
    """The 164 HumanEval+ tasks (e.g. ``HumanEvalPlus-v0.1.10.jsonl.gz``), source ``humaneval_plus``."""
    tasks = []
    for row, where in iter_jsonl(path):
        task = humaneval_task(row, where, "humaneval_plus")
        tasks.append(replace(task, metadata=_plus_inputs(row, where)))
    return tasks


def load_mbpp_plus(path: str | Path) -> list[Task]:
    """The MBPP+ tasks (e.g. ``MbppPlus-v0.2.0.jsonl.gz``, 378 of them), source ``mbpp_plus``.

    Splits follow the original MBPP ids, so the overlap with MBPP's train and validation ids
    (MBPP+ draws on all of them) stays visible to anyone training on MBPP.
    """
    tasks = []
    for row, where in iter_jsonl(path):
        task_id = get(row, "task_id", str, where)
        number = task_id.rpartition("/")[2]
        if not number.isdigit():
            raise where.error("task_id", f"expected 'Mbpp/<number>', got {task_id!r}")
        entry_point = get(row, "entry_point", str, where)
        setup, asserts = _split_asserts(get(row, "assertion", str, where), where)
        tests = TestSuite(TestStyle.ASSERT, asserts, fn_name=entry_point, setup=setup)
        task = Task(
            task_id=task_id,
            prompt=get(row, "prompt", str, where),
            tests=tests,
            source="mbpp_plus",
            entry_point=entry_point,
            solutions=(get(row, "canonical_solution", str, where),),
            example_tests=tests.head(1),
            split=mbpp_split(int(number)),
            metadata=_plus_inputs(row, where),
        )
        tasks.append(task)
    return tasks


def _split_asserts(code: str, where: Where) -> tuple[str, tuple[TestCase, ...]]:
    """Top-level ``assert`` statements become cases; everything else (imports) the setup."""
    try:
        body = parse_python(code).body
    except SyntaxError as error:
        raise where.error("assertion", f"not valid Python ({error.msg})") from None
    setup, cases = [], []
    for node in body:
        source = ast.get_source_segment(code, node) or ""
        (cases if isinstance(node, ast.Assert) else setup).append(source)
    if not cases:
        raise where.error("assertion", "no assert statements")
    return with_test_imports("\n".join(setup), cases), tuple(TestCase(code=code) for code in cases)


def _plus_inputs(row: dict[str, Any], where: Where) -> dict[str, Any]:
    meta = {"atol": get(row, "atol", (int, float), where, default=0)}
    for name in ("base_input", "plus_input"):
        if row.get(name) == {}:  # MBPP+ v0.2.0 writes Mbpp/793's empty plus_input as {}
            meta[name] = []
        else:
            meta[name] = get(row, name, list, where)
    return meta
