"""The typed evaluation summary reads what `summarize` writes, and names what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codefalcon.evaluation import summarize
from codefalcon.evaluation.summary import EvalSummary, SummaryError, read_summary
from codefalcon.execution.result import ExecutionResult, Verdict


def _results(*verdicts: Verdict) -> list[ExecutionResult]:
    return [ExecutionResult(v, (), 1) for v in verdicts]


def test_round_trip_of_what_summarize_writes(tmp_path: Path) -> None:
    per_task = {
        "a": _results(Verdict.PASSED, Verdict.WRONG_ANSWER),
        "b": _results(Verdict.WRONG_ANSWER, Verdict.WRONG_ANSWER),
        "c": _results(Verdict.PASSED, Verdict.PASSED),
    }
    data = summarize(per_task, ks=(1, 2), difficulty_of={"a": "easy", "b": "hard", "c": "hard"})
    data["generation"] = {"tokens_per_second": 12.5, "samples_truncated": 0}
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(data))
    summary = read_summary(path)
    assert summary.pass_at(1) == pytest.approx((0.5 + 0 + 1) / 3)
    assert summary.pass_at(2) == pytest.approx(2 / 3)
    assert summary.pass_at(5) is None
    assert summary.pass_at_k_values() == {"pass@1": summary.pass_at(1), "pass@2": summary.pass_at(2)}
    assert summary.by_difficulty["hard"].n_tasks == 2
    assert summary.by_difficulty["hard"].pass_at(1) == pytest.approx(0.5)
    assert summary.verdicts["passed"] == 3
    assert summary.generation["tokens_per_second"] == 12.5
    assert summary.to_dict() == data  # nothing lost, nothing added


def test_bad_layout_names_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"n_tasks": 2, "n_samples": 2, "pass_at_k": {"pass@1": {"value": "high"}}}))
    with pytest.raises(SummaryError, match=r'summary.json: pass_at_k.pass@1: field "value" must be a number'):
        read_summary(path)
    path.write_text(json.dumps({"n_samples": 2}))
    with pytest.raises(SummaryError, match=r'summary.json: field "n_tasks" must be an integer, got None'):
        read_summary(path)
    path.write_text("{not json")
    with pytest.raises(SummaryError, match="cannot be read as JSON"):
        read_summary(path)
    with pytest.raises(SummaryError, match="expected a JSON object"):
        EvalSummary.from_dict([1, 2])  # type: ignore[arg-type]
