"""Benchmark metrics from execution results: APPS accuracies, verdict counts, the summary.

Samples whose verdict is ``infrastructure_error`` (the harness failed, not the program) are not
scored: they are left out of every rate and counted as ``n_unscored``. A task left with no scored
sample makes the rates undefined (None and a reason) rather than quietly averaged over fewer tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from codefalcon.evaluation.passk import pass_at_k
from codefalcon.execution.result import ExecutionResult, Verdict

UNSPECIFIED = "unspecified"  # difficulty key for tasks without one (HumanEval, MBPP)


class HasTaskId(Protocol):
    """Anything naming its task, such as a `Sample`."""

    @property
    def task_id(self) -> str: ...


@dataclass(frozen=True)
class Accuracy:
    """APPS' two metrics over a group of tasks (Hendrycks et al. 2021, section 4.1).

    ``strict_accuracy``: mean over tasks of the fraction of its samples passing *every* test (with
    one sample per task: APPS' strict accuracy; with n: pass@1). ``avg_pass_rate``: mean over
    tasks of the mean fraction of tests passed; a compile error passes no test, so counts 0.
    """

    n_tasks: int
    n_samples: int
    n_unscored: int
    strict_accuracy: float | None
    avg_pass_rate: float | None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def scored(results: Iterable[ExecutionResult]) -> list[ExecutionResult]:
    """The results that count: all but infrastructure errors, which are the harness's fault."""
    return [r for r in results if r.verdict is not Verdict.INFRASTRUCTURE_ERROR]


def accuracy(per_task: Mapping[str, Sequence[ExecutionResult]]) -> Accuracy:
    """Strict accuracy and average test-case pass rate over tasks (see `Accuracy`).

    Example: task a passes 2 of 4 tests, task b passes 4 of 4 -> strict accuracy (0 + 1) / 2 =
    0.5, average pass rate (0.5 + 1.0) / 2 = 0.75.
    """
    kept = {t: scored(rs) for t, rs in per_task.items()}
    n_samples = sum(len(rs) for rs in per_task.values())
    n_unscored = n_samples - sum(len(rs) for rs in kept.values())
    empty = [t for t, rs in kept.items() if not rs]
    reason = None
    if not kept:
        reason = "no tasks"
    elif empty:
        reason = f"{len(empty)} of {len(kept)} tasks have no scored sample (e.g. {empty[0]!r})"
    if reason is not None:
        return Accuracy(len(per_task), n_samples, n_unscored, None, None, reason)
    strict = np.mean([np.mean([r.passed for r in rs]) for rs in kept.values()])
    rate = np.mean([np.mean([r.pass_ratio for r in rs]) for rs in kept.values()])
    return Accuracy(len(per_task), n_samples, n_unscored, float(strict), float(rate))


def verdict_counts(results: Iterable[ExecutionResult]) -> dict[str, int]:
    """Number of samples per overall verdict, every `Verdict` value present (zeros included)."""
    counts = dict.fromkeys((v.value for v in Verdict), 0)
    for r in results:
        counts[r.verdict.value] += 1
    return counts


def split_by_difficulty(
    per_task: Mapping[str, Sequence[ExecutionResult]],
    difficulty_of: Mapping[str, str | None],
) -> dict[str, dict[str, Sequence[ExecutionResult]]]:
    """Group tasks by difficulty, in order of first appearance; no difficulty -> ``unspecified``.

    >>> list(split_by_difficulty({"a": [], "b": []}, {"a": "interview"}))
    ['interview', 'unspecified']
    """
    groups: dict[str, dict[str, Sequence[ExecutionResult]]] = {}
    for task_id, results in per_task.items():
        key = difficulty_of.get(task_id) or UNSPECIFIED
        groups.setdefault(key, {})[task_id] = results
    return groups


def group_by_task(
    samples: Sequence[HasTaskId], results: Sequence[ExecutionResult]
) -> dict[str, list[ExecutionResult]]:
    """Results per task id, in sample order; ``samples[i]`` is the sample behind ``results[i]``."""
    if len(samples) != len(results):
        raise ValueError(f"{len(samples)} samples but {len(results)} results")
    per_task: dict[str, list[ExecutionResult]] = {}
    for sample, result in zip(samples, results, strict=True):
        per_task.setdefault(sample.task_id, []).append(result)
    return per_task


def _table(per_task: Mapping[str, Sequence[ExecutionResult]], ks: Sequence[int]) -> dict[str, Any]:
    """All metrics of one group of tasks as a JSON-ready dict."""
    passed = {t: [r.passed for r in scored(rs)] for t, rs in per_task.items()}
    acc = accuracy(per_task)
    return {
        **acc.to_dict(),
        "pass_at_k": {m: e.to_dict() for m, e in pass_at_k(passed, ks).items()},
        "verdicts": verdict_counts(r for rs in per_task.values() for r in rs),
    }


def summarize(
    per_task: Mapping[str, Sequence[ExecutionResult]],
    ks: Sequence[int] = (1,),
    difficulty_of: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """One JSON-serialisable report: counts, accuracies, pass@k, verdicts, per-difficulty tables.

    Keys: n_tasks, n_samples, n_unscored, strict_accuracy, avg_pass_rate, reason, pass_at_k
    (``{"pass@1": {"value", "n_tasks", "reason"}}``), verdicts (count per verdict) and
    by_difficulty (difficulty -> the same keys). To count tasks a model never attempted, put them
    in ``per_task`` with an empty list: pass@k and the accuracies then become undefined, as they
    should, instead of scoring only the attempted tasks.
    """
    groups = split_by_difficulty(per_task, difficulty_of or {})
    return {
        **_table(per_task, ks),
        "by_difficulty": {d: _table(group, ks) for d, group in groups.items()},
    }
