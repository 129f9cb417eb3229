"""Retrieval over the store: nearest eligible tasks, their best programs, their frequent errors.

Kept apart from `store` so the rule of what may be returned (never the query task, never a test
task unless asked) sits in one short function, `eligible_neighbours`.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codefalcon.memory.index import search
from codefalcon.memory.record import (
    NO_FILTER,
    Attempt,
    ErrorPattern,
    ExampleFilter,
    Retrieval,
    RetrievedExample,
    best_key,
)

TEST_SPLIT = "test"


@dataclass(frozen=True)
class Neighbour:
    row: int
    task_id: str
    text: str
    similarity: float
    has_pass: bool


def _describe(db: sqlite3.Connection, hits: list[tuple[int, float]]) -> list[tuple[int, str, str, str, bool]]:
    """(row, task_id, text, split, has a passing attempt) for each hit, in hit order."""
    if not hits:
        return []
    marks = ",".join("?" * len(hits))
    rows = db.execute(
        f"SELECT id, task_id, text, split, "
        f"EXISTS (SELECT 1 FROM attempts a WHERE a.task = tasks.id AND a.passed = 1) "
        f"FROM tasks WHERE id IN ({marks})",
        [row for row, _ in hits],
    ).fetchall()
    by_row = {r[0]: r for r in rows}
    return [by_row[row] for row, _ in hits if row in by_row]


def eligible_neighbours(
    db: sqlite3.Connection,
    index: Any,
    vector: np.ndarray,
    n: int,
    include_test: bool,
    skip: Collection[str],
    enough: Callable[[list[Neighbour]], bool],
) -> list[Neighbour]:
    """Nearest tasks, best first, that may be shown: not in ``skip``, not test unless asked.

    Searches the ``n`` nearest, then wider (x4 each round) until ``enough(found)`` or the index is
    exhausted.
    """
    while True:
        hits = search(index, vector, n)
        sims = dict(hits)
        found = [
            Neighbour(row, tid, text, sims[row], bool(has_pass))
            for row, tid, text, split, has_pass in _describe(db, hits)
            if tid not in skip and (include_test or split != TEST_SPLIT)
        ]
        if enough(found) or n >= index.ntotal:
            return found
        n *= 4


ATTEMPT_COLUMNS = (
    "t.task_id, t.text, t.split, a.prompt, a.program, a.verdict, a.test_verdicts, a.errors, "
    "a.rewards, a.judge_scores, a.model_step, a.time"
)
"""Columns of an attempt joined with its task (``attempts a JOIN tasks t``), for `attempt_from_row`."""


def attempt_from_row(row: Sequence[Any]) -> Attempt:
    """The `Attempt` of one row selected with `ATTEMPT_COLUMNS`."""
    tid, text, split, prompt, program, verdict, tv, errors, rewards, judge, step, time = row
    return Attempt(
        tid, text, split, prompt, program, verdict, json.loads(tv), json.loads(errors),
        json.loads(rewards), json.loads(judge), step, time,
    )  # fmt: skip


def _attempts_of(db: sqlite3.Connection, rows: list[int], passed: bool) -> list[tuple[int, Attempt]]:
    """(task row, attempt) of the passing (or failing) attempts of the tasks ``rows``."""
    if not rows:
        return []
    marks = ",".join("?" * len(rows))
    cur = db.execute(
        f"SELECT a.task, {ATTEMPT_COLUMNS} FROM attempts a JOIN tasks t ON a.task = t.id "
        f"WHERE a.task IN ({marks}) AND a.passed = ?",
        [*rows, int(passed)],
    )
    return [(row[0], attempt_from_row(row[1:])) for row in cur]


def frequent_errors(attempts: list[tuple[int, Attempt]], n: int) -> list[ErrorPattern]:
    """The ``n`` most frequent errors, each counted once per attempt; ties by tasks, then text."""
    count: Counter[str] = Counter()
    tasks: dict[str, set[int]] = {}
    for row, a in attempts:
        for error in set(a.errors):
            count[error] += 1
            tasks.setdefault(error, set()).add(row)
    ranked = sorted(count, key=lambda e: (-count[e], -len(tasks[e]), e))
    return [ErrorPattern(e, count[e], len(tasks[e])) for e in ranked[:n]]


def pick_examples(index: Any, found: list[Neighbour], k: int, rules: ExampleFilter) -> list[Neighbour]:
    """The first ``k`` solved neighbours that pass ``rules`` (see `ExampleFilter`), best first."""
    chosen: list[Neighbour] = []
    vectors: list[np.ndarray] = []
    for nb in found:
        if len(chosen) == k:
            break
        if not nb.has_pass or (rules.max_similarity is not None and nb.similarity > rules.max_similarity):
            continue
        if rules.max_example_similarity is not None:
            v = index.reconstruct(nb.row)
            if any(float(v @ u) > rules.max_example_similarity for u in vectors):
                continue
            vectors.append(v)
        chosen.append(nb)
    return chosen


def retrieve(
    db: sqlite3.Connection,
    index: Any,
    vector: np.ndarray,
    k: int,
    n_errors: int,
    error_tasks: int,
    include_test: bool,
    skip: Collection[str],
    rules: ExampleFilter = NO_FILTER,
) -> Retrieval:
    """See `LongTermMemory.retrieve`."""

    def enough(found: list[Neighbour]) -> bool:
        return len(found) >= error_tasks and len(pick_examples(index, found, k, rules)) >= k

    start = max(4 * (k + error_tasks + len(skip)), 16)
    found = eligible_neighbours(db, index, vector, start, include_test, skip, enough)
    solved = pick_examples(index, found, k, rules)
    best: dict[int, Attempt] = {}
    for row, a in _attempts_of(db, [nb.row for nb in solved], passed=True):
        if row not in best or best_key(a) < best_key(best[row]):
            best[row] = a
    examples = tuple(
        RetrievedExample(nb.task_id, nb.text, best[nb.row].program, nb.similarity, best[nb.row].reward_total)
        for nb in solved
    )
    near = found[:error_tasks]
    errors = frequent_errors(_attempts_of(db, [nb.row for nb in near], passed=False), n_errors)
    neighbours = tuple((nb.task_id, nb.similarity) for nb in found[: max(k, error_tasks)])
    return Retrieval(examples, tuple(errors), neighbours)
