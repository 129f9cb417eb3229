"""The critic's training data: (problem, program, outcome) examples from evaluated samples.

Examples come from two places, as in CodeRL:

- programs the policy generated (a samples JSONL) labelled by the executor (the results JSONL
  `codefalcon evaluate` writes beside it, one row per sample with ``task_id``,
  ``completion_id``, ``passed`` and ``verdict``);
- the tasks' reference solutions, labelled "passed".

Samples whose verdict is ``infrastructure_error`` are left out and counted: the harness failed,
so the program has no outcome to learn. Train and held-out sets are split by task id, so a task
is never on both sides and held-out accuracy measures generalisation to new problems.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from codefalcon.critic.labels import Outcome, class_index, class_labels, outcome_of_verdict
from codefalcon.evaluation.samples import read_samples
from codefalcon.execution.result import Verdict
from codefalcon.tasks.reading import iter_jsonl
from codefalcon.tasks.record import Task

Origin = Literal["sample", "reference"]


class CriticDataError(ValueError):
    """Samples and results that do not fit together; the message names the file, line and field."""


@dataclass(frozen=True)
class CriticExample:
    """One labelled program for one task."""

    task_id: str
    problem: str
    """The problem text the critic reads (see `default_problem_text`)."""
    program: str
    """The whole program, as executed (without any benchmark prelude)."""
    outcome: Outcome
    origin: Origin
    """"sample" (generated and executed) or "reference" (a task solution, labelled passed)."""


@dataclass(frozen=True)
class CriticData:
    """Examples read from one samples/results pair, and what was left out."""

    examples: tuple[CriticExample, ...]
    n_excluded: int
    """Samples left out because the harness failed on them (``infrastructure_error``)."""


def default_problem_text(task: Task) -> str:
    """The task's prompt, followed by its starter code when it has one (APPS call-based tasks)."""
    if task.starter_code and task.starter_code not in task.prompt:
        return f"{task.prompt}\n{task.starter_code}"
    return task.prompt


def read_result_outcomes(
    path: str | os.PathLike[str], normalize_id: Callable[[str], str] | None = None
) -> dict[tuple[str, int], Outcome | None]:
    """Outcome of each row of a results JSONL, keyed by (task id, completion id).

    None marks an infrastructure error. Rows need ``task_id``, ``completion_id`` and ``verdict``
    (the format `codefalcon evaluate` writes); anything else raises `CriticDataError`.
    """
    normalize = normalize_id or (lambda raw: raw)
    outcomes: dict[tuple[str, int], Outcome | None] = {}
    for row, where in iter_jsonl(path):
        at = f"{where.path}:{where.line}"
        missing = [k for k in ("task_id", "completion_id", "verdict") if k not in row]
        if missing:
            raise CriticDataError(
                f'{at}: field "{missing[0]}" is missing (is this an evaluate results file?)'
            )
        verdict = row["verdict"]
        if verdict not in {v.value for v in Verdict}:
            known = ", ".join(v.value for v in Verdict)
            raise CriticDataError(f'{at}: field "verdict" is {verdict!r}, not one of {known}')
        completion_id = row["completion_id"]
        if isinstance(completion_id, bool) or not isinstance(completion_id, int):
            raise CriticDataError(f'{at}: field "completion_id" must be an integer, got {completion_id!r}')
        key = (normalize(str(row["task_id"])), completion_id)
        if key in outcomes:
            raise CriticDataError(f"{at}: a second result for task {key[0]!r} completion {key[1]}")
        outcomes[key] = outcome_of_verdict(verdict)
    return outcomes


def reference_examples(
    tasks: Iterable[Task],
    max_per_task: int | None = 1,
    problem_text: Callable[[Task], str] = default_problem_text,
) -> list[CriticExample]:
    """Each task's reference solutions (at most ``max_per_task``; None: all) labelled passed.

    The cap keeps tasks with many solutions (APPS has some with over a hundred) from swamping
    the "passed" class; CodeRL used every solution.
    """
    examples = []
    for task in tasks:
        solutions = task.solutions if max_per_task is None else task.solutions[:max_per_task]
        problem = problem_text(task)
        examples += [CriticExample(task.task_id, problem, s, Outcome.PASSED, "reference") for s in solutions]
    return examples


def load_critic_examples(
    samples_path: str | os.PathLike[str],
    results_path: str | os.PathLike[str],
    tasks_by_id: Mapping[str, Task],
    *,
    normalize_id: Callable[[str], str] | None = None,
    max_references_per_task: int | None = 1,
    problem_text: Callable[[Task], str] = default_problem_text,
) -> CriticData:
    """Labelled examples from a samples file, its results file, and the sampled tasks' solutions.

    Samples and results are matched by (task id, completion id), so results written in any order
    work; a sample without a result, or a result without a sample, is an error (the two files do
    not belong together). References are added for the tasks that have samples, in file order.
    """
    samples = read_samples(samples_path, tasks_by_id, normalize_id)
    outcomes = read_result_outcomes(results_path, normalize_id)
    keys = {(s.task_id, s.completion_id) for s in samples}
    extra = sorted(set(outcomes) - keys)
    if extra:
        raise CriticDataError(
            f"{results_path}: {len(extra)} results have no sample in {samples_path}, e.g. task "
            f"{extra[0][0]!r} completion {extra[0][1]}; pass the results of this samples file"
        )
    examples: list[CriticExample] = []
    excluded = 0
    for sample in samples:
        key = (sample.task_id, sample.completion_id)
        if key not in outcomes:
            raise CriticDataError(
                f"{samples_path}:{sample.line}: no result for task {key[0]!r} completion {key[1]} "
                f"in {results_path}; run `codefalcon evaluate` on this samples file"
            )
        outcome = outcomes[key]
        if outcome is None:
            excluded += 1
            continue
        task = tasks_by_id[sample.task_id]
        examples.append(CriticExample(task.task_id, problem_text(task), sample.program, outcome, "sample"))
    sampled = [tasks_by_id[t] for t in dict.fromkeys(s.task_id for s in samples)]
    examples += reference_examples(sampled, max_references_per_task, problem_text)
    return CriticData(tuple(examples), excluded)


def split_by_task(
    examples: Sequence[CriticExample], held_out_fraction: float, seed: int = 0
) -> tuple[list[CriticExample], list[CriticExample]]:
    """(train, held-out) with every task's examples on one side only.

    A ``held_out_fraction`` of the task ids (rounded, at least one when the fraction is positive,
    and never all of them) is drawn with ``random.Random(seed)`` from the sorted ids, so the split
    depends only on the set of tasks and the seed, not on file order.
    """
    if not 0.0 <= held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction must be in [0, 1), got {held_out_fraction}")
    task_ids = sorted({e.task_id for e in examples})
    random.Random(seed).shuffle(task_ids)
    n_held = round(len(task_ids) * held_out_fraction)
    if held_out_fraction > 0 and len(task_ids) >= 2:
        n_held = min(max(n_held, 1), len(task_ids) - 1)
    held = set(task_ids[:n_held])
    train = [e for e in examples if e.task_id not in held]
    return train, [e for e in examples if e.task_id in held]


def class_counts(examples: Iterable[CriticExample], binary: bool = False) -> dict[str, int]:
    """Examples per class name, every class present (zero if unseen), in class order.

    >>> class_counts([], binary=True)
    {'not_passed': 0, 'passed': 0}
    """
    counts = Counter(class_index(e.outcome, binary) for e in examples)
    return {name: counts.get(i, 0) for i, name in enumerate(class_labels(binary))}
