"""Evaluation: pass@k and n@k, APPS accuracies, verdict breakdowns, samples and results files."""

from codefalcon.evaluation.metrics import (
    Accuracy,
    accuracy,
    group_by_task,
    split_by_difficulty,
    summarize,
    verdict_counts,
)
from codefalcon.evaluation.passk import Estimate, estimate_pass_at_k, n_at_k, pass_at_k
from codefalcon.evaluation.samples import Sample, SamplesError, read_samples, write_results

__all__ = [
    "Accuracy",
    "Estimate",
    "Sample",
    "SamplesError",
    "accuracy",
    "estimate_pass_at_k",
    "group_by_task",
    "n_at_k",
    "pass_at_k",
    "read_samples",
    "split_by_difficulty",
    "summarize",
    "verdict_counts",
    "write_results",
]
