"""The project's own task format: one JSON object per line, one `Task` per object.

Any benchmark converted to this format (and the procedural generator's output) loads with one
function and round-trips exactly: ``load_tasks_jsonl(p) == tasks`` after
``save_tasks_jsonl(tasks, p)``. The format is documented with an example in ``docs/tasks.md``.
Test values (``input``, ``expected``) and ``metadata`` must be JSON data: a tuple would come back
as a list, so saving refuses it instead of changing the task.
"""

from __future__ import annotations

import gzip
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any, BinaryIO

from codefalcon.tasks.reading import Where, get, get_strings, iter_jsonl
from codefalcon.tasks.record import Task, TestCase, TestStyle, TestSuite

TASK_KEYS = tuple(f.name for f in fields(Task))
SUITE_KEYS = ("style", "cases", "fn_name", "setup", "language")
CASE_KEYS = ("input", "expected", "code")
_NONE = type(None)


def load_tasks_jsonl(path: str | Path) -> list[Task]:
    """Every task of a jsonl(.gz) file; a malformed line raises `TaskFormatError` (file, line, field)."""
    return [task_from_dict(row, where) for row, where in iter_jsonl(path)]


def save_tasks_jsonl(tasks: Iterable[Task], path: str | Path) -> None:
    """Write ``tasks`` to ``path`` (gzipped if it ends in ``.gz``), atomically.

    The lines go to a temporary file beside ``path`` that replaces it only once complete and
    flushed to disk, so a crash leaves the old file or the new one, never half of one. Each line
    is checked as `load_tasks_jsonl` would check it, so what is saved can always be loaded.
    """
    path = Path(path)
    lines = []
    for number, task in enumerate(tasks, start=1):
        row = task_to_dict(task)
        problem = _non_json(row, "")
        if problem:
            raise ValueError(f"task {task.task_id!r}: {problem}; convert it to JSON data first")
        task_from_dict(row, Where(path, number))
        lines.append(json.dumps(row) + "\n")
    _write_atomically(path, "".join(lines).encode("utf-8"))


def task_to_dict(task: Task) -> dict[str, Any]:
    """``task`` as a JSON-ready dict with every field, in the record's field order."""
    row = {name: getattr(task, name) for name in TASK_KEYS}
    row["tests"] = suite_to_dict(task.tests)
    row["solutions"] = list(task.solutions)
    row["example_tests"] = suite_to_dict(task.example_tests) if task.example_tests else None
    row["metadata"] = dict(task.metadata)
    return row


def suite_to_dict(suite: TestSuite) -> dict[str, Any]:
    """A suite as a dict; each case lists only its fields that differ from the defaults.

    ``language`` is written only when it is not Python, so Python task files keep the bytes
    they had before suites had a language.
    """
    blank = TestCase()
    cases = [
        {key: getattr(case, key) for key in CASE_KEYS if getattr(case, key) != getattr(blank, key)}
        for case in suite.cases
    ]
    row = {"style": suite.style.value, "cases": cases, "fn_name": suite.fn_name, "setup": suite.setup}
    if suite.language != "python":
        row["language"] = suite.language
    return row


def task_from_dict(row: dict[str, Any], where: Where) -> Task:
    """One parsed line as a `Task`; unknown keys are errors (they are usually misspellings)."""
    _no_unknown_keys(row, TASK_KEYS, where, "")
    example = get(row, "example_tests", (dict, _NONE), where, default=None)
    return Task(
        task_id=get(row, "task_id", str, where),
        prompt=get(row, "prompt", str, where),
        tests=suite_from_dict(get(row, "tests", dict, where), where, "tests."),
        source=get(row, "source", str, where, default=""),
        entry_point=get(row, "entry_point", (str, _NONE), where, default=None),
        starter_code=get(row, "starter_code", str, where, default=""),
        completion_prefix=get(row, "completion_prefix", str, where, default=""),
        solutions=tuple(get_strings(row, "solutions", where)) if "solutions" in row else (),
        example_tests=None if example is None else suite_from_dict(example, where, "example_tests."),
        split=get(row, "split", str, where, default="test"),
        difficulty=get(row, "difficulty", (str, _NONE), where, default=None),
        metadata=dict(get(row, "metadata", dict, where, default={})),
    )


def suite_from_dict(data: dict[str, Any], where: Where, prefix: str) -> TestSuite:
    """A `TestSuite`, checking each case has what its style needs (see `_check_case`)."""
    _no_unknown_keys(data, SUITE_KEYS, where, prefix)
    style_name = get(data, "style", str, where, prefix=prefix)
    try:
        style = TestStyle(style_name)
    except ValueError:
        styles = ", ".join(s.value for s in TestStyle)
        raise where.error(prefix + "style", f"unknown style {style_name!r}; use {styles}") from None
    fn_name = get(data, "fn_name", (str, _NONE), where, default=None, prefix=prefix)
    if style is TestStyle.CALL and fn_name is None:
        raise where.error(prefix + "fn_name", "required for call-style tests")
    cases = []
    for index, case in enumerate(get(data, "cases", list, where, prefix=prefix)):
        field = f"{prefix}cases[{index}]"
        if not isinstance(case, dict):
            raise where.error(field, "expected an object with input, expected and/or code")
        _no_unknown_keys(case, CASE_KEYS, where, field + ".")
        cases.append(_check_case(case, style, where, field + "."))
    setup = get(data, "setup", str, where, default="", prefix=prefix)
    language = get(data, "language", str, where, default="python", prefix=prefix)
    try:
        return TestSuite(style, tuple(cases), fn_name=fn_name, setup=setup, language=language)
    except ValueError as error:  # a language we do not run, or one with a Python-only style
        raise where.error(prefix + "language", str(error)) from None


def _check_case(case: dict[str, Any], style: TestStyle, where: Where, prefix: str) -> TestCase:
    """stdio: ``input`` and ``expected`` strings; call: ``input`` a list of arguments,
    ``expected`` any value (null is a return value too); assert and program: ``code`` a
    non-empty string."""
    if style is TestStyle.STDIO:
        get(case, "input", str, where, prefix=prefix)
        get(case, "expected", str, where, prefix=prefix)
    elif style is TestStyle.CALL:
        get(case, "input", list, where, prefix=prefix)
    elif not get(case, "code", str, where, prefix=prefix).strip():
        raise where.error(prefix + "code", "empty test code")
    code = get(case, "code", str, where, default="", prefix=prefix)
    return TestCase(input=case.get("input"), expected=case.get("expected"), code=code)


def _no_unknown_keys(row: dict[str, Any], known: tuple[str, ...], where: Where, prefix: str) -> None:
    unknown = [key for key in row if key not in known]
    if unknown:
        raise where.error(prefix + unknown[0], f"unknown field; expected some of {', '.join(known)}")


def _non_json(value: Any, field: str) -> str | None:
    """Where ``value`` holds something JSON would not give back unchanged, or None."""
    if value is None or isinstance(value, str | bool | int | float):
        return None
    if isinstance(value, list):
        items = ((f"{field}[{i}]", item) for i, item in enumerate(value))
    elif isinstance(value, dict):
        if any(not isinstance(key, str) for key in value):
            return f"field {field!r} has a key that is not a string"
        items = ((f"{field}.{key}" if field else key, item) for key, item in value.items())
    else:
        return f"field {field!r} holds a {type(value).__name__}, which is not JSON data"
    return next((p for name, item in items if (p := _non_json(item, name))), None)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` (gzipped for ``.gz``) to a temporary file, fsync it, rename it over ``path``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as raw:
            _write(raw, data, zipped=path.suffix == ".gz")
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def _write(raw: BinaryIO, data: bytes, zipped: bool) -> None:
    if not zipped:
        raw.write(data)
        return
    # No name or time in the header: the same tasks always give the same bytes.
    with gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as stream:
        stream.write(data)
