"""The reward a trainer gives an executed program: unit tests plus weighted auxiliary components.

`RewardScorer` turns (task, program, execution result) into a `RewardBreakdown` with
`compose`, so a failing program never outscores a passing one. Auxiliary components, each
in [0, 1] and chosen by a weight > 0:

- static analysis of the program: ``ruff``, ``complexity``, ``maintainability`` (Python);
- PPOCoder's signals against the task's first reference: ``compiler``, ``ast_match``,
  ``dataflow_match`` (any language `codefalcon.feedback.code_match` reads);
- ``judge``: FALCON's AI judge (`AIJudge`) on the task statement and the program, asked for the
  whole batch at once (``concurrency`` requests in flight). Its failures are missing, not 0.

The scorer is a frozen dataclass of names, numbers and an `AIJudge` over a picklable chat
back-end (`OpenAIChat` holds only its config), so it pickles to worker processes. `codefalcon
train` builds it from its ``reward`` section; TRL-style callers use `ComposedReward`, which
takes completions rather than executed programs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from codefalcon.execution.result import ExecutionResult
from codefalcon.feedback.compose import compose
from codefalcon.feedback.judge import AIJudge
from codefalcon.feedback.ppocoder import ppocoder_components
from codefalcon.feedback.record import Reward, RewardBreakdown
from codefalcon.feedback.static import complexity_reward, maintainability_reward, ruff_reward
from codefalcon.feedback.unit_tests import unit_test_rule
from codefalcon.tasks.record import Task

STATIC_REWARDS: Mapping[str, Callable[[str], Reward]] = MappingProxyType(
    {"ruff": ruff_reward, "complexity": complexity_reward, "maintainability": maintainability_reward}
)
"""Components computed from the program text alone."""
PPOCODER_PARTS = frozenset({"compiler", "ast_match", "dataflow_match"})
"""Components that need the task's reference and language (`ppocoder_components`)."""
JUDGE = "judge"
COMPONENTS = frozenset({*STATIC_REWARDS, *PPOCODER_PARTS, JUDGE})
"""Every auxiliary component a `RewardScorer` weight may name."""


@dataclass(frozen=True)
class RewardScorer:
    """Executed programs -> `RewardBreakdown` (see the module docstring).

    >>> from codefalcon.execution import ExecutionResult, TestResult, Verdict
    >>> ok = ExecutionResult(Verdict.PASSED, (TestResult(0, Verdict.PASSED),), n_tests=1)
    >>> RewardScorer("binary").score(None, "x = 1\\n", ok).total
    1.0
    """

    unit_tests: str = "binary"
    """binary, pass_ratio or coderl (`codefalcon.feedback.unit_tests`)."""
    weights: dict[str, float] = field(default_factory=dict)
    """Auxiliary component -> weight; 0 or absent: not computed."""
    aux_share: float = 0.5
    """Share of the pass/fail gap the auxiliary part may fill, in [0, 1)."""
    judge: AIJudge | None = None
    """Needed when ``weights`` gives ``judge`` a weight above 0."""

    def __post_init__(self) -> None:
        unit_test_rule(self.unit_tests)  # an unknown mode fails here, not on the first program
        unknown = sorted(set(self.weights) - COMPONENTS)
        if unknown:
            raise ValueError(f"unknown reward components {unknown}; choose from {sorted(COMPONENTS)}")
        if self.weights.get(JUDGE, 0.0) > 0 and self.judge is None:
            raise ValueError("a judge weight needs a judge: pass judge=AIJudge(chat)")
        if not 0.0 <= self.aux_share < 1.0:
            raise ValueError(f"aux_share must be in [0, 1) for correctness to dominate, got {self.aux_share}")

    @property
    def runs_all_tests(self) -> bool:
        """Whether every test must run (pass_ratio); otherwise execution stops at the first failure."""
        return unit_test_rule(self.unit_tests).runs_all_tests

    def __call__(
        self, tasks: Sequence[Task], programs: Sequence[str], results: Sequence[ExecutionResult]
    ) -> list[RewardBreakdown]:
        """The reward of each (task, program, result) row, the judge asked once for the batch."""
        judged: Sequence[Reward | None] = [None] * len(programs)
        if self._active().get(JUDGE) and self.judge is not None:
            pairs = [(task.prompt, program) for task, program in zip(tasks, programs, strict=True)]
            judged = [j.reward for j in self.judge.judge_many(pairs)]
        return [
            self.score(task, program, result, judgement)
            for task, program, result, judgement in zip(tasks, programs, results, judged, strict=True)
        ]

    def score(
        self, task: Task | None, program: str, result: ExecutionResult, judgement: Reward | None = None
    ) -> RewardBreakdown:
        """One program's reward; ``judgement`` is the judge's reward for it (`__call__` asks)."""
        weights = self._active()
        auxiliaries = {name: STATIC_REWARDS[name](program) for name in weights if name in STATIC_REWARDS}
        if task is not None and PPOCODER_PARTS & weights.keys():
            reference = task.solutions[0] if task.solutions else None
            parts = ppocoder_components(program, reference, task.tests.language, result)
            auxiliaries |= {name: parts[name] for name in weights if name in PPOCODER_PARTS}
        if judgement is not None and JUDGE in weights:
            auxiliaries[JUDGE] = judgement
        return compose(
            result, auxiliaries, weights, rule=unit_test_rule(self.unit_tests), aux_share=self.aux_share
        )

    def _active(self) -> dict[str, float]:
        return {name: weight for name, weight in self.weights.items() if weight > 0}
