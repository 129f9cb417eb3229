"""Scripted stand-ins for a policy back-end, a critic and an executor, for deterministic tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from codefalcon.execution import ExecutionResult
from codefalcon.models import Completion, FinishReason, SamplingParams
from codefalcon.tasks import Task, TestCase, TestStyle, TestSuite

PREFIX = 'def add(a, b):\n    """Add two numbers."""\n'
RIGHT = "    return a + b\n"
WRONG = "    return a - b\n"
CRASH = "    return a / 0\n"
OVERFIT = "    return 5\n"  # passes the example add(2, 3) == 5, fails the hidden tests


def call_suite(*pairs: tuple[list, object]) -> TestSuite:
    return TestSuite(TestStyle.CALL, tuple(TestCase(input=i, expected=e) for i, e in pairs), "add")


def add_task(task_id: str = "t/add", split: str = "test") -> Task:
    """A HumanEval-like task: example add(2, 3) == 5 visible, three hidden tests."""
    return Task(
        task_id=task_id,
        prompt=PREFIX,
        tests=call_suite(([2, 3], 5), ([10, -4], 6), ([0, 7], 7)),
        entry_point="add",
        completion_prefix=PREFIX,
        example_tests=call_suite(([2, 3], 5)),
        split=split,
    )


@dataclass
class ScriptedBackend:
    """`GenerationBackend` answering ``script(prompt, sample_index)``; records every call."""

    script: Callable[[str, int], str]
    calls: list[tuple[list[str], int, int]] = field(default_factory=list)

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, n: int = 1, *, first_sample: int = 0
    ) -> list[list[Completion]]:
        self.calls.append((list(prompts), n, first_sample))
        return [
            [
                Completion(self.script(p, j), tuple(range(3)), FinishReason.STOP)
                for j in range(first_sample, first_sample + n)
            ]
            for p in prompts
        ]

    @property
    def prompts(self) -> list[str]:
        return [p for prompts, n, _ in self.calls for p in prompts for _ in range(n)]

    @property
    def n_generated(self) -> int:
        return sum(len(prompts) * n for prompts, n, _ in self.calls)


@dataclass
class FakeCritic:
    """`ProgramScorer` scoring a program by the first listed snippet it contains."""

    scores: dict[str, float]
    line_scores: list[float] = field(default_factory=list)

    def score(self, task: Task, programs: Sequence[str]) -> list[float]:
        return [next((s for k, s in self.scores.items() if k in p), 0.0) for p in programs]

    def prefix_scores(self, task: Task, program: str) -> list[float]:
        return list(self.line_scores)


@dataclass
class SpyRunner:
    """Wraps an executor and records every test suite it is asked to run."""

    executor: object
    suites: list[TestSuite] = field(default_factory=list)

    def run_batch(
        self, jobs: Sequence[tuple[str, TestSuite]], *, stop_on_first_failure: bool = False
    ) -> list[ExecutionResult]:
        self.suites.extend(suite for _, suite in jobs)
        return self.executor.run_batch(jobs, stop_on_first_failure=stop_on_first_failure)
