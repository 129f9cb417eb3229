"""Static-analysis rewards: lint density (ruff), cyclomatic complexity and maintainability (radon).

Each maps a program's text to a value in [0, 1] (1 is best), deterministically and cheaply (no
program is run). A program that does not parse gets 0.0 from all three: there is nothing to
analyse, and its unit-test reward already says it failed. Normalisations:

- ``ruff``: ``1 / (1 + 10 d)`` where ``d`` is violations per non-blank line, with a fixed rule
  selection (`RUFF_RULES`) and ``--isolated`` so no user or project config changes the result.
  0 violations give 1.0, one per ten lines 0.5, one per line about 0.09; never quite 0.
- ``complexity``: ``min(1, 5 / c)`` where ``c`` is the worst cyclomatic complexity of any function,
  method or the module-level code (radon). Up to 5 (radon's rank A) gives 1.0, 10 gives 0.5.
- ``maintainability``: radon's maintainability index (0-100, multi-line strings counted as
  comments) divided by 100.

ruff runs as a subprocess (``ruff check --output-format json --stdin-filename x.py -``); if it
cannot run, the ruff reward is missing (None), not a penalty.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from codefalcon.feedback.record import Reward
from codefalcon.tasks.reading import PARSE_LOCK, parse_python

RUFF_RULES: tuple[str, ...] = ("E", "W", "F", "B", "SIM", "C4", "N")
"""pycodestyle, pyflakes, bugbear, simplify, comprehensions, naming: style a reviewer would flag."""
RUFF_IGNORE: tuple[str, ...] = ("W292",)
"""A missing final newline is an artefact of completion extraction, not the model's style."""
RUFF_LINE_LENGTH = 100
RUFF_DENSITY_SCALE = 10.0
"""Violations per line at which the ruff reward halves is ``1 / RUFF_DENSITY_SCALE``."""
SIMPLE_COMPLEXITY = 5
"""Cyclomatic complexity up to which a program counts as simple (radon's rank A)."""


def parse_error(program: str) -> str | None:
    """Why ``program`` is not valid Python, or None if it parses.

    >>> parse_error("def f(:\\n"), parse_error("x = 1\\n")
    ('does not parse: SyntaxError at line 1: invalid syntax', None)
    """
    try:
        parse_python(program)
    except SyntaxError as error:
        return f"does not parse: SyntaxError at line {error.lineno}: {error.msg}"
    except (ValueError, RecursionError, MemoryError) as error:  # null bytes, absurd nesting
        return f"does not parse: {type(error).__name__}"
    return None


def ruff_command() -> str | None:
    """Path of the ruff binary: the one shipped with the ``ruff`` Python package, else on PATH."""
    try:
        from ruff.__main__ import find_ruff_bin  # the wheel's own locator; works inside venvs

        return str(find_ruff_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("ruff")


def ruff_violations(program: str, ruff: str | None = None, timeout: float = 20.0) -> list[dict[str, Any]]:
    """ruff's diagnostics for ``program`` (JSON records with ``code``, ``message``, ``location``).

    Raises ``RuntimeError`` if ruff is missing, times out or fails (exit status 2).
    """
    binary = ruff or ruff_command()
    if binary is None:
        raise RuntimeError("ruff not found (pip install ruff)")
    argv = [binary, "check", "--isolated", "--no-cache", "--output-format", "json"]
    argv += ["--select", ",".join(RUFF_RULES), "--ignore", ",".join(RUFF_IGNORE)]
    argv += ["--line-length", str(RUFF_LINE_LENGTH), "--target-version", "py311"]
    argv += ["--stdin-filename", "x.py", "-"]
    try:
        done = subprocess.run(argv, input=program.encode(), capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RuntimeError(f"ruff did not run: {error}") from None
    if done.returncode not in (0, 1):  # 1 means "violations found"
        raise RuntimeError(f"ruff failed ({done.returncode}): {done.stderr.decode(errors='replace')[:300]}")
    return json.loads(done.stdout or b"[]")


def ruff_reward(program: str, ruff: str | None = None) -> Reward:
    """``1 / (1 + 10 d)`` for ``d`` ruff violations per non-blank line; 0.0 if it does not parse.

    >>> ruff_reward("def add(a, b):\\n    return a + b\\n")
    Reward(value=1.0, explanation='no ruff violations in 2 lines')
    >>> ruff_reward("import os\\n" + "".join(f"x{i} = {i}\\n" for i in range(9)))
    Reward(value=0.5, explanation='1 ruff violation in 10 lines: F401')
    """
    error = parse_error(program)
    if error:
        return Reward(0.0, error)
    try:
        violations = ruff_violations(program, ruff)
    except RuntimeError as failure:
        return Reward(None, str(failure))
    lines = max(1, sum(1 for line in program.splitlines() if line.strip()))
    if not violations:
        return Reward(1.0, f"no ruff violations in {lines} lines")
    value = 1.0 / (1.0 + RUFF_DENSITY_SCALE * len(violations) / lines)
    codes = ", ".join(sorted({str(v.get("code")) for v in violations}))
    noun = "violation" if len(violations) == 1 else "violations"
    return Reward(value, f"{len(violations)} ruff {noun} in {lines} lines: {codes}")


def complexity_reward(program: str) -> Reward:
    """``min(1, 5 / c)`` for the worst cyclomatic complexity ``c`` (radon); 0.0 if it does not parse.

    >>> complexity_reward("def sign(x):\\n    return 1 if x > 0 else -1\\n")
    Reward(value=1.0, explanation='worst cyclomatic complexity 2 (sign)')
    """
    from radon.visitors import ComplexityVisitor  # what radon.complexity.cc_visit wraps

    error = parse_error(program)
    if error:
        return Reward(0.0, error)
    with PARSE_LOCK:  # radon parses with ast; see PARSE_LOCK
        visitor = ComplexityVisitor.from_code(program)
    # Functions and methods, not classes: a class's score is derived from its methods.
    scores = [(visitor.complexity, "module level")]
    scores += [(b.complexity, b.fullname) for b in visitor.blocks if not hasattr(b, "methods")]
    worst, where = max(scores, key=lambda s: s[0])
    value = min(1.0, SIMPLE_COMPLEXITY / worst)
    return Reward(value, f"worst cyclomatic complexity {worst} ({where})")


def maintainability_reward(program: str) -> Reward:
    """radon's maintainability index / 100; 0.0 if it does not parse.

    >>> maintainability_reward("x = 1\\n")
    Reward(value=1.0, explanation='maintainability index 100.0')
    """
    from radon.metrics import mi_visit

    error = parse_error(program)
    if error:
        return Reward(0.0, error)
    with PARSE_LOCK:
        index = float(mi_visit(program, multi=True))
    return Reward(min(1.0, max(0.0, index / 100.0)), f"maintainability index {index:.1f}")
