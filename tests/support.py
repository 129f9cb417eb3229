"""Small builders shared by tests (importable: `tests/` is on pytest's pythonpath)."""

from __future__ import annotations

from codefalcon.tasks import TestCase, TestStyle, TestSuite


def assert_suite(*codes: str, fn_name: str = "add", setup: str = "") -> TestSuite:
    return TestSuite(TestStyle.ASSERT, tuple(TestCase(code=c) for c in codes), fn_name, setup)


def call_suite(*pairs: tuple[list, object], fn_name: str = "add") -> TestSuite:
    return TestSuite(TestStyle.CALL, tuple(TestCase(input=i, expected=e) for i, e in pairs), fn_name)


def stdio_suite(*pairs: tuple[str, str]) -> TestSuite:
    return TestSuite(TestStyle.STDIO, tuple(TestCase(input=i, expected=e) for i, e in pairs))


ADD_ASSERTS = assert_suite("assert add(2, 3) == 5", "assert candidate(-1, 1) == 0")
ADD_CALLS = call_suite(([2, 3], 5), ([-1, 1], 0))
ADD_STDIO = stdio_suite(("2 3\n", "5\n"), ("-1 1\n", "0\n"))


def close(actual, expected, atol: float = 1e-6) -> None:
    """Exact-arithmetic comparison for hand-computed loss tests: float64, ``atol``, no rtol."""
    import torch

    torch.testing.assert_close(
        torch.as_tensor(actual, dtype=torch.float64),
        torch.as_tensor(expected, dtype=torch.float64),
        atol=atol,
        rtol=0,
    )
