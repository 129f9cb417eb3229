"""Turning the stats records the losses return into namespaced metrics for logging."""

from __future__ import annotations

import dataclasses
from typing import Any


def to_metrics(stats: Any, namespace: str) -> dict[str, float]:
    """The fields of a stats dataclass as ``{"<namespace>/<field>": value}``, skipping None.

    None marks a value that is undefined for this batch (no reference model, constant returns),
    which a log should leave out rather than record as 0.
    Example: ``to_metrics(PGStats(loss=0.5, n_tokens=3.0, ...), "loss/pg")`` ->
    ``{"loss/pg/loss": 0.5, "loss/pg/n_tokens": 3.0, ...}``.
    """
    prefix = namespace.rstrip("/")
    return {
        f"{prefix}/{field.name}": float(value)
        for field in dataclasses.fields(stats)
        if (value := getattr(stats, field.name)) is not None
    }


def item(x: Any) -> float:
    """A detached Python float from a 0-dim tensor (or a number)."""
    return float(x.detach().item()) if hasattr(x, "detach") else float(x)
