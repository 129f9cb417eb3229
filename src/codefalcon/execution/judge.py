"""Turning what a sandbox worker observed into verdicts.

The worker reports observations only (stdout, a return value as data, an exception, an exit
status). The verdict is decided here, in the trusted parent, against expected values that never
entered the sandbox.
"""

from __future__ import annotations

from typing import Any

from codefalcon.execution.compare import STDOUT_COMPARATORS, call_value
from codefalcon.execution.result import TestResult, Verdict
from codefalcon.execution.values import decode
from codefalcon.tasks.record import TestCase, TestStyle

_MEMORY_ERRORS = {"MemoryError"}


def _cut(text: Any, limit: int) -> str | None:
    if text is None:
        return None
    s = text if isinstance(text, str) else repr(text)
    return s if len(s) <= limit else s[:limit] + f"... [{len(s) - limit} more chars]"


def _error_verdict(error: dict[str, Any] | None) -> Verdict:
    if error and error.get("type") in _MEMORY_ERRORS:
        return Verdict.MEMORY_EXCEEDED
    return Verdict.RUNTIME_ERROR


def judge_test(
    index: int,
    style: TestStyle,
    case: TestCase,
    obs: dict[str, Any],
    *,
    compare: str = "exact",
    tol: float | None = None,
    detail: int = 300,
) -> TestResult:
    """The verdict of one test from the worker's observation ``obs``."""
    status = obs.get("status")
    error = obs.get("error") or {}
    base: dict[str, Any] = {
        "index": index,
        "seconds": float(obs.get("seconds") or 0.0),
        "input": _cut(case.input if style is not TestStyle.ASSERT else case.code, detail),
        "expected": _cut(case.expected, detail) if style is not TestStyle.ASSERT else None,
        "error_type": error.get("type"),
        "message": _cut(error.get("message"), detail),
        "line": error.get("line"),
    }
    if status == "timeout":
        return TestResult(verdict=Verdict.TIMEOUT, **{**base, "message": "time limit exceeded"})
    if status == "harness_error" or status is None:
        return TestResult(verdict=Verdict.INFRASTRUCTURE_ERROR, **base)
    if status == "compile_error":
        return TestResult(verdict=Verdict.COMPILE_ERROR, **base)
    if style is TestStyle.STDIO:
        return _judge_stdio(case, obs, base, compare, tol, detail)
    if style is TestStyle.CALL:
        return _judge_call(case, obs, base, tol, detail)
    return _judge_assert(obs, base, detail)


def _died(obs: dict[str, Any], base: dict[str, Any]) -> TestResult:
    sig = obs.get("signal")
    if sig == "SIGXCPU":
        return TestResult(verdict=Verdict.TIMEOUT, **{**base, "message": "CPU time limit exceeded"})
    what = f"killed by {sig}" if sig else f"exited with status {obs.get('exit_code')}"
    msg = base["message"] or f"the program ended before finishing ({what})"
    return TestResult(
        verdict=Verdict.RUNTIME_ERROR,
        **{**base, "error_type": base["error_type"] or "ProgramExited", "message": msg},
    )


def _judge_stdio(case, obs, base, compare, tol, detail) -> TestResult:
    status = obs.get("status")
    actual = obs.get("stdout", "")
    base = {**base, "actual": _cut(actual, detail)}
    if status == "output_limit":
        return TestResult(verdict=Verdict.WRONG_ANSWER, **{**base, "message": "output limit exceeded"})
    if status in ("raised", "exit"):
        return TestResult(verdict=_error_verdict(obs.get("error")), **base)
    if status == "died" and obs.get("exit_code") != 0:
        return _died(obs, base)
    # "ok", or an os._exit(0) after writing: a script's output is all that counts.
    same = STDOUT_COMPARATORS[compare](actual, str(case.expected), tol)
    return TestResult(verdict=Verdict.PASSED if same else Verdict.WRONG_ANSWER, **base)


def _judge_call(case, obs, base, tol, detail) -> TestResult:
    status = obs.get("status")
    if status == "raised":
        return TestResult(verdict=_error_verdict(obs.get("error")), **base)
    if status != "returned":
        return _died(obs, base)
    try:
        value = decode(obs.get("value"))
    except (ValueError, TypeError, KeyError) as e:
        return TestResult(
            verdict=Verdict.WRONG_ANSWER, **{**base, "message": f"undecodable return value: {e}"}
        )
    base = {**base, "actual": _cut(repr(value), detail)}
    ok = call_value(value, case.expected, tol)
    return TestResult(verdict=Verdict.PASSED if ok else Verdict.WRONG_ANSWER, **base)


def _judge_assert(obs, base, detail) -> TestResult:
    status = obs.get("status")
    last = obs.get("last_call") or {}
    error = obs.get("error") or {}
    base = {**base, "actual": _cut(last.get("result"), detail)}
    if last.get("call"):
        base["input"] = _cut(last["call"], detail)
    if error.get("test_line"):
        base["expected"] = _cut(error["test_line"], detail)
    if status == "passed":
        return TestResult(verdict=Verdict.PASSED, **base)
    if status == "failed":
        return TestResult(verdict=Verdict.WRONG_ANSWER, **base)
    if status == "raised":
        return TestResult(verdict=_error_verdict(error), **base)
    return _died(obs, base)


def load_failure_verdict(reply: dict[str, Any]) -> Verdict:
    """Verdict for every test when the program could not even be loaded."""
    kind = reply.get("kind")
    if kind == "compile_error":
        return Verdict.COMPILE_ERROR
    if kind == "timeout":
        return Verdict.TIMEOUT
    if kind == "load_error":
        return _error_verdict(reply.get("error"))
    return Verdict.INFRASTRUCTURE_ERROR
