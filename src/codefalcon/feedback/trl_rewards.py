"""Reward functions with TRL's convention: ``f(prompts, completions, **columns) -> list[float | None]``.

Every adapter is a callable class, not a closure, because trainers pickle reward functions to
worker processes and closures cannot be pickled. Each has ``rewards(...) -> list[Reward]``
(values with explanations) and ``__call__`` returning only the floats, None meaning *missing*
(TRL turns it into NaN and leaves it out). Completions may be strings or, for conversational
datasets, lists of chat messages (``[{"role": "assistant", "content": ...}]``).

Where the program comes from: ``program_from(task, text)``; the default takes the fenced code
block if there is one, else appends the text to the task's ``completion_prefix`` (HumanEval
style). For the models package's extraction rules pass
``functools.partial(codefalcon.models.extract_program, mode="chat")`` (picklable).

Where the tests come from (`TaskSource`): a ``task_id`` column plus the tasks given to the
constructor, or a ``task`` column holding each task in the tasks-JSONL format (dict or string).
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from codefalcon.execution.executor import Executor, ExecutorConfig
from codefalcon.execution.result import ExecutionResult
from codefalcon.feedback.compose import compose
from codefalcon.feedback.judge import AIJudge
from codefalcon.feedback.record import Reward, RewardBreakdown
from codefalcon.feedback.unit_tests import unit_test_rule
from codefalcon.tasks.jsonl import task_from_dict
from codefalcon.tasks.reading import Where
from codefalcon.tasks.record import Task

ProgramBuilder = Callable[[Task | None, str], str]
_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def completion_text(completion: str | Sequence[Mapping[str, Any]]) -> str:
    """The text of a completion: a string, or the assistant messages' contents joined.

    >>> completion_text([{"role": "assistant", "content": "x = 1"}])
    'x = 1'
    """
    if isinstance(completion, str):
        return completion
    return "".join(_content(m) for m in completion if m.get("role", "assistant") == "assistant")


def prompt_text(prompt: str | Sequence[Mapping[str, Any]]) -> str:
    """The task statement in a prompt: the string itself, or the last user message's content."""
    if isinstance(prompt, str):
        return prompt
    users = [_content(m) for m in prompt if m.get("role") == "user"]
    return users[-1] if users else "".join(_content(m) for m in prompt)


def _content(message: Mapping[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, str):
        return content
    # Multimodal messages: a list of parts, of which only text parts matter here.
    return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))


def program_from_completion(task: Task | None, text: str) -> str:
    """The program in a completion: a fenced Python block if any, else prefix + text.

    With several blocks, the first that defines the task's entry point wins, else the first.

    >>> program_from_completion(None, "Here:\\n```python\\ndef f():\\n    return 1\\n```\\nDone.")
    'def f():\\n    return 1\\n'
    """
    blocks = [code for lang, code in _FENCE.findall(text) if lang.lower() in ("", "python", "py", "python3")]
    if blocks:
        name = task.entry_point if task else None
        chosen = next((b for b in blocks if name and re.search(rf"\bdef {re.escape(name)}\b", b)), blocks[0])
        return chosen
    return task.program_from_completion(text) if task else text


class TaskSource:
    """Finds each row's `Task`: by id in ``tasks`` (column ``id_column``), or parsed from the
    ``task_column`` column (tasks-JSONL dicts or JSON strings). Without either, rows have no task."""

    def __init__(
        self,
        tasks: Mapping[str, Task] | Iterable[Task] | None = None,
        id_column: str = "task_id",
        task_column: str = "task",
    ) -> None:
        if tasks is not None and not isinstance(tasks, Mapping):
            tasks = {t.task_id: t for t in tasks}
        self.tasks = dict(tasks) if tasks is not None else None
        self.id_column = id_column
        self.task_column = task_column

    def lookup(self, n: int, columns: Mapping[str, Any]) -> list[Task | None]:
        """One task (or None) per row; unknown ids and malformed tasks are errors."""
        if self.tasks is not None:
            if self.id_column not in columns:
                raise ValueError(f"tasks were given but the dataset has no {self.id_column!r} column")
            return [self._by_id(i) for i in columns[self.id_column]]
        if self.task_column in columns:
            return [self._parse(i, row) for i, row in enumerate(columns[self.task_column])]
        return [None] * n

    def _by_id(self, task_id: Any) -> Task:
        try:
            return self.tasks[str(task_id)]  # type: ignore[index]
        except KeyError:
            raise ValueError(f"unknown task id {task_id!r} in column {self.id_column!r}") from None

    def _parse(self, index: int, row: Any) -> Task:
        data = json.loads(row) if isinstance(row, str) else row
        return task_from_dict(data, Where(Path(f"<column {self.task_column}>"), index + 1))


def programs_of(
    source: TaskSource, build: ProgramBuilder, completions: Sequence[Any], columns: Mapping[str, Any]
) -> tuple[list[Task | None], list[str]]:
    """Each row's task (None where the row names none) and the program its completion makes."""
    tasks = source.lookup(len(completions), columns)
    return tasks, [build(task, completion_text(c)) for task, c in zip(tasks, completions, strict=True)]


class UnitTestReward:
    """Unit-test reward (``mode``: binary, pass_ratio or coderl) by running each program on its task's tests.

    The `Executor` is created on first use (and closed when this object is collected), never
    pickled: a copy sent to another process starts its own. Pass ``executor`` to share one
    (e.g. with evaluation); it is then not closed here. Rows without a task, or whose suite is
    empty, get None. Modes needing every test (pass_ratio) run full suites; the others stop at
    the first failure.
    """

    def __init__(
        self,
        tasks: TaskSource | Mapping[str, Task] | Iterable[Task] | None = None,
        mode: str = "binary",
        executor_config: ExecutorConfig | None = None,
        *,
        program_from: ProgramBuilder = program_from_completion,
        executor: Executor | None = None,
    ) -> None:
        self.source = tasks if isinstance(tasks, TaskSource) else TaskSource(tasks)
        self.rule = unit_test_rule(mode)
        self.executor_config = executor_config or ExecutorConfig()
        self.program_from = program_from
        self.__name__ = f"unit_tests_{mode}"  # TRL logs each reward under its function's name
        self._executor = executor
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_executor"] = None  # worker processes and threads cannot travel; start anew
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def executor(self) -> Executor:
        """The shared executor, started on first use."""
        with self._lock:
            if self._executor is None:
                self._executor = Executor(self.executor_config)
                weakref.finalize(self, self._executor.close)
            return self._executor

    def results(self, completions: Sequence[Any], **columns: Any) -> list[ExecutionResult | None]:
        """Each completion's execution result (None for rows without tests), in one batch."""
        tasks, programs = programs_of(self.source, self.program_from, completions, columns)
        rows = [i for i, t in enumerate(tasks) if t is not None and len(t.tests) > 0]
        jobs = [(tasks[i].runnable(programs[i]), tasks[i].tests) for i in rows]  # type: ignore[union-attr]
        done = (
            self.executor().run_batch(jobs, stop_on_first_failure=not self.rule.runs_all_tests)
            if jobs
            else []
        )
        results: list[ExecutionResult | None] = [None] * len(completions)
        for i, result in zip(rows, done, strict=True):
            results[i] = result
        return results

    def rewards(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[Reward]:
        return [
            self.rule.score(r) if r is not None else Reward(None, "no tests for this row")
            for r in self.results(completions, **columns)
        ]

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float | None]:
        return [r.value for r in self.rewards(prompts, completions, **columns)]


class StaticReward:
    """A static-analysis reward (``score(program) -> Reward``, e.g. `ruff_reward`) as a TRL reward.

    ``score`` must be picklable (a module-level function). Rows need no task; with one, the
    program is built from its prefix as for the unit tests.
    """

    def __init__(
        self,
        score: Callable[[str], Reward],
        tasks: TaskSource | Mapping[str, Task] | Iterable[Task] | None = None,
        *,
        program_from: ProgramBuilder = program_from_completion,
    ) -> None:
        self.score = score
        self.source = tasks if isinstance(tasks, TaskSource) else TaskSource(tasks)
        self.program_from = program_from
        self.__name__ = getattr(score, "__name__", type(score).__name__).removesuffix("_reward")

    def rewards(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[Reward]:
        _, programs = programs_of(self.source, self.program_from, completions, columns)
        return [self.score(program) for program in programs]

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float | None]:
        return [r.value for r in self.rewards(prompts, completions, **columns)]


class JudgeReward:
    """The AI judge's reward in [0, 1] (None when missing). The task statement is the task's
    prompt when the row has a task, else the prompt column (last user message)."""

    def __init__(
        self,
        judge: AIJudge,
        tasks: TaskSource | Mapping[str, Task] | Iterable[Task] | None = None,
        *,
        program_from: ProgramBuilder = program_from_completion,
    ) -> None:
        self.judge = judge
        self.source = tasks if isinstance(tasks, TaskSource) else TaskSource(tasks)
        self.program_from = program_from
        self.__name__ = "judge"

    def rewards(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[Reward]:
        tasks, programs = programs_of(self.source, self.program_from, completions, columns)
        statements = [t.prompt if t else prompt_text(p) for t, p in zip(tasks, prompts, strict=True)]
        return [j.reward for j in self.judge.judge_many(list(zip(statements, programs, strict=True)))]

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float | None]:
        return [r.value for r in self.rewards(prompts, completions, **columns)]


class ComposedReward:
    """Unit tests plus weighted auxiliary rewards (`codefalcon.feedback.compose`) as one TRL reward.

    ``auxiliaries``: name -> adapter with a ``rewards`` method (`StaticReward`, `JudgeReward`);
    ``weights``: name -> weight (default 1 each). When TRL passes ``log_metric``, the batch mean
    of every component is logged as ``reward/<name>`` (and ``reward/passed``).
    """

    def __init__(
        self,
        unit_tests: UnitTestReward,
        auxiliaries: Mapping[str, StaticReward | JudgeReward],
        weights: Mapping[str, float] | None = None,
        aux_share: float = 0.5,
    ) -> None:
        if not 0.0 <= aux_share < 1.0:
            raise ValueError(f"aux_share must be in [0, 1) for correctness to dominate, got {aux_share}")
        self.unit_tests = unit_tests
        self.auxiliaries = dict(auxiliaries)
        self.weights = dict(weights) if weights is not None else dict.fromkeys(self.auxiliaries, 1.0)
        self.aux_share = aux_share
        self.__name__ = "composed"

    def breakdowns(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[RewardBreakdown]:
        """Every completion's composed reward with each component and its explanation."""
        results = self.unit_tests.results(completions, **columns)
        parts = {name: a.rewards(prompts, completions, **columns) for name, a in self.auxiliaries.items()}
        out = []
        for i, result in enumerate(results):
            aux = {name: rewards[i] for name, rewards in parts.items()}
            if result is None:
                out.append(RewardBreakdown(None, None, Reward(None, "no tests for this row"), aux))
            else:
                out.append(
                    compose(result, aux, self.weights, rule=self.unit_tests.rule, aux_share=self.aux_share)
                )
        return out

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float | None]:
        return totals_logged(self.breakdowns(prompts, completions, **columns), columns)


def totals_logged(breakdowns: Sequence[RewardBreakdown], columns: Mapping[str, Any]) -> list[float | None]:
    """Each breakdown's total; batch means of every part go to ``columns["log_metric"]`` if given."""
    log_metric = columns.get("log_metric")
    if callable(log_metric):
        for name, value in mean_metrics(breakdowns).items():
            log_metric(name, value)
    return [b.total for b in breakdowns]


def mean_metrics(breakdowns: Sequence[RewardBreakdown]) -> dict[str, float]:
    """Batch mean of each metric over the breakdowns where it is present."""
    sums: dict[str, list[float]] = {}
    for breakdown in breakdowns:
        for name, value in breakdown.metrics().items():
            sums.setdefault(name, []).append(value)
    return {name: sum(values) / len(values) for name, values in sums.items()}
