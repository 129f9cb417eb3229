"""What ``codefalcon memory {add,search,stats,export}`` do, as functions returning printable data.

The CLI parses options, loads tasks, calls one of these and prints the returned dict (or JSON).
Samples and results files are read here with a few lines rather than through
`codefalcon.evaluation`, which sits above memory in the dependency order.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from codefalcon.execution.result import ExecutionResult
from codefalcon.memory.embed import load_embedder
from codefalcon.memory.record import NO_FILTER, Attempt, ExampleFilter
from codefalcon.memory.store import LongTermMemory
from codefalcon.tasks.record import Task


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line of a JSONL(.gz) file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{number}: malformed JSON ({e.msg})") from None


def attempts_from_results(
    tasks: Mapping[str, Task] | Sequence[Task],
    samples: str | Path,
    results: str | Path,
    *,
    model_step: int | None = None,
) -> list[Attempt]:
    """Attempts from a samples JSONL and the results JSONL that ``codefalcon evaluate`` wrote.

    Lines pair up in order (the results file follows the samples file); each results line gives
    the normalised ``task_id``, so raw ids in the samples file (MBPP's ``11``) need no mapping.
    A sample's program is its ``solution``, or the task's prefix plus its ``completion``.
    Optional sample keys ``prompt``, ``rewards``, ``judge_scores`` and ``model_step`` are kept.
    """
    by_id = dict(tasks) if isinstance(tasks, Mapping) else {t.task_id: t for t in tasks}
    samples, results = Path(samples), Path(results)
    sample_rows, result_rows = list(_records(samples)), list(_records(results))
    if len(sample_rows) != len(result_rows):
        n_s, n_r = len(sample_rows), len(result_rows)
        raise ValueError(f"{samples} has {n_s} samples but {results} has {n_r} results")
    attempts = []
    for (s_line, s), (r_line, r) in zip(sample_rows, result_rows, strict=True):
        tid = r.get("task_id")
        if tid not in by_id:
            raise ValueError(f"{results}:{r_line}: task_id {tid!r} is not among the {len(by_id)} tasks given")
        task = by_id[tid]
        if "solution" in s:
            program = s["solution"]
        elif "completion" in s:
            program = task.program_from_completion(s["completion"])
        else:
            raise ValueError(f'{samples}:{s_line}: field "completion" or "solution" is missing')
        step = s.get("model_step", model_step)
        attempt = Attempt.from_execution(
            task,
            program,
            ExecutionResult.from_dict(r),
            prompt=s.get("prompt", ""),
            rewards=s.get("rewards"),
            judge_scores=s.get("judge_scores"),
            model_step=step,
        )
        attempts.append(attempt)
    return attempts


def read_attempts(path: str | Path) -> list[Attempt]:
    """Attempts from a JSONL of `Attempt.to_dict` records (what `export_main` writes)."""
    path = Path(path)
    out = []
    for number, d in _records(path):
        try:
            out.append(Attempt.from_dict({k: v for k, v in d.items() if k != "id"}))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}:{number}: not an attempt record ({e})") from None
    return out


def add_main(
    store: str | Path,
    attempts: Sequence[Attempt] | None = None,
    *,
    tasks: Mapping[str, Task] | Sequence[Task] | None = None,
    samples: str | Path | None = None,
    results: str | Path | None = None,
    attempts_file: str | Path | None = None,
    embedder: str | None = None,
    model_step: int | None = None,
) -> dict[str, Any]:
    """Add attempts given directly, from ``attempts_file`` (exported JSONL), or from ``samples`` +
    ``results`` of ``codefalcon evaluate`` (which need ``tasks``). Returns counts to print."""
    batch = list(attempts or [])
    if attempts_file is not None:
        batch += read_attempts(attempts_file)
    if samples is not None or results is not None:
        if samples is None or results is None or tasks is None:
            raise ValueError("adding from evaluation needs the samples file, its results file and the tasks")
        batch += attempts_from_results(tasks, samples, results, model_step=model_step)
    with LongTermMemory(store, load_embedder(embedder) if embedder else None) as mem:
        before = mem.n_tasks
        ids = mem.add(batch)
        return {
            "added_attempts": len(ids),
            "new_tasks": mem.n_tasks - before,
            "passed": sum(a.passed for a in batch),
            "n_attempts": len(mem),
            "n_tasks": mem.n_tasks,
            "store": str(mem.path),
            "index": mem.index_status,
        }


def search_main(
    store: str | Path,
    query: str,
    *,
    k: int = 3,
    n_errors: int = 3,
    include_test: bool = False,
    embedder: str | None = None,
    rules: ExampleFilter = NO_FILTER,
) -> dict[str, Any]:
    """Retrieve for a stored task id or free text; returns the examples, errors and neighbours."""
    with LongTermMemory(store, load_embedder(embedder) if embedder else None, create=False) as mem:
        by_id = mem.has_task(query)
        found = mem.retrieve(query, k, n_errors=n_errors, include_test=include_test, rules=rules)
        return {"query": query, "query_is_task_id": by_id, **found.to_dict()}


def stats_main(store: str | Path) -> dict[str, Any]:
    """Counts of tasks and attempts per split and verdict, the embedder and the index state."""
    with LongTermMemory(store, create=False) as mem:
        return mem.stats()


def export_main(store: str | Path, out: str | Path) -> dict[str, Any]:
    """Write every attempt as a JSONL line (`Attempt.to_dict`), atomically; ``.gz`` compresses."""
    out = Path(out)
    with LongTermMemory(store, create=False) as mem:  # opened first: a bad store writes nothing
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        os.close(fd)
        n = 0
        try:
            opener = gzip.open if out.suffix == ".gz" else open
            with opener(tmp, "wt", encoding="utf-8") as f:
                for a in mem.attempts():
                    f.write(json.dumps(a.to_dict(), ensure_ascii=False) + "\n")
                    n += 1
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return {"exported_attempts": n, "out": str(out)}
