"""PPOCoder's rewards (Shojaee et al. 2023): compiler signal, AST match, data-flow match.

PPOCoder's reward is ``R = R_cs + R_ast + R_dfg - beta KL``: ``R_cs`` +1 if the program compiles
and -1 if not, ``R_ast`` and ``R_dfg`` CodeBLEU's syntactic and data-flow match against the
reference program (`codefalcon.feedback.code_match`). The KL term belongs to the trainer
(`codefalcon.rl`), not here.

Here the three signals are auxiliary components of `codefalcon.feedback.compose`, so the
unit-test reward stays the dominant term: a failing program never outscores a passing one, however
close it is to the reference. ``compose`` takes components in [0, 1], so the compiler signal
enters as ``(R_cs + 1) / 2`` (1 compiles, 0 does not). With equal weights (PPOCoder adds the three
unweighted) the auxiliary mean is ``a = ((R_cs + 1) / 2 + R_ast + R_dfg) / 3`` over the components
present, and ``total = correctness + aux_share * (1 - fail_ceiling) * a``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from codefalcon.execution.result import ExecutionResult, Verdict
from codefalcon.feedback.code_match import ast_match, dataflow_match, language_name
from codefalcon.feedback.compose import compose
from codefalcon.feedback.record import Reward, RewardBreakdown
from codefalcon.feedback.trl_rewards import (
    ProgramBuilder,
    TaskSource,
    UnitTestReward,
    program_from_completion,
    programs_of,
    totals_logged,
)
from codefalcon.feedback.unit_tests import UNIT_TEST_RULES, UnitTestRule
from codefalcon.tasks.reading import PARSE_LOCK
from codefalcon.tasks.record import Task

PPOCODER_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"compiler": 1.0, "ast_match": 1.0, "dataflow_match": 1.0}
)
"""PPOCoder sums its three signals unweighted."""


def compiler_reward(verdict: Verdict | ExecutionResult) -> float | None:
    """PPOCoder's compiler signal: -1.0 for a ``compile_error``, +1.0 for any other verdict.

    For every language the executor reports what the compiler said (Python's ``SyntaxError``
    included) as ``compile_error``; this function never runs a compiler. A harness failure
    (``infrastructure_error``) says nothing about the program: None.

    >>> compiler_reward(Verdict.COMPILE_ERROR), compiler_reward(Verdict.WRONG_ANSWER)
    (-1.0, 1.0)
    """
    if isinstance(verdict, ExecutionResult):
        verdict = verdict.verdict
    if verdict is Verdict.INFRASTRUCTURE_ERROR:
        return None
    return -1.0 if verdict is Verdict.COMPILE_ERROR else 1.0


def python_compiler_reward(program: str) -> float:
    """The compiler signal for Python text without running it: +1.0 if ``compile()`` accepts it.

    ``compile`` also rejects what ``ast.parse`` lets through (``return`` outside a function).

    >>> python_compiler_reward("def f():\\n    return 1\\n"), python_compiler_reward("return 1\\n")
    (1.0, -1.0)
    """
    with PARSE_LOCK, warnings.catch_warnings():  # compile builds an AST too: see PARSE_LOCK
        warnings.simplefilter("ignore")
        try:
            compile(program, "<program>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError):  # ValueError: null bytes
            return -1.0
    return 1.0


def ppocoder_components(
    program: str, reference: str | None, language: str, result: ExecutionResult
) -> dict[str, Reward]:
    """The three signals as `compose` components in [0, 1] (compiler as ``(R_cs + 1) / 2``).

    Without a reference the two matches are missing (None), as is the data-flow match when the
    reference has no data flow.
    """
    signal = compiler_reward(result)
    compiler = (
        Reward(None, "compiler signal unknown: the harness failed")
        if signal is None
        else Reward((signal + 1.0) / 2.0, "compiles" if signal > 0 else "does not compile")
    )
    if reference is None:
        missing = Reward(None, "no reference program")
        return {"compiler": compiler, "ast_match": missing, "dataflow_match": missing}
    syntax = ast_match(program, reference, language)
    flow = dataflow_match(program, reference, language)
    return {
        "compiler": compiler,
        "ast_match": Reward(syntax, f"{syntax:.0%} of the reference's AST subtrees matched"),
        "dataflow_match": Reward(None, "the reference has no data flow")
        if flow is None
        else Reward(flow, f"{flow:.0%} of the reference's data-flow edges matched"),
    }


def ppocoder_reward(
    result: ExecutionResult,
    program: str,
    reference: str | None,
    language: str,
    *,
    rule: UnitTestRule = UNIT_TEST_RULES["binary"],
    weights: Mapping[str, float] = PPOCODER_WEIGHTS,
    aux_share: float = 0.5,
) -> RewardBreakdown:
    """Unit tests plus PPOCoder's three signals, composed so that tests dominate.

    >>> from codefalcon.execution import TestResult
    >>> ok = ExecutionResult(Verdict.PASSED, (TestResult(0, Verdict.PASSED),), n_tests=1)
    >>> ref = "def f(a):\\n    b = a + 1\\n    return b\\n"
    >>> ppocoder_reward(ok, ref, ref, "python").total  # 1 + 0.5 * (1 - 0) * (1 + 1 + 1) / 3
    1.5
    """
    components = ppocoder_components(program, reference, language, result)
    return compose(result, components, weights, rule=rule, aux_share=aux_share)


def _reference(task: Task | None, columns: Mapping[str, Any], column: str, i: int) -> str | None:
    if column in columns and columns[column][i] is not None:
        return str(columns[column][i])
    return task.solutions[0] if task is not None and task.solutions else None


def _language(task: Task | None, default: str) -> str:
    return task.tests.language if task is not None else default


class CodeMatchReward:
    """``ast_match`` or ``dataflow_match`` against each row's reference as a TRL reward in [0, 1].

    The reference is the ``reference_column`` column if the dataset has one, else the row's
    task's first solution; rows with neither (or, for data flow, a reference without data flow)
    get None. The language is the task's test language, else ``language``. Usable on its own or
    as an auxiliary of `ComposedReward`.
    """

    def __init__(
        self,
        metric: str,
        tasks: TaskSource | Mapping[str, Task] | Iterable[Task] | None = None,
        *,
        language: str = "python",
        reference_column: str = "reference",
        program_from: ProgramBuilder = program_from_completion,
    ) -> None:
        if metric not in ("ast_match", "dataflow_match"):
            raise ValueError(f"metric must be 'ast_match' or 'dataflow_match', not {metric!r}")
        self.metric = metric
        self.source = tasks if isinstance(tasks, TaskSource) else TaskSource(tasks)
        self.language = language_name(language)
        self.reference_column = reference_column
        self.program_from = program_from
        self.__name__ = metric  # TRL logs each reward under its function's name

    def rewards(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[Reward]:
        tasks, programs = programs_of(self.source, self.program_from, completions, columns)
        match = ast_match if self.metric == "ast_match" else dataflow_match
        out = []
        for i, (task, program) in enumerate(zip(tasks, programs, strict=True)):
            reference = _reference(task, columns, self.reference_column, i)
            value = None if reference is None else match(program, reference, _language(task, self.language))
            out.append(Reward(value, f"{self.metric} {'missing' if value is None else f'{value:.3f}'}"))
        return out

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float | None]:
        return [r.value for r in self.rewards(prompts, completions, **columns)]


class PPOCoderReward:
    """`ppocoder_reward` as one TRL reward: runs the tests once, then composes the signals.

    The compiler signal comes from each program's verdict, so it covers every language the
    executor runs. When TRL passes ``log_metric``, every component's batch mean is logged as
    ``reward/<name>`` (``reward/compiler`` is the share of programs that compile).
    """

    def __init__(
        self,
        unit_tests: UnitTestReward,
        *,
        weights: Mapping[str, float] = PPOCODER_WEIGHTS,
        aux_share: float = 0.5,
        language: str = "python",
        reference_column: str = "reference",
    ) -> None:
        if not 0.0 <= aux_share < 1.0:
            raise ValueError(f"aux_share must be in [0, 1) for correctness to dominate, got {aux_share}")
        self.unit_tests = unit_tests
        self.weights = dict(weights)
        self.aux_share = aux_share
        self.language = language_name(language)
        self.reference_column = reference_column
        self.__name__ = "ppocoder"

    def breakdowns(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[RewardBreakdown]:
        """Every completion's composed reward with each component and its explanation."""
        results = self.unit_tests.results(completions, **columns)
        unit = self.unit_tests
        tasks, programs = programs_of(unit.source, unit.program_from, completions, columns)
        out = []
        for i, (result, task, program) in enumerate(zip(results, tasks, programs, strict=True)):
            if result is None:
                out.append(RewardBreakdown(None, None, Reward(None, "no tests for this row")))
                continue
            reference = _reference(task, columns, self.reference_column, i)
            out.append(
                ppocoder_reward(
                    result,
                    program,
                    reference,
                    _language(task, self.language),
                    rule=self.unit_tests.rule,
                    weights=self.weights,
                    aux_share=self.aux_share,
                )
            )
        return out

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float | None]:
        return totals_logged(self.breakdowns(prompts, completions, **columns), columns)
