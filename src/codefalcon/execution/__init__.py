"""Execution: running untrusted programs against tests, safely and fast.

The executor knows nothing of models: it takes programs and `TestSuite`s and returns verdicts.
`open_executor(config)` gives the local `Executor` or, with ``backend="ray"``, a `RayExecutor`
with the same interface over a Ray cluster (docs/scaling.md).
"""

from codefalcon.execution.executor import Executor, ExecutorConfig, open_executor
from codefalcon.execution.ray_executor import BatchReport, NoNodesLeft, RayExecutor
from codefalcon.execution.result import (
    ExecutionResult,
    TestResult,
    Verdict,
    coderl_code,
    overall_verdict,
)

__all__ = [
    "BatchReport",
    "ExecutionResult",
    "Executor",
    "ExecutorConfig",
    "NoNodesLeft",
    "RayExecutor",
    "TestResult",
    "Verdict",
    "coderl_code",
    "open_executor",
    "overall_verdict",
]
