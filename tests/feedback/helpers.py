"""Shared pieces of the feedback tests: hand-built execution results and a small task.

Imported as `feedback.helpers` (tests/ is on pytest's pythonpath); not a conftest, since
`conftest` already names tests/conftest.py there.
"""

from __future__ import annotations

from codefalcon.execution import ExecutionResult, TestResult, Verdict
from codefalcon.tasks import Task
from support import ADD_ASSERTS


def result(verdict: Verdict, n_tests: int = 2, n_passed: int = 0) -> ExecutionResult:
    """``n_passed`` passing tests, then (unless passed) one test with ``verdict``."""
    tests = [TestResult(i, Verdict.PASSED) for i in range(n_passed)]
    if verdict is not Verdict.PASSED:
        tests.append(
            TestResult(n_passed, verdict, error_type="E" if verdict is not Verdict.WRONG_ANSWER else None)
        )
    return ExecutionResult(verdict, tuple(tests), n_tests)


ADD_TASK = Task(
    task_id="toy/add",
    prompt="def add(a, b):\n    '''Return a + b.'''\n",
    tests=ADD_ASSERTS,
    entry_point="add",
    completion_prefix="def add(a, b):\n    '''Return a + b.'''\n",
)
GOOD_BODY = "    return a + b\n"
WRONG_BODY = "    return a - b\n"
