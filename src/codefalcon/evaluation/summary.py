"""`EvalSummary`: the typed form of an evaluation's ``summary.json`` (what `summarize` writes).

Code that needs a figure of an evaluation reads it from this record (``summary.pass_at(1)``,
``summary.by_difficulty["hard"].strict_accuracy``) instead of walking nested dicts by key path;
`from_dict` checks the layout once and names the file and field when it is wrong. ``to_dict``
gives back the JSON layout unchanged, so files written before this record existed still read.

>>> s = EvalSummary.from_dict({"n_tasks": 2, "n_samples": 2, "pass_at_k": {"pass@1": {"value": 0.5}}})
>>> s.pass_at(1), s.pass_at(10)
(0.5, None)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class SummaryError(ValueError):
    """A summary that does not have `summarize`'s layout; the message names the file and field."""


@dataclass(frozen=True)
class MetricValue:
    """One pass@k or n@k estimate: its value (None when undefined), tasks counted, and why not."""

    value: float | None
    n_tasks: int = 0
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "n_tasks": self.n_tasks, "reason": self.reason}


@dataclass(frozen=True)
class EvalSummary:
    """Counts, accuracies, pass@k / n@k and verdicts of one evaluation (or one difficulty of it)."""

    n_tasks: int
    n_samples: int
    n_unscored: int = 0
    strict_accuracy: float | None = None
    avg_pass_rate: float | None = None
    reason: str | None = None
    pass_at_k: dict[str, MetricValue] = field(default_factory=dict)
    n_at_k: dict[str, MetricValue] = field(default_factory=dict)
    verdicts: dict[str, int] = field(default_factory=dict)
    by_difficulty: dict[str, EvalSummary] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    """Generation figures (tokens per second, truncated samples) when a policy was evaluated."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys this record does not know, kept so `to_dict` loses nothing."""

    def pass_at(self, k: int = 1) -> float | None:
        """pass@k, or None when it was not computed or is undefined."""
        metric = self.pass_at_k.get(f"pass@{k}")
        return metric.value if metric else None

    def pass_at_k_values(self) -> dict[str, float | None]:
        """Each pass@k by name (``{"pass@1": 0.25}``): the flat form commands print as JSON."""
        return {name: metric.value for name, metric in self.pass_at_k.items()}

    def to_dict(self) -> dict[str, Any]:
        """The ``summary.json`` layout."""
        out: dict[str, Any] = {
            "n_tasks": self.n_tasks,
            "n_samples": self.n_samples,
            "n_unscored": self.n_unscored,
            "strict_accuracy": self.strict_accuracy,
            "avg_pass_rate": self.avg_pass_rate,
            "reason": self.reason,
            "pass_at_k": {k: v.to_dict() for k, v in self.pass_at_k.items()},
            "verdicts": dict(self.verdicts),
        }
        if self.n_at_k:
            out["n_at_k"] = {k: v.to_dict() for k, v in self.n_at_k.items()}
        if self.by_difficulty:
            out["by_difficulty"] = {k: v.to_dict() for k, v in self.by_difficulty.items()}
        if self.generation:
            out["generation"] = dict(self.generation)
        return {**self.extra, **out}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "summary") -> EvalSummary:
        """Read `summarize`'s layout; a missing or mistyped field raises `SummaryError`."""
        if not isinstance(data, Mapping):
            raise SummaryError(f"{where}: expected a JSON object, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__) - {"extra"}
        return cls(
            n_tasks=_int(data, "n_tasks", where),
            n_samples=_int(data, "n_samples", where),
            n_unscored=_int(data, "n_unscored", where, 0),
            strict_accuracy=_number(data, "strict_accuracy", where),
            avg_pass_rate=_number(data, "avg_pass_rate", where),
            reason=_text(data, "reason", where),
            pass_at_k=_metrics(data, "pass_at_k", where),
            n_at_k=_metrics(data, "n_at_k", where),
            verdicts={str(k): int(v) for k, v in _mapping(data, "verdicts", where).items()},
            by_difficulty={
                str(name): cls.from_dict(part, f"{where}: by_difficulty.{name}")
                for name, part in _mapping(data, "by_difficulty", where).items()
            },
            generation=dict(_mapping(data, "generation", where)),
            extra={k: v for k, v in data.items() if k not in known},
        )


def read_summary(path: str | os.PathLike[str]) -> EvalSummary:
    """The `EvalSummary` in a ``summary.json`` file; errors name the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SummaryError(f"{path}: cannot be read as JSON ({e})") from None
    return EvalSummary.from_dict(data, str(path))


def _mapping(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise SummaryError(f'{where}: field "{key}" must be an object, got {type(value).__name__}')
    return value


def _int(data: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SummaryError(f'{where}: field "{key}" must be an integer, got {value!r}')
    return value


def _number(data: Mapping[str, Any], key: str, where: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SummaryError(f'{where}: field "{key}" must be a number or null, got {value!r}')
    return float(value)


def _text(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise SummaryError(f'{where}: field "{key}" must be text or null, got {value!r}')
    return value


def _metrics(data: Mapping[str, Any], key: str, where: str) -> dict[str, MetricValue]:
    out = {}
    for name, metric in _mapping(data, key, where).items():
        at = f"{where}: {key}.{name}"
        if not isinstance(metric, Mapping):
            raise SummaryError(f"{at} must be an object with a value")
        out[str(name)] = MetricValue(
            value=_number(metric, "value", at),
            n_tasks=_int(metric, "n_tasks", at, 0),
            reason=_text(metric, "reason", at),
        )
    return out
