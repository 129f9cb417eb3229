"""Weighted composition of reward components, in which correctness always dominates.

``total = c + s * (P - f) * a`` where

- ``c`` is the unit-test reward (`codefalcon.feedback.unit_tests`), ``P = PASS_VALUE = 1`` the
  value every mode gives a passing program, and ``f = rule.fail_ceiling(n_tests)`` the highest
  value a failing program can get on this suite (binary 0, coderl -0.3, pass_ratio (n-1)/n);
- ``a`` in [0, 1] is the weighted mean of the auxiliary components present (ruff, complexity,
  maintainability, judge, ...: each in [0, 1]). Missing components (None) are left out and the
  weights of the others renormalised to sum to 1; with none present, ``a = 0``;
- ``s`` (``aux_share``) in [0, 1) is the fraction of the pass/fail gap the auxiliary part may fill.

**Claim: a failing program never scores as high as a passing one**, whatever the auxiliary values
and weights, and across tasks with different suites. Proof: a passing program has ``c = P`` and
``a >= 0``, so ``total >= P``. A failing program has ``c <= f`` and ``a <= 1``, so
``total <= f + s(P - f) < f + (P - f) = P`` because ``s < 1`` and ``P - f > 0``. Hence
failing total ``< P <=`` passing total. Each program's bound uses its own ``f``; ``P`` is shared.

With ``pass_ratio`` the gap ``1/n`` shrinks with the suite, and so does the room left for style:
partial credit and auxiliary rewards compete for the same interval. If correctness is missing
(harness failure, no tests) the total is missing too: style alone must not rank such a program.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from codefalcon.execution.result import ExecutionResult
from codefalcon.feedback.record import Reward, RewardBreakdown
from codefalcon.feedback.unit_tests import PASS_VALUE, UNIT_TEST_RULES, UnitTestRule


def compose(
    result: ExecutionResult,
    auxiliaries: Mapping[str, Reward],
    weights: Mapping[str, float],
    *,
    rule: UnitTestRule = UNIT_TEST_RULES["binary"],
    aux_share: float = 0.5,
) -> RewardBreakdown:
    """One program's composed reward from its execution result and auxiliary rewards.

    ``weights``: a weight >= 0 for every auxiliary component given (a missing weight is an error:
    it is usually a misspelt name). Auxiliary values must lie in [0, 1].

    >>> from codefalcon.execution import ExecutionResult, TestResult, Verdict
    >>> ok = ExecutionResult(Verdict.PASSED, (TestResult(0, Verdict.PASSED),), n_tests=1)
    >>> aux = {"ruff": Reward(0.5, ""), "judge": Reward(None, "judge unavailable")}
    >>> b = compose(ok, aux, {"ruff": 1.0, "judge": 3.0}, aux_share=0.5)
    >>> b.total, b.passed, b.weights
    (1.25, True, {'ruff': 1.0})
    """
    if not 0.0 <= aux_share < 1.0:
        raise ValueError(f"aux_share must be in [0, 1) for correctness to dominate, got {aux_share}")
    correctness = rule.score(result)
    if correctness.value is None:
        return RewardBreakdown(None, None, correctness, dict(auxiliaries))
    passed = result.passed
    ceiling = rule.fail_ceiling(result.n_tests)
    _check_correctness(rule, correctness.value, passed, ceiling)
    mean, used = weighted_mean(auxiliaries, weights)
    scale = aux_share * (PASS_VALUE - ceiling)
    total = correctness.value + scale * mean
    return RewardBreakdown(total, passed, correctness, dict(auxiliaries), used, scale)


def weighted_mean(
    auxiliaries: Mapping[str, Reward], weights: Mapping[str, float]
) -> tuple[float, dict[str, float]]:
    """The weighted mean of the present components and the renormalised weights used.

    >>> weighted_mean({"a": Reward(1.0, ""), "b": Reward(0.0, ""), "c": Reward(None, "")},
    ...               {"a": 1.0, "b": 3.0, "c": 4.0})
    (0.25, {'a': 0.25, 'b': 0.75})
    """
    present: dict[str, tuple[float, float]] = {}
    for name, reward in auxiliaries.items():
        if name not in weights:
            raise ValueError(f"no weight for reward component {name!r}; weights name {sorted(weights)}")
        weight = weights[name]
        if not (weight >= 0.0 and math.isfinite(weight)):
            raise ValueError(f"weight of {name!r} must be finite and >= 0, got {weight}")
        if reward.value is None or weight == 0.0:
            continue
        if not 0.0 <= reward.value <= 1.0:  # also rejects NaN
            raise ValueError(f"auxiliary reward {name!r} must be in [0, 1], got {reward.value}")
        present[name] = (weight, reward.value)
    norm = sum(w for w, _ in present.values())
    if norm == 0.0:
        return 0.0, {}
    mean = sum(w * v for w, v in present.values()) / norm
    return mean, {name: w / norm for name, (w, _) in present.items()}


def _check_correctness(rule: UnitTestRule, value: float, passed: bool, ceiling: float) -> None:
    """The two facts the dominance proof rests on; a custom rule that breaks them is rejected."""
    if passed and value != PASS_VALUE:
        raise ValueError(f"{rule.name}: a passing program must score {PASS_VALUE}, got {value}")
    if not passed and not (value <= ceiling < PASS_VALUE):
        raise ValueError(f"{rule.name}: failing program scored {value}, above its ceiling {ceiling}")
