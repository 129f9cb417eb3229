"""The visible example tests of a task: what inference may run to select and repair programs.

Inference strategies see only what a contestant sees. They may run a program on the examples
shown in the problem statement, never on the hidden tests that decide correctness:

- ``task.example_tests`` when the loader attached them (APPS test problems with CodeRL's
  extracted examples, synthetic tasks' doctest examples, MBPP's first test);
- otherwise, for an MBPP-like task (assert tests, no ``completion_prefix``), the first hidden
  test: the MBPP prompt shows it to the model (`codefalcon.models.prompts.example_test_text`),
  so it is visible by construction;
- otherwise none: the strategy cannot filter or repair, and says so.

This is the only place a hidden test is ever used before scoring. Final scoring
(`codefalcon.inference.solve.score_solutions`) always runs the full hidden suite.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from codefalcon.tasks.record import Task, TestStyle, TestSuite


class ExampleSource(str, enum.Enum):
    """Where a task's visible tests came from."""

    EXAMPLE_TESTS = "example_tests"
    """``task.example_tests``: tests the statement shows."""
    FIRST_HIDDEN_TEST = "first_hidden_test"
    """The first hidden test of an MBPP-like task, which its prompt shows."""
    NONE = "none"
    """No visible test: nothing to select or repair with."""


@dataclass(frozen=True)
class VisibleTests:
    """The tests a strategy may run for ``task``, and where they came from."""

    suite: TestSuite | None
    source: ExampleSource

    @property
    def available(self) -> bool:
        return self.suite is not None and len(self.suite) > 0


def visible_tests(task: Task) -> VisibleTests:
    """The example tests inference may run on ``task`` (see the module docstring).

    >>> from codefalcon.tasks.record import TestCase
    >>> suite = TestSuite(TestStyle.ASSERT, (TestCase(code="assert f(1) == 2"),
    ...                                       TestCase(code="assert f(2) == 3")), "f")
    >>> found = visible_tests(Task("Mbpp/1", "Add one.", suite))
    >>> found.source.value, len(found.suite)
    ('first_hidden_test', 1)
    """
    if task.example_tests is not None and len(task.example_tests) > 0:
        return VisibleTests(task.example_tests, ExampleSource.EXAMPLE_TESTS)
    mbpp_like = task.tests.style is TestStyle.ASSERT and not task.completion_prefix
    if mbpp_like and len(task.tests) > 0:
        return VisibleTests(task.tests.head(1), ExampleSource.FIRST_HIDDEN_TEST)
    return VisibleTests(None, ExampleSource.NONE)
