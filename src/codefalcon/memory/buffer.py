"""Short-term memory: per task, the last few attempts with their feedback, for repair prompts.

FALCON's local level: what the compiler, the tests and the judge just said about this task's
recent programs. It lives in memory (a bounded deque per task) and round-trips through JSON so a
training checkpoint can carry it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from codefalcon.execution.result import ExecutionResult, Verdict
from codefalcon.memory.record import error_text

MAX_SHOWN_CHARS = 200  # longest input / expected / actual text shown in feedback


@dataclass(frozen=True)
class FailedTest:
    """One failing test: what went in, what was expected, what came out, and the error."""

    __test__ = False

    index: int
    verdict: str
    input: str | None = None
    expected: str | None = None
    actual: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Feedback:
    """One attempt as the short-term memory keeps it.

    ``compile_error``: the compiler's (Python: the parser's) message, when the program did not
    compile. ``failed_tests``: up to a few failing tests, in test order. ``judge_remarks``: the AI
    judge's free-text comments, if any.
    """

    program: str
    verdict: str
    n_passed: int
    n_tests: int
    compile_error: str | None = None
    failed_tests: tuple[FailedTest, ...] = ()
    judge_remarks: str | None = None

    @classmethod
    def from_execution(
        cls, program: str, result: ExecutionResult, judge_remarks: str | None = None, max_failed: int = 2
    ) -> Feedback:
        """Feedback on ``program`` from its execution result (first ``max_failed`` failures kept)."""
        compile_error = None
        if result.verdict is Verdict.COMPILE_ERROR:
            compile_error = error_text(result.first_failure) if result.first_failure else "compile error"
        failed = tuple(
            FailedTest(t.index, t.verdict.value, t.input, t.expected, t.actual, error_text(t))
            for t in result.tests
            if not t.passed
        )[:max_failed]
        verdict = result.verdict.value
        return cls(program, verdict, result.n_passed, result.n_tests, compile_error, failed, judge_remarks)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Feedback:
        failed = tuple(FailedTest(**t) for t in d.get("failed_tests", ()))
        return cls(**{**d, "failed_tests": failed})

    def render(self, number: int, include_program: bool = True) -> str:
        """Text for a repair prompt, e.g. ``Attempt 1: wrong_answer (3 of 10 tests passed)`` then
        the program and what went wrong."""
        lines = [f"Attempt {number}: {self.verdict} ({self.n_passed} of {self.n_tests} tests passed)"]
        if include_program:
            lines.append(f"```python\n{self.program.strip()}\n```")
        if self.compile_error:
            lines.append(f"Compiler error: {self.compile_error}")
        for t in self.failed_tests if not self.compile_error else ():
            parts = [f"Test {t.index + 1} failed ({t.verdict})"]
            for label, value in (("input", t.input), ("expected", t.expected), ("got", t.actual)):
                if value is not None:
                    parts.append(f"{label}: {_short(value)}")
            if t.error and t.error != t.verdict:
                parts.append(f"error: {t.error}")
            lines.append("; ".join(parts))
        if self.judge_remarks:
            lines.append(f"Reviewer: {self.judge_remarks.strip()}")
        return "\n".join(lines)


def _short(text: str) -> str:
    text = str(text).strip()
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


class ShortTermMemory:
    """The last ``capacity`` attempts of each task, oldest first.

    >>> stm = ShortTermMemory(capacity=2)
    >>> for v in ("compile_error", "wrong_answer", "passed"):
    ...     stm.add("t/1", Feedback("pass", v, 0, 1))
    >>> [f.verdict for f in stm.recent("t/1")]
    ['wrong_answer', 'passed']
    """

    def __init__(self, capacity: int = 3) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._by_task: dict[str, deque[Feedback]] = {}

    def add(self, task_id: str, feedback: Feedback) -> None:
        self._by_task.setdefault(task_id, deque(maxlen=self.capacity)).append(feedback)

    def recent(self, task_id: str) -> list[Feedback]:
        return list(self._by_task.get(task_id, ()))

    def clear(self, task_id: str | None = None) -> None:
        """Forget one task (e.g. once solved), or everything."""
        if task_id is None:
            self._by_task.clear()
        else:
            self._by_task.pop(task_id, None)

    def __len__(self) -> int:
        return len(self._by_task)

    def feedback_items(self, task_id: str, include_program: bool = True) -> list[str]:
        """Rendered attempts, most recent first (the ``recent_feedback`` of `assemble_prompt`,
        which drops items from the end: the oldest go first)."""
        items = self.recent(task_id)
        n = len(items)
        return [f.render(n - i, include_program) for i, f in enumerate(reversed(items))]

    def render(self, task_id: str, include_program: bool = True) -> str:
        """All recent feedback as one text, most recent first; "" if there is none."""
        return "\n\n".join(self.feedback_items(task_id, include_program))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready state for a checkpoint; `from_json` restores it exactly."""
        return {
            "capacity": self.capacity,
            "tasks": {tid: [f.to_dict() for f in items] for tid, items in self._by_task.items()},
        }

    @classmethod
    def from_json(cls, state: Mapping[str, Any]) -> ShortTermMemory:
        stm = cls(int(state["capacity"]))
        for tid, items in state["tasks"].items():
            for d in items:
                stm.add(tid, Feedback.from_dict(d))
        return stm
