"""Comparators: is the observed output the expected one?

Named functions, chosen by name in `ExecutorConfig.compare`, never inside the run loop, so a
benchmark's leniency is visible in its config rather than hidden in the harness.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

StdoutComparator = Callable[[str, str, float | None], bool]


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def stdout_exact(actual: str, expected: str, tol: float | None = None) -> bool:
    """Equal after removing trailing whitespace on each line and trailing blank lines.

    >>> stdout_exact("1 2 \\n3\\n\\n", "1 2\\n3")
    True
    >>> stdout_exact("1  2", "1 2")
    False
    """
    if tol is not None:
        return stdout_tokens(actual, expected, tol)
    return _lines(actual) == _lines(expected)


def _token_equal(a: str, e: str, tol: float | None) -> bool:
    if a == e:
        return True
    if tol is None:
        return False
    try:
        x, y = float(a), float(e)
    except ValueError:
        return False
    return math.isclose(x, y, rel_tol=tol, abs_tol=tol)


def stdout_tokens(actual: str, expected: str, tol: float | None = 1e-6) -> bool:
    """Equal line by line as whitespace-separated tokens; numbers within ``tol`` (abs or rel).

    >>> stdout_tokens("0.3333333\\n", "0.33333333")
    True
    """
    a, e = _lines(actual), _lines(expected)
    if len(a) != len(e):
        return False
    for la, le in zip(a, e, strict=True):
        ta, te = la.split(), le.split()
        if len(ta) != len(te) or not all(_token_equal(x, y, tol) for x, y in zip(ta, te, strict=True)):
            return False
    return True


def stdout_apps(actual: str, expected: str, tol: float | None = None) -> bool:
    """APPS' lenient rule: all whitespace is a separator, and numbers match within 1e-6.

    Only used when asked for by name (``compare: apps``), as APPS' own harness does.

    >>> stdout_apps("1\\n2 3", "1 2\\n3")
    True
    """
    ta, te = actual.split(), expected.split()
    if len(ta) != len(te):
        return False
    return all(_token_equal(x, y, tol or 1e-6) for x, y in zip(ta, te, strict=True))


STDOUT_COMPARATORS: dict[str, StdoutComparator] = {
    "exact": stdout_exact,
    "tokens": stdout_tokens,
    "apps": stdout_apps,
}


def _as_lists(x: Any) -> Any:
    # Expected values come from JSON, which has no tuples.
    if isinstance(x, (list, tuple)):
        return [_as_lists(i) for i in x]
    if isinstance(x, dict):
        return {k: _as_lists(v) for k, v in x.items()}
    return x


def _close(a: Any, e: Any, tol: float | None) -> bool:
    numbers = isinstance(a, (int, float)) and isinstance(e, (int, float))
    if tol is not None and numbers and (type(a) is float or type(e) is float):
        return math.isclose(a, e, rel_tol=tol, abs_tol=tol)
    if isinstance(a, list) and isinstance(e, list):
        return len(a) == len(e) and all(_close(x, y, tol) for x, y in zip(a, e, strict=True))
    if isinstance(a, dict) and isinstance(e, dict):
        return a.keys() == e.keys() and all(_close(a[k], e[k], tol) for k in a)
    return a == e


def call_value(actual: Any, expected: Any, tol: float | None = None) -> bool:
    """Return-value comparison for call-based tests (APPS' rules).

    Tuples compare as lists (JSON has no tuples), and APPS' habit of wrapping a single expected
    value in a one-element list is accepted. ``actual`` must be decoded data (`values.decode`),
    so no program-defined ``__eq__`` can take part.

    >>> call_value((1, 2), [1, 2]), call_value(5, [5]), call_value("5", 5)
    (True, True, False)
    """
    a = _as_lists(actual)
    if _close(a, expected, tol):
        return True
    return isinstance(expected, list) and len(expected) == 1 and _close(a, expected[0], tol)
