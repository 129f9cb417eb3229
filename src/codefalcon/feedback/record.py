"""What every reward function returns: a value and why, and the composed breakdown."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reward:
    """One reward component for one program.

    ``value`` is None when the component is *missing* (not applicable, or the harness or judge
    failed): it is then left out, never scored as zero or as a penalty. ``explanation`` is a short
    human-readable reason, ready for logs and repair prompts.
    """

    value: float | None
    explanation: str

    @property
    def missing(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class RewardBreakdown:
    """A composed reward with every component kept apart (see `codefalcon.feedback.compose`).

    ``total``: correctness plus the bounded auxiliary part; None when correctness is missing.
    ``passed``: binary success, kept separate from the shaped ``total`` (None when unknown).
    ``correctness``: the unit-test component. ``auxiliaries``: the other components by name.
    ``weights``: the auxiliary weights actually used, renormalised over the present components
    (they sum to 1, or the dict is empty). ``aux_scale``: the largest amount the auxiliary part
    could add for this program (strictly below its pass/fail gap).
    """

    total: float | None
    passed: bool | None
    correctness: Reward
    auxiliaries: dict[str, Reward] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    aux_scale: float = 0.0

    def metrics(self, prefix: str = "reward/") -> dict[str, float]:
        """Present values as flat, namespaced metrics (``reward/total``, ``reward/<component>``)."""
        out = {f"{prefix}{name}": r.value for name, r in self.auxiliaries.items() if r.value is not None}
        if self.correctness.value is not None:
            out[f"{prefix}correctness"] = self.correctness.value
        if self.total is not None:
            out[f"{prefix}total"] = self.total
        if self.passed is not None:
            out[f"{prefix}passed"] = float(self.passed)
        return out
