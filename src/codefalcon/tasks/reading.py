"""Reading benchmark files: plain or gzipped text, JSON and JSON lines, typed field access.

Shared by every loader so that all of them report a bad file the same way: a `TaskFormatError`
naming the file, the line (jsonl) and the field. A *where* (`Where`) travels with each record so
that a field read deep inside a loader still knows which file and line it came from.
"""

from __future__ import annotations

import ast
import gzip
import json
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from codefalcon.tasks.errors import TaskFormatError

_REQUIRED = object()
_TYPE_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "an object"}


@dataclass(frozen=True)
class Where:
    """The file (and 1-based line, for jsonl) a record came from."""

    path: Path
    line: int | None = None

    def error(self, field: str | None, problem: str) -> TaskFormatError:
        return TaskFormatError(self.path, field, problem, self.line)


def open_text(path: str | Path, mode: str = "rt") -> IO[str]:
    """Open a text file for reading or writing, through gzip when its name ends in ``.gz``."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, mode, encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def iter_jsonl(path: str | Path) -> Iterator[tuple[dict[str, Any], Where]]:
    """Yield each JSON object of a jsonl(.gz) file with its `Where`; blank lines are skipped."""
    path = Path(path)
    with open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = Where(path, number)
            try:
                row = json.loads(line.rstrip())  # so columns count within the line
            except json.JSONDecodeError as error:
                raise where.error(None, f"invalid JSON ({error.msg}, column {error.colno})") from None
            if not isinstance(row, dict):
                raise where.error(None, f"expected a JSON object, got {type(row).__name__}")
            yield row, where


def read_json(path: str | Path) -> Any:
    """Parse a whole JSON file; a syntax error names the file and the line it is on."""
    path = Path(path)
    with open_text(path) as handle:
        text = handle.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        problem = f"invalid JSON ({error.msg}, column {error.colno})"
        raise TaskFormatError(path, None, problem, error.lineno) from None


def get(
    row: dict[str, Any],
    name: str,
    kind: type | tuple[type, ...],
    where: Where,
    default: Any = _REQUIRED,
    prefix: str = "",
) -> Any:
    """``row[name]`` checked to be of ``kind``, or ``default`` when absent (required if none).

    ``None`` is accepted only when ``kind`` includes ``type(None)``. ``bool`` is not an ``int``
    here (JSON ``true`` is not a task id). ``prefix`` gives the dotted path of ``row`` itself
    (``"tests."``) so the error names the field in full.
    """
    if name not in row:
        if default is _REQUIRED:
            raise where.error(prefix + name, "missing")
        return default
    value = row[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise where.error(prefix + name, f"expected {_describe(kinds)}, got {_json_type(value)}")
    return value


def get_strings(row: dict[str, Any], name: str, where: Where, prefix: str = "") -> list[str]:
    """A required list of strings (MBPP ``test_list``, APPS ``solutions.json`` entries)."""
    values = get(row, name, list, where, prefix=prefix)
    for index, value in enumerate(values):
        if not isinstance(value, str):
            field = f"{prefix}{name}[{index}]"
            raise where.error(field, f"expected a string, got {_json_type(value)}")
    return values


PARSE_LOCK = threading.Lock()
"""Held by every ``ast.parse`` in this process. CPython 3.11 keeps the AST constructor's recursion
depth in state shared by all threads, so two threads parsing at once can fail with a spurious
"SystemError: AST constructor recursion depth mismatch" (python/cpython#106905); the executor
parses tests on its threads while callers parse programs."""


def parse_python(source: str) -> ast.Module:
    """``ast.parse`` without the SyntaxWarnings that benchmark code (``"\\d"`` escapes) triggers,
    safe to call from several threads (see `PARSE_LOCK`)."""
    with PARSE_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source)


def _describe(kinds: tuple[type, ...]) -> str:
    names = [_TYPE_NAMES.get(kind, kind.__name__) for kind in kinds if kind is not type(None)]
    text = " or ".join(names)
    return text + " or null" if type(None) in kinds else text


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages a data author understands."""
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
    names |= {dict: "object", type(None): "null"}
    return names.get(type(value), type(value).__name__)
