"""Stats records to namespaced metrics."""

from __future__ import annotations

from codefalcon.rl import GRPOStats, to_metrics


def test_to_metrics_namespaces_fields_and_skips_undefined():
    stats = GRPOStats(
        loss=0.5,
        clip_frac_low=0.1,
        clip_frac_high=0.2,
        clip_frac=0.3,
        ratio_mean=1.0,
        kl=None,
        n_tokens=7.0,
        n_truncated=1.0,
    )
    metrics = to_metrics(stats, "loss/grpo/")
    assert metrics == {
        "loss/grpo/loss": 0.5,
        "loss/grpo/clip_frac_low": 0.1,
        "loss/grpo/clip_frac_high": 0.2,
        "loss/grpo/clip_frac": 0.3,
        "loss/grpo/ratio_mean": 1.0,
        "loss/grpo/n_tokens": 7.0,
        "loss/grpo/n_truncated": 1.0,
    }
