"""Records of the memory: one `Attempt` (a row of the long-term store) and what retrieval returns.

An attempt is everything FALCON keeps about one generated program: the task (id, text, split),
the prompt, the program, the verdict of every test, the error messages, the reward components,
the judge's scores, the model step and the wall-clock time. Nothing here touches SQLite or FAISS.
"""

from __future__ import annotations

import math
import re
import time as _time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from codefalcon.execution.result import ExecutionResult, TestResult, Verdict
from codefalcon.tasks.record import Task

MAX_ERROR_CHARS = 300  # longest error message kept per failing test


def error_text(test: TestResult) -> str:
    """One line naming why a test failed: ``"ZeroDivisionError: division by zero"``.

    Falls back to the verdict (``"wrong_answer"``) when the executor gave no error type or message.
    Whitespace runs become one space and the text is cut at `MAX_ERROR_CHARS`.
    """
    parts = [p for p in (test.error_type, test.message) if p]
    text = ": ".join(parts) if parts else test.verdict.value
    return re.sub(r"\s+", " ", text).strip()[:MAX_ERROR_CHARS]


def _floats(d: Mapping[str, Any] | None) -> dict[str, float | None]:
    """A copy with values as float, None kept (a missing reward part is not a zero)."""
    return {str(k): (None if v is None else float(v)) for k, v in (d or {}).items()}


@dataclass(frozen=True)
class Attempt:
    """One program generated for one task, with its feedback.

    ``verdict``: the whole program's verdict; ``test_verdicts``: one per test that ran, in test
    order (lists of strings are accepted and stored as a tuple of `Verdict`, which are strings).
    ``errors``: one line per failing test (`error_text`). ``rewards``: reward components by name,
    None where a component did not apply. ``judge_scores``: the AI judge's scores by criterion,
    None where its answer was unparseable. ``model_step``: the policy's optimiser step, None for a
    fixed model. ``time``: Unix seconds when the attempt was made.

    >>> a = Attempt("t/1", "Add two numbers.", "train", "p", "def f(): ...", "passed", ["passed"])
    >>> a.passed, a.test_verdicts
    (True, (<Verdict.PASSED: 'passed'>,))
    """

    task_id: str
    task_text: str
    split: str
    prompt: str
    program: str
    verdict: Verdict
    test_verdicts: tuple[Verdict, ...] = ()
    errors: tuple[str, ...] = ()
    rewards: dict[str, float | None] = field(default_factory=dict, hash=False)
    judge_scores: dict[str, float | None] = field(default_factory=dict, hash=False)
    model_step: int | None = None
    time: float = field(default_factory=_time.time)

    def __post_init__(self) -> None:
        # Accept plain strings and lists (JSON, callers), store enums and tuples (frozen, hashable).
        object.__setattr__(self, "verdict", Verdict(self.verdict))
        object.__setattr__(self, "test_verdicts", tuple(Verdict(v) for v in self.test_verdicts))
        object.__setattr__(self, "errors", tuple(str(e) for e in self.errors))
        object.__setattr__(self, "rewards", _floats(self.rewards))
        object.__setattr__(self, "judge_scores", _floats(self.judge_scores))

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASSED

    @property
    def reward_total(self) -> float | None:
        """Sum of the reward components that applied; None if none did."""
        values = [v for v in self.rewards.values() if v is not None and math.isfinite(v)]
        return sum(values) if values else None

    @property
    def judge_mean(self) -> float | None:
        """Mean of the judge's parsed scores; None if there are none."""
        values = [v for v in self.judge_scores.values() if v is not None and math.isfinite(v)]
        return sum(values) / len(values) if values else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (verdicts as their string values); `from_dict` inverts it."""
        return {
            "task_id": self.task_id,
            "task_text": self.task_text,
            "split": self.split,
            "prompt": self.prompt,
            "program": self.program,
            "verdict": self.verdict.value,
            "test_verdicts": [v.value for v in self.test_verdicts],
            "errors": list(self.errors),
            "rewards": dict(self.rewards),
            "judge_scores": dict(self.judge_scores),
            "model_step": self.model_step,
            "time": self.time,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Attempt:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown Attempt fields: {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def from_execution(
        cls,
        task: Task,
        program: str,
        result: ExecutionResult,
        *,
        prompt: str = "",
        rewards: Mapping[str, float | None] | None = None,
        judge_scores: Mapping[str, float | None] | None = None,
        model_step: int | None = None,
        time: float | None = None,
    ) -> Attempt:
        """The attempt for ``program`` on ``task`` as the executor judged it.

        The task text is ``task.prompt`` (what the model saw of the problem, and what retrieval
        embeds); ``prompt`` is the full prompt actually sent, retrieved context included.
        """
        return cls(
            task_id=task.task_id,
            task_text=task.prompt,
            split=task.split,
            prompt=prompt,
            program=program,
            verdict=result.verdict,
            test_verdicts=tuple(t.verdict for t in result.tests),
            errors=tuple(error_text(t) for t in result.tests if not t.passed),
            rewards=dict(rewards or {}),
            judge_scores=dict(judge_scores or {}),
            model_step=model_step,
            time=_time.time() if time is None else time,
        )


@dataclass(frozen=True)
class RetrievedExample:
    """The best passing program of one similar task. ``similarity``: cosine, in [-1, 1]."""

    task_id: str
    task_text: str
    program: str
    similarity: float
    reward_total: float | None = None

    def render(self) -> str:
        """Prompt text for this example: the task, then its solution in a code block."""
        return f"Task:\n{self.task_text.strip()}\nSolution:\n```python\n{self.program.strip()}\n```"


@dataclass(frozen=True)
class ErrorPattern:
    """An error seen on similar tasks: its text, how often, and on how many tasks."""

    error: str
    count: int
    n_tasks: int

    def render(self) -> str:
        return f"- {self.error} (seen {self.count} times on {self.n_tasks} similar tasks)"


@dataclass(frozen=True)
class ExampleFilter:
    """Which solved neighbours may become examples; None switches a rule off.

    A small model shown the solution of a near-copy of its task (the same generated template with
    other constants, MBPP problems differing in one word) copies it verbatim, constants and all,
    and the near-copies crowd out everything else. ``max_similarity``: skip a neighbour whose
    cosine to the query is above this. ``max_example_similarity``: skip a neighbour whose cosine
    to an example already chosen is above this, so the k examples show k different things.
    """

    max_similarity: float | None = None
    max_example_similarity: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_similarity", "max_example_similarity"):
            value = getattr(self, name)
            if value is not None and not -1.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a cosine in [-1, 1] or None, got {value}")

    @property
    def active(self) -> bool:
        return self.max_similarity is not None or self.max_example_similarity is not None


NO_FILTER = ExampleFilter()


@dataclass(frozen=True)
class Retrieval:
    """What the long-term memory returns for one query, most similar first."""

    examples: tuple[RetrievedExample, ...]
    errors: tuple[ErrorPattern, ...]
    neighbours: tuple[tuple[str, float], ...]  # (task_id, similarity) of every task looked at

    def example_texts(self) -> list[str]:
        """Rendered examples, best first: the ``retrieved_examples`` of `assemble_prompt`."""
        return [e.render() for e in self.examples]

    def errors_text(self) -> str:
        """The frequent errors as a bullet list under a heading, or "" when there are none."""
        if not self.errors:
            return ""
        return "Common mistakes on similar tasks:\n" + "\n".join(e.render() for e in self.errors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "examples": [e.__dict__ for e in self.examples],
            "errors": [e.__dict__ for e in self.errors],
            "neighbours": [list(n) for n in self.neighbours],
        }


def best_key(attempt: Attempt) -> tuple[Any, ...]:
    """Sort key for "best" attempt (smaller is better): passed, reward, judge, shorter, newer."""
    reward = attempt.reward_total
    judge = attempt.judge_mean
    return (
        not attempt.passed,
        -(reward if reward is not None else -math.inf),
        -(judge if judge is not None else -math.inf),
        len(attempt.program),
        -attempt.time,
    )
