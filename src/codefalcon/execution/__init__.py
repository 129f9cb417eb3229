"""Execution: running untrusted programs against tests, safely and fast.

The executor knows nothing of models: it takes programs and `TestSuite`s and returns verdicts.
"""

from codefalcon.execution.executor import Executor, ExecutorConfig
from codefalcon.execution.result import (
    ExecutionResult,
    TestResult,
    Verdict,
    coderl_code,
    overall_verdict,
)

__all__ = [
    "ExecutionResult",
    "Executor",
    "ExecutorConfig",
    "TestResult",
    "Verdict",
    "coderl_code",
    "overall_verdict",
]
