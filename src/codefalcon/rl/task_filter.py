"""Difficulty filtering: train only on the tasks a probe run solves sometimes.

With a binary reward, a task the policy never solves gives RFT nothing to learn and GRPO a group
without variance, and a task it always solves gives GRPO nothing either. A small model solves
few benchmark tasks (SmolLM2-135M: about 3% of its samples on MBPP train), so most of a step is
spent on tasks that teach nothing. The usual remedy is offline difficulty filtering: sample each
train task a few times once, then keep the tasks whose pass rate lies in a band. The probe is
an ordinary `codefalcon generate` + `codefalcon evaluate` run; its results file says which
tasks to keep (``train_filter`` in `codefalcon train`'s config).

Evaluation is usually greedy, and a band of sampled pass rates still holds many tasks whose greedy
answer already passes (any task sampled above about half the time). Learning their programs
again mostly makes the model more certain of answers it already gives, which greedy pass@1 cannot
show. ``drop_solved`` names a second results file, typically a greedy run over the same train
tasks, and drops every task it solved, so the samples go to tasks where greedy still fails.
That it helps is a hypothesis: on SmolLM2's MBPP pool it did not (the model learnt the tasks its
greedy answer failed, and lost more test tasks than with the whole band; docs/rl.md).
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
    dropped_solved: int = 0


def pass_rates(results: str | Path) -> dict[str, float]:
    """Task id -> the fraction of its rows in a results file that passed."""
    outcomes: dict[str, list[bool]] = {}
    for row in read_results(results):
        outcomes.setdefault(row.task_id, []).append(row.passed)
    return {task_id: sum(passed) / len(passed) for task_id, passed in outcomes.items()}


def filter_by_pass_rate(
    tasks: Sequence[Task],
    results: str | Path,
    min_pass_rate: float,
    max_pass_rate: float,
    drop_solved: str | Path | None = None,
) -> tuple[list[Task], FilterReport]:
    """The tasks whose probed pass rate lies in [min_pass_rate, max_pass_rate], in their order,
    less those that any row of ``drop_solved`` (a second results file) passed.

    A task the results file never sampled is dropped (its rate is unknown). A results file that
    names none of ``tasks`` is an error: it was made for other tasks (another split or benchmark).
    Example: rates {a: 0, b: 0.25, c: 1}, band [0.01, 0.99] -> [b]; band [0, 1] with
    ``drop_solved`` passing c -> [a, b].
    """
    rates = _rates_for(tasks, results, "results")
    probed = [task for task in tasks if task.task_id in rates]
    kept = [task for task in probed if min_pass_rate <= rates[task.task_id] <= max_pass_rate]
    dropped = 0
    if drop_solved is not None:
        rates_solved = _rates_for(tasks, drop_solved, "drop_solved")
        solved = {task_id for task_id, rate in rates_solved.items() if rate > 0}
        dropped = sum(task.task_id in solved for task in kept)
        kept = [task for task in kept if task.task_id not in solved]
    if not kept:
        unsolved = f", {dropped} of them solved in {drop_solved}" if dropped else ""
        raise ValueError(
            f"train_filter: none of the {len(probed)} probed train tasks in {results} has a pass rate "
            f"in [{min_pass_rate}, {max_pass_rate}]{unsolved}; widen the band or probe with more samples"
        )
    return kept, FilterReport(kept=len(kept), probed=len(probed), total=len(tasks), dropped_solved=dropped)


def _rates_for(tasks: Sequence[Task], results: str | Path, field: str) -> dict[str, float]:
    """`pass_rates` of a results file that must exist and name at least one of ``tasks``."""
    if not Path(results).is_file():
        raise FileNotFoundError(
            f"train_filter.{field}: no such file: {results} (write it with codefalcon evaluate)"
        )
    rates = pass_rates(results)
    if not any(task.task_id in rates for task in tasks):
        example = next(iter(rates), "none")
        raise ValueError(
            f"train_filter.{field}: {results} has no rows for any of the {len(tasks)} train tasks "
            f"(its first task id is {example!r}, the train tasks' {tasks[0].task_id!r}): run the "
            "train split with codefalcon generate + codefalcon evaluate"
        )
    return rates
