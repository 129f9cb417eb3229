"""Paired before/after statistics, checked on cases small enough to work out by hand."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from codefalcon.evaluation import (
    SamplesError,
    mcnemar_exact_p,
    paired_bootstrap_interval,
    paired_gain,
    read_results,
    solved_tasks,
)


def test_paired_gain_on_a_hand_computed_case() -> None:
    # differences [0, 1, 1, -1]: mean 0.25, sample variance 2.75 / 3, paired SE sqrt(0.9167 / 4)
    gain = paired_gain(
        {"a": True, "b": False, "c": False, "d": True}, {"a": True, "b": True, "c": True, "d": False}
    )
    assert (gain.n_tasks, gain.before, gain.after, gain.only_after, gain.only_before) == (4, 0.5, 0.75, 2, 1)
    assert gain.gain == pytest.approx(0.25, abs=1e-12)
    assert gain.gain_se == pytest.approx(0.4787135538781691, abs=1e-12)
    assert gain.before_se == pytest.approx(0.25, abs=1e-12)  # sqrt(0.5 x 0.5 / 4)
    assert gain.after_se == pytest.approx(0.21650635094610965, abs=1e-12)  # sqrt(0.75 x 0.25 / 4)
    assert gain.p_value == 1.0  # b = 1, c = 2: 2 x (1 + 3) / 8 = 1
    assert (gain.ci_low, gain.ci_high) == (-0.5, 1.0)  # see the bootstrap test below
    assert not gain.significant
    assert "gain +25.0% +- 47.9% paired SE, 95% CI [-50.0%, +100.0%], McNemar p = 1" in gain.describe()
    same = paired_gain({"a": True, "b": False}, {"a": True, "b": False, "z": True})  # common tasks only
    assert (same.n_tasks, same.gain, same.gain_se, same.ci_low, same.ci_high) == (2, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="at least 2 common tasks"):
        paired_gain({"a": True}, {"a": False})


def test_mcnemar_exact_p_by_hand() -> None:
    assert mcnemar_exact_p(1, 5) == pytest.approx(14 / 64)  # 2 x (C(6,0) + C(6,1)) / 2^6
    assert mcnemar_exact_p(5, 1) == mcnemar_exact_p(1, 5)  # two-sided
    assert mcnemar_exact_p(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact_p(3, 3) == 1.0  # capped: both tails hold the middle term
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(0, 10) < 0.05 < mcnemar_exact_p(1, 7)  # 0.00195 and 0.0703
    with pytest.raises(ValueError, match=">= 0"):
        mcnemar_exact_p(-1, 2)


def test_bootstrap_interval_matches_the_exact_resampling_distribution() -> None:
    # Resampling 4 tasks with differences [0, 1, 1, -1]: the sum of 4 draws. P(sum <= -3) =
    # (1 + 4) / 256 = 0.0195 < 0.025 <= P(sum <= -2) = 0.074, so the 2.5% point is -2 / 4; and
    # P(sum = 4) = (2/4)^4 = 0.0625 > 0.025, so the 97.5% point is the maximum, 4 / 4.
    diffs = [0, 1, 1, -1]
    sums = sorted(sum(c) for c in itertools.product(diffs, repeat=4))
    assert sum(s <= -3 for s in sums) / 256 < 0.025 <= sum(s <= -2 for s in sums) / 256
    assert paired_bootstrap_interval(diffs) == (-0.5, 1.0)
    assert paired_bootstrap_interval([1, 0]) == (0.0, 1.0)  # means 0, 0.5, 1 with 1/4, 1/2, 1/4
    assert paired_bootstrap_interval([1, 1, 1]) == (1.0, 1.0)
    assert paired_bootstrap_interval(diffs, seed=3) == paired_bootstrap_interval(diffs, seed=3)
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap_interval(diffs, confidence=1.0)


def test_a_real_gain_is_significant_and_noise_is_not() -> None:
    n = 200
    before = {f"t{i}": i < 30 for i in range(n)}
    gained = {f"t{i}": i < 50 for i in range(n)}  # +20 tasks, none lost: +10 points
    noisy = {f"t{i}": 3 <= i < 33 for i in range(n)}  # 3 lost, 3 gained
    assert paired_gain(before, gained).significant
    assert paired_gain(before, gained).ci_low > 0.05
    assert not paired_gain(before, noisy).significant
    assert paired_gain(before, noisy).p_value == 1.0


def test_read_results_is_strict_and_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    rows = [
        {"task_id": "a", "completion_id": 0, "passed": False, "verdict": "wrong_answer", "n_tests": 3},
        {"task_id": "a", "completion_id": 1, "passed": True, "verdict": "passed", "n_tests": 3},
        {"task_id": 7, "completion_id": 0, "passed": False, "verdict": "timeout"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    read = read_results(path)
    assert [(r.task_id, r.completion_id, r.passed, r.line) for r in read] == [
        ("a", 0, False, 1),
        ("a", 1, True, 2),
        ("7", 0, False, 3),
    ]
    assert solved_tasks(read) == {"a": True, "7": False}
    path.write_text(json.dumps({**rows[0], "passed": "yes"}) + "\n")
    with pytest.raises(SamplesError, match=r'results.jsonl:1: field "passed" has the wrong type'):
        read_results(path)
    path.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"task_id": "b", "passed": True}) + "\n")
    with pytest.raises(SamplesError, match=r'results.jsonl:2: field "completion_id" is missing'):
        read_results(path)
