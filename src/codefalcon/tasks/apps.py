"""APPS (Hendrycks et al., 2021): one folder per problem, as in the original release.

A folder (``0001``) holds ``question.txt`` (the statement), ``input_output.json`` (``inputs``,
``outputs`` and, for call-based problems, ``fn_name``), ``solutions.json`` (reference programs,
may be missing), ``metadata.json`` (``difficulty``: introductory, interview or competition) and
optionally ``starter_code.py``. The full release has ``train/`` and ``test/`` folders of 5,000
problems each, numbered from ``0000`` in both; either that root or a folder of problem folders
can be loaded.

Task ids: ``APPS/<n>`` for test-split problems (``0001`` is ``APPS/1``, the numbering every APPS
result uses) and ``APPS/train/<n>`` for train-split ones, because the two splits reuse the same
numbers for different problems and a task id must name one problem.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from codefalcon.tasks.apps_examples import as_call_suite, load_apps_example_tests, shown_in
from codefalcon.tasks.reading import Where, get, open_text, read_json
from codefalcon.tasks.record import Task, TestCase, TestStyle, TestSuite

log = logging.getLogger(__name__)

AppsSplit = Literal["train", "test"]
SPLITS = ("train", "test")
DIFFICULTIES = ("introductory", "interview", "competition")


# APPS' own harness runs every program after these imports (testing_util.py), and reference
# solutions rely on them (e.g. `List` in LeetCode-style signatures). numpy is left out: the
# sandbox's Python has no third-party packages.
APPS_PRELUDE = (
    "import sys, time, itertools, collections, math, fractions, random, heapq\n"
    "from itertools import accumulate, product, permutations, combinations\n"
    "from collections import Counter, OrderedDict, deque, defaultdict, ChainMap\n"
    "from functools import lru_cache\n"
    "from math import sqrt, sin, cos, tan, ceil, fabs, floor, gcd, exp, log, log2\n"
    "from typing import List, Tuple\n"
    "from heapq import *\n"
)


def load_apps(
    root: str | Path,
    split: AppsSplit | None = None,
    example_tests: str | Path | None = None,
    difficulties: Collection[str] | None = None,
    limit: int | None = None,
    allow_no_tests: bool = False,
) -> list[Task]:
    """APPS tasks in problem-number order.

    ``root`` is either a release root with ``train/`` and ``test/`` (``split`` picks one, None
    both) or a folder of problem folders, whose split is ``split``, else the folder's own name
    when it is ``train`` or ``test``, else ``test`` (so unknown problems are never trained on).
    ``example_tests``: CodeRL's ``apps_test_example_tests.jsonl``, attached to test-split tasks.
    ``difficulties`` keeps only those levels; ``limit`` stops after that many tasks.
    A problem without tests (no ``input_output.json``, or no cases) is an error unless
    ``allow_no_tests``, which skips it and logs how many were skipped.
    """
    if difficulties is not None and not set(difficulties) <= set(DIFFICULTIES):
        raise ValueError(f"unknown APPS difficulty in {sorted(difficulties)}; use {DIFFICULTIES}")
    examples = load_apps_example_tests(example_tests) if example_tests is not None else {}
    tasks: list[Task] = []
    skipped = unmatched = 0
    for folder, folder_split in problem_folders(Path(root), split):
        if limit is not None and len(tasks) >= limit:
            break
        meta = _read_metadata(folder)
        if difficulties is not None and meta.get("difficulty") not in difficulties:
            continue
        task = load_apps_problem(folder, folder_split, meta, allow_no_tests)
        if task is None:
            skipped += 1
            continue
        shown = examples.get(int(folder.name)) if folder_split == "test" else None
        if shown is not None:
            task = replace(task, example_tests=examples_for(task, shown))
            unmatched += task.example_tests is None
        tasks.append(task)
    if skipped:
        log.warning("skipped %d APPS problems without tests under %s", skipped, root)
    if unmatched:
        log.warning("%d APPS example suites left off: not in the statement or unreadable", unmatched)
    return tasks


def problem_folders(root: Path, split: str | None) -> list[tuple[Path, str]]:
    """``(folder, split)`` for each numbered problem folder, test after train, in number order."""
    if split not in (None, *SPLITS):
        raise ValueError(f"unknown APPS split {split!r}; use 'train' or 'test'")
    if not root.is_dir():
        raise FileNotFoundError(f"APPS folder not found: {root}")
    if any((root / name).is_dir() for name in SPLITS):
        chosen = [split] if split else [name for name in SPLITS if (root / name).is_dir()]
        if not (root / chosen[0]).is_dir():
            raise FileNotFoundError(f"no {chosen[0]}/ folder in {root}")
        return [(folder, name) for name in chosen for folder in _numbered(root / name)]
    if split and root.name in SPLITS and root.name != split:
        raise ValueError(f"{root} is the {root.name} split, not {split}")
    label = split or (root.name if root.name in SPLITS else "test")
    return [(folder, label) for folder in _numbered(root)]


def load_apps_problem(
    folder: Path, split: str, meta: dict[str, Any], allow_no_tests: bool = False
) -> Task | None:
    """One problem folder as a `Task` (None if it has no tests and ``allow_no_tests``)."""
    tests = _read_tests(folder, allow_no_tests)
    if tests is None:
        return None
    number = int(folder.name)
    question = folder / "question.txt"
    if not question.is_file():
        raise Where(question).error("prompt", "file is missing (the problem statement)")
    starter = folder / "starter_code.py"
    return Task(
        task_id=f"APPS/{number}" if split == "test" else f"APPS/{split}/{number}",
        prompt=_read_text(question),
        tests=tests,
        source="apps",
        entry_point=tests.fn_name,
        starter_code=_read_text(starter) if starter.is_file() else "",
        solutions=_read_solutions(folder / "solutions.json"),
        split=split,
        difficulty=meta.get("difficulty"),
        metadata={**meta, "program_prelude": APPS_PRELUDE},
    )


def _read_tests(folder: Path, allow_missing: bool) -> TestSuite | None:
    """``input_output.json`` as a call suite (with ``fn_name``) or a stdio suite."""
    path = folder / "input_output.json"
    if not path.is_file():
        if allow_missing:
            return None
        raise Where(path).error("tests", "file is missing (pass allow_no_tests=True to skip)")
    data, where = read_json(path), Where(path)
    if not isinstance(data, dict):
        raise where.error(None, "expected a JSON object with inputs and outputs")
    inputs, outputs = get(data, "inputs", list, where), get(data, "outputs", list, where)
    fn_name = get(data, "fn_name", (str, type(None)), where, default=None)
    if len(inputs) != len(outputs):
        raise where.error("outputs", f"{len(outputs)} outputs for {len(inputs)} inputs")
    if not inputs:
        if allow_missing:
            return None
        raise where.error("inputs", "no test cases (pass allow_no_tests=True to skip)")
    if fn_name is not None:
        for index, args in enumerate(inputs):
            if not isinstance(args, list):
                raise where.error(f"inputs[{index}]", "expected a list of arguments")
        cases = tuple(TestCase(input=i, expected=o) for i, o in zip(inputs, outputs, strict=True))
        return TestSuite(TestStyle.CALL, cases, fn_name=fn_name)
    texts = [
        TestCase(input=_text(i, where, f"inputs[{n}]"), expected=_text(o, where, f"outputs[{n}]"))
        for n, (i, o) in enumerate(zip(inputs, outputs, strict=True))
    ]
    return TestSuite(TestStyle.STDIO, tuple(texts))


def _text(value: Any, where: Where, field: str) -> str:
    """A stdio input or output: a string, or a list of lines (APPS has both) joined by newlines."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "\n".join(value)
    raise where.error(field, "expected a string or a list of strings")


def _read_metadata(folder: Path) -> dict[str, Any]:
    path = folder / "metadata.json"
    if not path.is_file():
        return {}
    meta = read_json(path)
    if not isinstance(meta, dict):
        raise Where(path).error(None, "expected a JSON object")
    get(meta, "difficulty", (str, type(None)), Where(path), default=None)  # type check only
    return meta


def _read_solutions(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        return ()
    solutions = read_json(path)
    if not isinstance(solutions, list):
        raise Where(path).error(None, "expected a JSON list of programs")
    for index, program in enumerate(solutions):
        if not isinstance(program, str):
            raise Where(path).error(f"[{index}]", "expected a program as a string")
    return tuple(solutions)


def examples_for(task: Task, examples: TestSuite) -> TestSuite | None:
    """The statement examples to attach to ``task``, or None if they are not its own.

    The example file is keyed by number only, so a test-split file applied to train-split
    folders (or a mislabelled folder) would attach another problem's examples: they are kept only
    if every input and output appears in the task's statement, where they were extracted from.
    For a call-based task they are read as arguments and return values.
    """
    if not shown_in(task.prompt, examples):
        return None
    if task.tests.style is TestStyle.CALL and task.tests.fn_name is not None:
        return as_call_suite(examples, task.tests.fn_name)
    return examples


def _numbered(folder: Path) -> list[Path]:
    """Problem folders (named by digits) in number order; other entries are ignored."""
    found = [path for path in folder.iterdir() if path.is_dir() and path.name.isdigit()]
    return sorted(found, key=lambda path: int(path.name))


def _read_text(path: Path) -> str:
    with open_text(path) as handle:
        return handle.read()
