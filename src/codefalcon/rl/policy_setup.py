"""Loading the policy a recipe trains (full weights or a LoRA adapter, fresh or from a checkpoint)
and the frozen reference it is held to."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from codefalcon.configs import StrictModel
from codefalcon.models.loading import LoraSpec, Policy, load_policy, model_device


class LoraOptions(StrictModel):
    """A LoRA adapter to train (peft); the base weights stay frozen."""

    r: int = Field(default=8, ge=1)
    """Rank of the update matrices."""
    alpha: int = Field(default=16, ge=1)
    """The update is scaled by alpha / r."""
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] | None = None
    """Module names to adapt (None: peft's default for the architecture, attention inputs only:
    Llama's q_proj and v_proj, GPT-2's c_attn; "all-linear": every linear layer but the output
    head)."""

    def spec(self) -> LoraSpec:
        targets = self.target_modules
        if isinstance(targets, list):
            targets = tuple(targets) if targets else None
        return LoraSpec(r=self.r, alpha=self.alpha, dropout=self.dropout, target_modules=targets)


def load_trainable_policy(
    model: str,
    dtype: str,
    lora: LoraOptions | None,
    checkpoint_model: Path | None,
    device: str | None = None,
) -> Policy:
    """The policy to train: ``model`` itself, or its state saved in ``checkpoint_model``.

    Full fine-tuning resumes from the checkpoint's saved model folder; LoRA resumes the saved
    adapter on top of the original base ``model`` (the base never changes). ``device``: see
    `codefalcon.models.resolve_device`; the optimiser must be built after this, on these weights.
    """
    if lora is None:
        policy = load_policy(checkpoint_model or model, dtype=dtype, device=device)
        policy.model.requires_grad_(True)
        return policy
    if checkpoint_model is not None:
        return load_policy(model, dtype=dtype, lora=checkpoint_model, train_adapter=True, device=device)
    return load_policy(model, dtype=dtype, lora=lora.spec(), device=device)


Reference = Callable[[], AbstractContextManager[Any]]
"""Enters a context that gives the frozen reference model."""


def frozen_reference(policy: Policy, model: str, dtype: str, lora: bool) -> Reference:
    """A context giving the frozen start policy: with LoRA, the base with the adapter disabled
    (no second copy in memory); otherwise a frozen copy of ``model`` on the policy's device."""
    if lora:
        return lambda: _adapter_disabled(policy.model)
    reference = load_policy(model, dtype=dtype, device=model_device(policy.model))
    frozen = reference.model.eval().requires_grad_(False)
    return lambda: contextlib.nullcontext(frozen)


@contextlib.contextmanager
def _adapter_disabled(model: Any) -> Iterator[Any]:
    with model.disable_adapter():
        yield model
