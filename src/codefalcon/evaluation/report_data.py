"""Reading a run directory for the report, forgivingly: what exists is read, the rest is a note.

The report is a viewer, so a bad line or a missing file never raises: it is skipped and
described in ``notes`` (shown at the top of the page), and the section says what is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codefalcon.evaluation.report_svg import finite

MAX_TASKS = 2000  # tasks listed in the browser; past this the page gets too heavy to open
MAX_SAMPLES_PER_TASK = 20
MAX_PROGRAM_CHARS = 20_000


@dataclass
class Metrics:
    """``metrics.jsonl`` as columns: ``columns[key][i]`` is the value at ``steps[i]`` or None."""

    steps: list[float]
    columns: dict[str, list[float | None]]


@dataclass
class Evaluation:
    """One evaluation folder (``eval/<name>/``); any of its files may be missing (None)."""

    name: str
    summary: dict[str, Any] | None
    samples_path: Path | None
    results_path: Path | None


@dataclass
class SampleView:
    """One sample as the task browser shows it: the program and what the executor said."""

    completion_id: int
    passed: bool
    verdict: str
    n_tests: int
    tests: list[dict[str, Any]]
    program: str | None = None
    program_kind: str | None = None  # "solution" (whole program) or "completion" (after the prompt)


@dataclass
class TaskViews:
    """Samples per task id in results-file order, and how many were left out (limits)."""

    tasks: dict[str, list[SampleView]] = field(default_factory=dict)
    hidden_tasks: int = 0
    hidden_samples: int = 0


def _json_lines(path: Path, notes: list[str]) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every line holding a JSON object; bad lines become one note."""
    rows, bad = [], []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        notes.append(f"{path}: could not be read ({e.strerror}).")
        return []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad.append(number)
            continue
        if isinstance(record, dict):
            rows.append((number, record))
        else:
            bad.append(number)
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        notes.append(f"{path.name}: skipped {len(bad)} malformed line(s) (line {shown}).")
    return rows


def read_json(path: Path, notes: list[str]) -> dict[str, Any] | None:
    """A JSON object file, or None (with a note) if it is missing, malformed or not an object."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        notes.append(f"{path.name}: could not be read as JSON ({e}).")
        return None
    if not isinstance(value, dict):
        notes.append(f"{path.name}: expected a JSON object, got {type(value).__name__}.")
        return None
    return value


def read_metrics(path: Path, notes: list[str]) -> Metrics | None:
    """Numeric columns of a metrics file by step; lines without a numeric step are skipped.

    Two lines for one step are merged, the later winning (a resumed run rewrites its tail).
    Non-numeric values (strings, lists) are ignored; NaN and inf become gaps.
    """
    if not path.is_file():
        return None
    by_step: dict[float, dict[str, float | None]] = {}
    no_step = 0
    for _, record in _json_lines(path, notes):
        step = finite(record.get("step"))
        if step is None:
            no_step += 1
            continue
        row = by_step.setdefault(step, {})
        for key, value in record.items():
            if key != "step" and (finite(value) is not None or isinstance(value, float)):
                row[key] = finite(value)
    if no_step:
        notes.append(f"{path.name}: skipped {no_step} line(s) without a numeric step.")
    steps = sorted(by_step)
    keys = list(dict.fromkeys(k for s in steps for k in by_step[s]))
    return Metrics(steps, {k: [by_step[s].get(k) for s in steps] for k in keys})


def find_evaluations(run_dir: Path) -> list[Evaluation]:
    """Every ``eval/<name>/`` folder: ``before`` first, ``after`` second, the others by name."""
    root = run_dir / "eval"
    if not root.is_dir():
        return []
    order = {"before": 0, "after": 1}
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: (order.get(p.name, 2), p.name))
    evaluations = []
    for folder in folders:
        notes: list[str] = []  # folder-level problems are reported by the section itself
        summary = read_json(folder / "summary.json", notes)
        samples, results = folder / "samples.jsonl", folder / "results.jsonl"
        evaluations.append(
            Evaluation(
                folder.name,
                summary,
                samples if samples.is_file() else None,
                results if results.is_file() else None,
            )
        )
    return evaluations


def _programs(samples_path: Path, notes: list[str]) -> list[tuple[tuple[str, int], str, str]]:
    """((task id, completion id), program, kind) for each sample line, in file order."""
    out, seen = [], {}
    for _, record in _json_lines(samples_path, notes):
        task_id = str(record.get("task_id"))
        completion_id = seen.get(task_id, 0)
        seen[task_id] = completion_id + 1
        kind = next((k for k in ("solution", "completion") if isinstance(record.get(k), str)), None)
        out.append(((task_id, completion_id), record[kind] if kind else "", kind or "missing"))
    return out


def _view(record: dict[str, Any], completion_id: int) -> SampleView:
    tests = record.get("tests")
    n_tests = record.get("n_tests")
    return SampleView(
        completion_id=completion_id,
        passed=record.get("passed") is True,
        verdict=str(record.get("verdict", "unknown")),
        n_tests=n_tests if isinstance(n_tests, int) else 0,
        tests=[t for t in tests if isinstance(t, dict)] if isinstance(tests, list) else [],
    )


def read_task_views(samples_path: Path | None, results_path: Path, notes: list[str]) -> TaskViews:
    """Join a results file with its samples file into samples per task, within the limits.

    Results come in samples-file order (`write_results`), so equal line counts are joined line
    by line; this also pairs raw ids (MBPP's ``11``) with normalised ones (``Mbpp/11``).
    Otherwise they are joined on (task id, completion id).
    """
    results = [r for _, r in _json_lines(results_path, notes)]
    programs = _programs(samples_path, notes) if samples_path is not None else []
    by_key = {key: (program, kind) for key, program, kind in programs}
    in_order = len(programs) == len(results)
    views = TaskViews()
    counters: dict[str, int] = {}
    for i, record in enumerate(results):
        task_id = str(record.get("task_id"))
        raw_id = record.get("completion_id")
        completion_id = raw_id if isinstance(raw_id, int) else counters.get(task_id, 0)
        counters[task_id] = counters.get(task_id, 0) + 1
        if task_id not in views.tasks and len(views.tasks) >= MAX_TASKS:
            views.hidden_samples += 1
            continue
        samples = views.tasks.setdefault(task_id, [])
        if len(samples) >= MAX_SAMPLES_PER_TASK:
            views.hidden_samples += 1
            continue
        view = _view(record, completion_id)
        found = programs[i][1:] if in_order else by_key.get((task_id, completion_id))
        if found is not None:
            view.program, view.program_kind = found
        samples.append(view)
    views.hidden_tasks = len(counters) - len(views.tasks)
    return views
