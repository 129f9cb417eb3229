"""Is a before/after difference in pass@1 real? Paired statistics over the same tasks.

Two greedy evaluations of one task set are paired: most tasks keep their verdict, so the noise in
a gain is carried by the few tasks that flip. Two independent binomial standard errors ignore
that and overstate the noise; these functions use the pairing:

- `paired_gain`: the gain, its paired standard error, the flips each way, McNemar's exact p-value
  and a 95% paired-bootstrap interval;
- `mcnemar_exact_p`: the two-sided exact McNemar test on the discordant pairs;
- `paired_bootstrap_interval`: a percentile interval of the mean difference, resampling tasks.

>>> g = paired_gain({"a": False, "b": False, "c": True}, {"a": True, "b": True, "c": True})
>>> round(g.gain, 3), g.only_after, g.only_before, g.p_value
(0.667, 2, 0, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 10_000


@dataclass(frozen=True)
class PairedGain:
    """Held-out greedy pass@1 before and after a stage on the same tasks, with its uncertainty."""

    n_tasks: int
    before: float
    after: float
    gain: float
    gain_se: float
    """Paired SE of the gain: std(after_i - before_i, ddof=1) / sqrt(n) over the tasks."""
    before_se: float
    """Binomial SE of each pass@1: sqrt(p (1 - p) / n)."""
    after_se: float
    only_before: int
    """Tasks solved before and not after (and ``only_after`` the reverse)."""
    only_after: int
    ci_low: float
    """95% paired-bootstrap interval of the gain (`paired_bootstrap_interval`)."""
    ci_high: float
    p_value: float
    """Two-sided exact McNemar p-value of "no change" (`mcnemar_exact_p`)."""

    @property
    def significant(self) -> bool:
        """The 95% interval excludes zero."""
        return self.ci_low > 0 or self.ci_high < 0

    def describe(self) -> str:
        return (
            f"held-out pass@1 {self.before:.1%} -> {self.after:.1%} on {self.n_tasks} tasks; "
            f"gain {self.gain:+.1%} +- {self.gain_se:.1%} paired SE, 95% CI "
            f"[{self.ci_low:+.1%}, {self.ci_high:+.1%}], McNemar p = {self.p_value:.3g} "
            f"({self.only_after} tasks solved only after, {self.only_before} only before)"
        )


def paired_gain(before: Mapping[str, bool], after: Mapping[str, bool], *, seed: int = 0) -> PairedGain:
    """The gain of pass@1 from ``before`` to ``after`` (task id -> solved) on their common tasks.

    Example: 4 tasks, before [1, 0, 0, 1], after [1, 1, 1, 0]: the differences [0, 1, 1, -1] have
    mean 0.25 (the gain) and sample variance (0.0625 + 0.5625 + 0.5625 + 1.5625) / 3 = 0.9167, so
    the paired SE is sqrt(0.9167 / 4) = 0.4787. Pairing removes the between-task variance that two
    independent binomial SEs (here sqrt(0.5 x 0.5 / 4) = 0.25 and sqrt(0.75 x 0.25 / 4) = 0.2165)
    would count twice when most tasks keep their verdict.
    """
    tasks = sorted(set(before) & set(after))
    n = len(tasks)
    if n < 2:
        raise ValueError(f"need at least 2 common tasks for a standard error, got {n}")
    diffs = [int(after[t]) - int(before[t]) for t in tasks]
    p0 = sum(before[t] for t in tasks) / n
    p1 = sum(after[t] for t in tasks) / n
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    only_before, only_after = sum(d < 0 for d in diffs), sum(d > 0 for d in diffs)
    low, high = paired_bootstrap_interval(diffs, seed=seed)
    return PairedGain(
        n_tasks=n,
        before=p0,
        after=p1,
        gain=mean,
        gain_se=math.sqrt(var / n),
        before_se=math.sqrt(p0 * (1 - p0) / n),
        after_se=math.sqrt(p1 * (1 - p1) / n),
        only_before=only_before,
        only_after=only_after,
        ci_low=low,
        ci_high=high,
        p_value=mcnemar_exact_p(only_before, only_after),
    )


def mcnemar_exact_p(only_before: int, only_after: int) -> float:
    """Two-sided exact McNemar p-value: under "no change" each of the ``b + c`` flipped tasks is
    equally likely to flip either way, so the smaller count is Binomial(b + c, 1/2)'s tail.

    b = 1, c = 5: 2 x (C(6,0) + C(6,1)) / 2^6 = 2 x 7 / 64 = 0.21875.

    >>> mcnemar_exact_p(1, 5)
    0.21875
    >>> mcnemar_exact_p(0, 0)
    1.0
    """
    if only_before < 0 or only_after < 0:
        raise ValueError(f"flip counts must be >= 0, got {only_before} and {only_after}")
    n = only_before + only_after
    tail = sum(math.comb(n, k) for k in range(min(only_before, only_after) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_bootstrap_interval(
    diffs: Sequence[float],
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of the mean of ``diffs`` (one per task), resampling tasks with
    replacement ``resamples`` times (seeded, so a report is reproducible).

    The quantiles use the "inverted CDF" rule (the smallest resampled mean whose empirical CDF
    reaches the level), so the endpoints are attainable means, never interpolated between them.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    values = np.asarray(diffs, dtype=np.float64)
    if values.size == 0:
        raise ValueError("need at least one paired difference")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha], method="inverted_cdf")
    return float(low), float(high)
