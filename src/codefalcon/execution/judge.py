"""Turning what a sandbox worker observed into verdicts.

The worker reports observations only (stdout, a return value as data, an exception, an exit
status). The verdict is decided here, in the trusted parent, against expected values that never
entered the sandbox.
"""

from __future__ import annotations

import re
from typing import Any

from codefalcon.execution.compare import STDOUT_COMPARATORS, call_value
from codefalcon.execution.result import TestResult, Verdict
from codefalcon.execution.values import decode, shape_problem
from codefalcon.tasks.record import TestCase, TestStyle

_MEMORY_ERRORS = {"MemoryError"}
_CODE_STYLES = (TestStyle.ASSERT, TestStyle.PROGRAM)  # the test is code, not an input


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
        "input": _cut(case.code if style in _CODE_STYLES else case.input, detail),
        "expected": None if style in _CODE_STYLES else _cut(case.expected, detail),
        "error_type": error.get("type"),
        "message": _cut(error.get("message"), detail),
        "line": error.get("line"),
    }
    if obs.get("compile_seconds") is not None:
        base["compile_seconds"] = obs["compile_seconds"]
    if status == "timeout":
        return TestResult(verdict=Verdict.TIMEOUT, **{**base, "message": "time limit exceeded"})
    if status == "memory":
        message = "memory limit exceeded by the program's processes together"
        return TestResult(verdict=Verdict.MEMORY_EXCEEDED, **{**base, "message": message})
    if status == "harness_error" and style is TestStyle.ASSERT:
        # Only the test driver reports this (a test the harness cannot express); no program
        # can reach the driver's status pipe.
        return TestResult(verdict=Verdict.INFRASTRUCTURE_ERROR, **base)
    if status not in _KNOWN[style]:
        # A report we do not expect is charged to the program: it may have caused it.
        return _charged(obs, base)
    if status == "compile_error":
        return TestResult(verdict=Verdict.COMPILE_ERROR, **base)
    if style is TestStyle.STDIO:
        return _judge_stdio(case, obs, base, compare, tol, detail)
    if style is TestStyle.CALL:
        return _judge_call(case, obs, base, tol, detail)
    if style is TestStyle.PROGRAM:
        return _judge_program(obs, base, detail)
    return _judge_assert(obs, base, detail)


_KNOWN = {
    TestStyle.STDIO: {"ok", "exit", "raised", "died", "output_limit", "compile_error"},
    TestStyle.CALL: {"returned", "raised", "died"},
    TestStyle.ASSERT: {"passed", "failed", "raised", "died"},
    TestStyle.PROGRAM: {"ran", "output_limit", "compile_error"},
}

# How a failed assertion shows on stderr: our C++ and JavaScript harnesses, Java's AssertionError.
_ASSERTION = ("Assertion failed", "java.lang.AssertionError")


def _charged(obs: dict[str, Any], base: dict[str, Any]) -> TestResult:
    status = obs.get("status")
    what = "the sandbox worker failed" if status == "worker_error" else "the harness got an invalid report"
    return TestResult(
        verdict=Verdict.RUNTIME_ERROR,
        **{
            **base,
            "error_type": base["error_type"] or "HarnessError",
            "message": _cut(f"{what} while the program ran ({status}): {base['message'] or ''}", 300),
        },
    )


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
    why = shape_problem(obs.get("value"))
    try:
        if why:
            raise ValueError(why)
        value = decode(obs.get("value"))
    except (ValueError, TypeError, KeyError, ArithmeticError, RecursionError) as e:
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


def _judge_program(obs: dict[str, Any], base: dict[str, Any], detail: int) -> TestResult:
    """A compiled test program: passed only if it exited 0 *and* the harness saw the tests end."""
    stderr = obs.get("stderr") if isinstance(obs.get("stderr"), str) else ""
    base = {**base, "actual": _cut(obs.get("stdout"), detail)}
    if obs.get("status") == "output_limit":
        return TestResult(verdict=Verdict.WRONG_ANSWER, **{**base, "message": "output limit exceeded"})
    if obs.get("exit_code") == 0 and obs.get("completed") is True:
        return TestResult(verdict=Verdict.PASSED, **base)
    if obs.get("exit_code") == 0:
        message = "the program exited before its tests finished"
        return TestResult(
            verdict=Verdict.WRONG_ANSWER, **{**base, "error_type": "EarlyExit", "message": message}
        )
    lines = [line for line in stderr.splitlines() if line.strip()]
    # The error line itself ("Error: Assertion failed", "...java.lang.AssertionError"), not a
    # source line that node quotes above it.
    said = [line.strip() for line in lines if any(a in line for a in _ASSERTION)]
    failed = next(
        (line for line in said if re.match(r"(\w*Error: |Assertion failed|Exception in)", line)), None
    )
    failed = failed or (said[0] if said else None)
    if failed is not None:
        return TestResult(verdict=Verdict.WRONG_ANSWER, **{**base, "message": _cut(failed, detail)})
    sig = obs.get("signal")
    what = f"killed by {sig}" if sig else f"exited with status {obs.get('exit_code')}"
    message = _cut(f"{what}: {lines[-1]}" if lines else what, detail)
    return TestResult(
        verdict=Verdict.RUNTIME_ERROR, **{**base, "error_type": "RuntimeError", "message": message}
    )


def load_failure_verdict(reply: dict[str, Any]) -> Verdict:
    """Verdict for every test when the program could not even be loaded."""
    kind = reply.get("kind")
    if kind == "compile_error":
        return Verdict.COMPILE_ERROR
    if kind == "timeout":
        return Verdict.TIMEOUT
    if kind == "load_error":
        return _error_verdict(reply.get("error"))
    if kind == "memory":
        return Verdict.MEMORY_EXCEEDED
    # The worker failing while the program loaded (or a report we do not know) is charged
    # to the program, which may have caused it.
    return Verdict.RUNTIME_ERROR
