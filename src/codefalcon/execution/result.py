"""What the executor reports: a verdict per test and one for the whole program."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Verdict(str, enum.Enum):
    """Outcome of one test (or of a whole program: its first failing test's verdict).

    ``infrastructure_error`` means the harness failed, not the program; it is never scored as a
    wrong answer (rewards treat it as missing).
    """

    PASSED = "passed"
    WRONG_ANSWER = "wrong_answer"
    RUNTIME_ERROR = "runtime_error"
    TIMEOUT = "timeout"
    MEMORY_EXCEEDED = "memory_exceeded"
    COMPILE_ERROR = "compile_error"
    INFRASTRUCTURE_ERROR = "infrastructure_error"


# CodeRL's outcome codes (-2 compile error, -1 runtime error incl. timeout, False failed, True
# passed); None for harness failures, which CodeRL never had to name.
_CODERL_CODE: dict[Verdict, int | bool | None] = {
    Verdict.COMPILE_ERROR: -2,
    Verdict.RUNTIME_ERROR: -1,
    Verdict.TIMEOUT: -1,
    Verdict.MEMORY_EXCEEDED: -1,
    Verdict.WRONG_ANSWER: False,
    Verdict.PASSED: True,
    Verdict.INFRASTRUCTURE_ERROR: None,
}


def coderl_code(verdict: Verdict) -> int | bool | None:
    """CodeRL's outcome code for a verdict: -2, -1, False, True (None for infrastructure errors)."""
    return _CODERL_CODE[verdict]


@dataclass(frozen=True)
class TestResult:
    """The verdict of one test case, with what is needed to explain a failure.

    Text fields are truncated (see ``ExecutorConfig.max_detail_chars``). ``line`` is the line of
    the program where an exception was raised, when known.
    """

    __test__ = False

    index: int
    verdict: Verdict
    error_type: str | None = None
    message: str | None = None
    line: int | None = None
    input: str | None = None
    expected: str | None = None
    actual: str | None = None
    seconds: float = 0.0
    compile_seconds: float | None = None
    """Of ``seconds``, the time spent compiling (C++/Java/JavaScript; 0 from the cache)."""

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASSED

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if v is not None}
        d["verdict"] = self.verdict.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TestResult:
        return cls(**{**d, "verdict": Verdict(d["verdict"])})


@dataclass(frozen=True)
class ExecutionResult:
    """All test results of one program against one suite.

    ``tests`` may be shorter than ``n_tests`` when the run stopped at the first failure.
    ``verdict`` is ``passed`` only when every one of the ``n_tests`` tests ran and passed.
    """

    verdict: Verdict
    tests: tuple[TestResult, ...]
    n_tests: int
    seconds: float = 0.0
    cached: bool = field(default=False, compare=False)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASSED

    @property
    def n_passed(self) -> int:
        return sum(t.passed for t in self.tests)

    @property
    def pass_ratio(self) -> float:
        """Fraction of the suite's tests that passed (tests not run count as not passed)."""
        return self.n_passed / self.n_tests if self.n_tests else 0.0

    @property
    def coderl_code(self) -> int | bool | None:
        return coderl_code(self.verdict)

    @property
    def first_failure(self) -> TestResult | None:
        return next((t for t in self.tests if not t.passed), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "n_tests": self.n_tests,
            "seconds": round(self.seconds, 6),
            "tests": [t.to_dict() for t in self.tests],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExecutionResult:
        return cls(
            verdict=Verdict(d["verdict"]),
            tests=tuple(TestResult.from_dict(t) for t in d["tests"]),
            n_tests=d["n_tests"],
            seconds=d.get("seconds", 0.0),
        )


def overall_verdict(tests: list[TestResult] | tuple[TestResult, ...], n_tests: int) -> Verdict:
    """The program's verdict: its first real failure; infrastructure errors only if nothing failed.

    A program that failed a test is wrong whatever the harness did elsewhere; a program whose only
    problems were harness failures gets ``infrastructure_error`` so it is not scored at all.
    """
    for t in tests:
        if t.verdict not in (Verdict.PASSED, Verdict.INFRASTRUCTURE_ERROR):
            return t.verdict
    if any(t.verdict is Verdict.INFRASTRUCTURE_ERROR for t in tests):
        return Verdict.INFRASTRUCTURE_ERROR
    if len(tests) < n_tests:
        # Not every test ran, and none failed: only a harness stop can cause this.
        return Verdict.INFRASTRUCTURE_ERROR
    return Verdict.PASSED
