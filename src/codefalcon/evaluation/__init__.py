"""Evaluation: pass@k and n@k, APPS accuracies, verdict breakdowns, samples and results files."""

from codefalcon.evaluation.metrics import (
    Accuracy,
    accuracy,
    group_by_task,
    split_by_difficulty,
    summarize,
    verdict_counts,
)
from codefalcon.evaluation.paired import PairedGain, mcnemar_exact_p, paired_bootstrap_interval, paired_gain
from codefalcon.evaluation.passk import Estimate, estimate_pass_at_k, n_at_k, pass_at_k
from codefalcon.evaluation.samples import (
    ResultRow,
    Sample,
    SamplesError,
    read_results,
    read_samples,
    solved_tasks,
    write_results,
)
from codefalcon.evaluation.summary import EvalSummary, MetricValue, SummaryError, read_summary

__all__ = [
    "Accuracy",
    "Estimate",
    "EvalSummary",
    "MetricValue",
    "PairedGain",
    "ResultRow",
    "Sample",
    "SamplesError",
    "SummaryError",
    "accuracy",
    "estimate_pass_at_k",
    "group_by_task",
    "mcnemar_exact_p",
    "n_at_k",
    "paired_bootstrap_interval",
    "paired_gain",
    "pass_at_k",
    "read_results",
    "read_samples",
    "read_summary",
    "solved_tasks",
    "split_by_difficulty",
    "summarize",
    "verdict_counts",
    "write_results",
]
