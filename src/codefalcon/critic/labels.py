"""The critic's classes: CodeRL's four test outcomes, and the binary passed / not-passed variant.

A critic predicts one class per program (and one per program prefix, see `codefalcon.critic.model`).
The four classes, in CodeRL's order, are compile error, runtime error (timeouts and memory limits
included), failed test (a wrong answer) and passed. The binary variant keeps only "passed" versus
everything else; CodeRL used it to rank samples at inference time.

Harness failures (``infrastructure_error``) have no class: they say nothing about the program, so
they are left out of training instead of being labelled as any outcome.

In both variants "passed" is the last class, so ``num_classes - 1`` is always the index of the
probability that a program (prefix) passes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from codefalcon.execution.result import ExecutionResult, Verdict


class Outcome(enum.IntEnum):
    """A program's test outcome; the value is its class index in the four-class critic.

    >>> [o.name for o in Outcome]
    ['COMPILE_ERROR', 'RUNTIME_ERROR', 'FAILED_TEST', 'PASSED']
    """

    COMPILE_ERROR = 0
    RUNTIME_ERROR = 1
    FAILED_TEST = 2
    PASSED = 3

    @property
    def label(self) -> str:
        """Lower-case name used in files and metrics: ``compile_error`` ... ``passed``."""
        return self.name.lower()


OUTCOME_LABELS: tuple[str, ...] = tuple(o.label for o in Outcome)
"""Class names of the four-class critic, by class index."""

BINARY_LABELS: tuple[str, ...] = ("not_passed", "passed")
"""Class names of the binary critic, by class index."""

_OUTCOME_OF_VERDICT: Mapping[Verdict, Outcome | None] = MappingProxyType(
    {
        Verdict.COMPILE_ERROR: Outcome.COMPILE_ERROR,
        Verdict.RUNTIME_ERROR: Outcome.RUNTIME_ERROR,
        Verdict.TIMEOUT: Outcome.RUNTIME_ERROR,
        Verdict.MEMORY_EXCEEDED: Outcome.RUNTIME_ERROR,
        Verdict.WRONG_ANSWER: Outcome.FAILED_TEST,
        Verdict.PASSED: Outcome.PASSED,
        Verdict.INFRASTRUCTURE_ERROR: None,
    }
)


def outcome_of_verdict(verdict: Verdict | str) -> Outcome | None:
    """The outcome class of a program verdict; None for ``infrastructure_error`` (not trainable).

    >>> outcome_of_verdict("timeout"), outcome_of_verdict(Verdict.INFRASTRUCTURE_ERROR)
    (<Outcome.RUNTIME_ERROR: 1>, None)
    """
    return _OUTCOME_OF_VERDICT[Verdict(verdict)]


def outcome_of_result(result: ExecutionResult) -> Outcome | None:
    """The outcome class of an executed program (its overall verdict); None if the harness failed."""
    return outcome_of_verdict(result.verdict)


def outcome_of_coderl_code(code: int | bool) -> Outcome:
    """The outcome for one of CodeRL's codes: -2 compile error, -1 runtime error, False, True.

    >>> outcome_of_coderl_code(-2), outcome_of_coderl_code(True)
    (<Outcome.COMPILE_ERROR: 0>, <Outcome.PASSED: 3>)
    """
    # bool before int: True == 1 and False == 0 as ints, and CodeRL's codes rely on the bools.
    if code is True:
        return Outcome.PASSED
    if code is False:
        return Outcome.FAILED_TEST
    codes = {-2: Outcome.COMPILE_ERROR, -1: Outcome.RUNTIME_ERROR}
    if code not in codes:
        raise ValueError(f"not a CodeRL outcome code: {code!r} (expected -2, -1, False or True)")
    return codes[code]


def class_index(outcome: Outcome, binary: bool) -> int:
    """The class index of ``outcome`` in a four-class (``binary=False``) or binary critic.

    >>> class_index(Outcome.FAILED_TEST, binary=False), class_index(Outcome.FAILED_TEST, binary=True)
    (2, 0)
    """
    if binary:
        return int(outcome is Outcome.PASSED)
    return int(outcome)


def class_labels(binary: bool) -> tuple[str, ...]:
    """Class names by index for a critic of the given variant."""
    return BINARY_LABELS if binary else OUTCOME_LABELS
