"""Model soups: the weighted average of several fine-tuned copies of one base model.

Averaging the weights of models fine-tuned from the same start (Wortsman et al., 2022, "Model
soups") keeps what the runs learnt in common and cancels part of what each learnt by chance. For
RL with sparse rewards on a small model that second part is large: two rejection-sampling runs
on SmolLM2-135M changed about 30 of 500 greedy MBPP answers each, mostly different ones
(docs/rl.md). LoRA adapters are averaged after merging, since the mean of the products B A is
not the product of the means.

The base itself can be a member (``base_weight``): the interpolation between a start and its
fine-tuned copy of Wortsman et al., 2022 ("Robust fine-tuning of zero-shot models", WiSE-FT),
which keeps more of what the start already did right while keeping part of what was learnt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from codefalcon.models.backends.common import plain_model
from codefalcon.models.loading import Policy, load_policy


def soup_weights(n: int, weights: Sequence[float] | None = None) -> list[float]:
    """``weights`` scaled to sum to 1 (uniform when None); they must be >= 0, one per member.

    >>> soup_weights(2, [1, 3])
    [0.25, 0.75]
    """
    if n < 1:
        raise ValueError("a soup needs at least one member")
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise ValueError(f"{len(weights)} weights for {n} members")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {list(weights)}")
    total = float(sum(weights))
    return [w / total for w in weights]


def average_state_dicts(
    states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float] | None = None
) -> dict[str, torch.Tensor]:
    """The weighted mean of same-shaped state dicts, summed in float64 and cast back to each
    tensor's dtype; integer buffers (no mean exists) must agree and are kept.
    """
    scale = soup_weights(len(states), weights)
    first = states[0]
    for index, state in enumerate(states[1:], start=1):
        if state.keys() != first.keys():
            extra = sorted(set(state) ^ set(first))[:3]
            raise ValueError(f"member {index} has different weights from member 0 (e.g. {extra})")
    out: dict[str, torch.Tensor] = {}
    for key, value in first.items():
        shapes = {tuple(state[key].shape) for state in states}
        if len(shapes) > 1:
            raise ValueError(f"{key}: members disagree on its shape ({sorted(shapes)})")
        if not value.is_floating_point():
            if any(not torch.equal(state[key], value) for state in states):
                raise ValueError(f"{key}: an integer buffer that differs between members")
            out[key] = value.clone()
            continue
        total = sum(w * state[key].double() for w, state in zip(scale, states, strict=True))
        out[key] = total.to(value.dtype)  # type: ignore[union-attr]  # a tensor: n >= 1
    return out


def member_weights(
    n_adapters: int, weights: Sequence[float] | None = None, base_weight: float = 0.0
) -> list[float]:
    """One weight per adapter, then the base's when ``base_weight`` > 0, all scaled to sum to 1;
    ``weights`` (equal when None) and ``base_weight`` are on the same scale.

    >>> member_weights(1, base_weight=1)
    [0.5, 0.5]
    >>> member_weights(2, [1, 2], base_weight=1)
    [0.25, 0.5, 0.25]
    """
    if base_weight < 0:
        raise ValueError(f"the base's weight must be >= 0, got {base_weight}")
    raw = [1.0] * n_adapters if weights is None else list(weights)
    soup_weights(n_adapters, raw)  # the adapters' own weights are checked before the base joins
    return soup_weights(len(raw) + bool(base_weight), [*raw, base_weight] if base_weight else raw)


def soup_policy(
    model: str | Path,
    loras: Sequence[str | Path],
    weights: Sequence[float] | None = None,
    base_weight: float = 0.0,
) -> Policy:
    """``model`` with each LoRA adapter merged in turn, the merged weights averaged (``weights``:
    one per adapter, equal when None) together with the base itself when ``base_weight`` > 0
    (:func:`member_weights`). The result is a plain model.
    """
    scale = member_weights(len(loras), weights, base_weight)
    states: list[dict[str, torch.Tensor]] = []
    policy: Policy | None = None
    for lora in loras:
        policy = load_policy(model, lora=lora, device="cpu")
        merged = plain_model(policy)
        states.append({k: v.detach().clone() for k, v in merged.state_dict().items()})
        policy = Policy(merged, policy.tokenizer, policy.kind, policy.is_chat, policy.name)
    assert policy is not None  # soup_weights refused an empty list
    if base_weight:
        base = load_policy(model, device="cpu").model
        states.append({k: v.detach().clone() for k, v in base.state_dict().items()})
    policy.model.load_state_dict(average_state_dicts(states, scale))
    return policy
