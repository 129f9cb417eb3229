"""Difficulty filtering: train only on the tasks a probe run solves sometimes.

With a binary reward, a task the policy never solves gives RFT nothing to learn and GRPO a group
without variance, and a task it always solves gives GRPO nothing either. A small model solves
few benchmark tasks (SmolLM2-135M: about 3% of its samples on MBPP train), so most of a step is
spent on tasks that teach nothing. The usual remedy is offline difficulty filtering: sample each
train task a few times once, then keep the tasks whose pass rate lies in a band. The probe is
an ordinary `codefalcon generate` + `codefalcon evaluate` run; its results file says which
tasks to keep (``train_filter`` in `codefalcon train`'s config).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from codefalcon.evaluation.samples import read_results
from codefalcon.tasks.record import Task


@dataclass(frozen=True)
class FilterReport:
    """What `filter_by_pass_rate` kept, for the log."""

    kept: int
    probed: int
    total: int


def pass_rates(results: str | Path) -> dict[str, float]:
    """Task id -> the fraction of its rows in a results file that passed."""
    outcomes: dict[str, list[bool]] = {}
    for row in read_results(results):
        outcomes.setdefault(row.task_id, []).append(row.passed)
    return {task_id: sum(passed) / len(passed) for task_id, passed in outcomes.items()}


def filter_by_pass_rate(
    tasks: Sequence[Task], results: str | Path, min_pass_rate: float, max_pass_rate: float
) -> tuple[list[Task], FilterReport]:
    """The tasks whose probed pass rate lies in [min_pass_rate, max_pass_rate], in their order.

    A task the results file never sampled is dropped (its rate is unknown). A results file that
    names none of ``tasks`` is an error: it was made for other tasks (another split or benchmark).
    Example: rates {a: 0, b: 0.25, c: 1}, band [0.01, 0.99] -> [b].
    """
    if not Path(results).is_file():
        raise FileNotFoundError(
            f"train_filter.results: no such file: {results} (write it with codefalcon evaluate)"
        )
    rates = pass_rates(results)
    probed = [task for task in tasks if task.task_id in rates]
    if not probed:
        example = next(iter(rates), "none")
        raise ValueError(
            f"train_filter.results: {results} has no rows for any of the {len(tasks)} train tasks "
            f"(its first task id is {example!r}, the train tasks' {tasks[0].task_id!r}): probe the "
            "train split with codefalcon generate + codefalcon evaluate"
        )
    kept = [task for task in probed if min_pass_rate <= rates[task.task_id] <= max_pass_rate]
    if not kept:
        raise ValueError(
            f"train_filter: none of the {len(probed)} probed train tasks in {results} has a pass rate "
            f"in [{min_pass_rate}, {max_pass_rate}]; widen the band or probe with more samples"
        )
    return kept, FilterReport(kept=len(kept), probed=len(probed), total=len(tasks))
