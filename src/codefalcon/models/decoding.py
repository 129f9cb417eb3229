"""Per-row seeded sampling and stop sequences as Hugging Face ``generate`` plug-ins.

``generate`` draws samples from torch's global RNG, so a row's tokens depend on which other rows
share its batch and on everything else that touched the RNG. Here every row owns a
``torch.Generator`` seeded from (seed, prompt, sample index), and sampling uses the Gumbel-max
trick inside a logits processor: ``argmax(logits / T + Gumbel noise)`` is an exact sample from
``softmax(logits / T)`` (restricted by top-k / top-p), so ``generate`` runs in greedy mode and
picks the sampled token. Sample j of a prompt is then the same whatever the batch size, the
round it falls in, or a resumed run (up to float rounding differences between batch shapes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import torch
from transformers import LogitsProcessor, StoppingCriteria
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)


def row_seed(seed: int, prompt: str, sample_index: int) -> int:
    """A 63-bit seed for sample ``sample_index`` of ``prompt`` under the run seed ``seed``.

    Derived by hashing, so it is stable across processes and Python versions (unlike ``hash``).
    """
    key = f"{seed}\x00{sample_index}\x00{prompt}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1


class SeededSampler(LogitsProcessor):
    """Temperature, top-k and top-p, then Gumbel noise from each row's own generator.

    Used with greedy ``generate`` (``do_sample=False``): the argmax of the returned scores is a
    sample. Filtered tokens stay at -inf, so they are never chosen.
    """

    def __init__(
        self, temperature: float, top_k: int, top_p: float, generators: Sequence[torch.Generator]
    ) -> None:
        if temperature <= 0:
            raise ValueError("SeededSampler needs temperature > 0 (use greedy decoding for 0)")
        self.generators = list(generators)
        self.warpers: list[LogitsProcessor] = [TemperatureLogitsWarper(temperature)]
        if top_k > 0:
            self.warpers.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(top_p))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for warper in self.warpers:
            scores = warper(input_ids, scores)
        if scores.shape[0] != len(self.generators):
            raise ValueError(f"{scores.shape[0]} rows but {len(self.generators)} generators")
        uniform = torch.stack(
            [torch.rand(scores.shape[-1], generator=g, dtype=torch.float32) for g in self.generators]
        ).to(scores.device)  # (B, V)
        gumbel = -torch.log(-torch.log(uniform.clamp_min(torch.finfo(torch.float32).tiny)))
        return scores + gumbel


class StopOnSequences(StoppingCriteria):
    """Ends a row once its generated text contains any stop sequence.

    Only the last few generated tokens are decoded each step (enough to hold the longest stop
    string, since a token is at least one character), so the cost per step stays constant.
    Prompt tokens are never searched: generated tokens start at column ``start`` (the padded
    prompt width for causal models, 1 after the decoder start token for seq2seq).
    """

    def __init__(self, tokenizer: Any, stops: Sequence[str], start: int, batch_size: int) -> None:
        if not stops:
            raise ValueError("StopOnSequences needs at least one stop sequence")
        self.tokenizer = tokenizer
        self.stops = tuple(stops)
        self.start = start
        self.window = max(len(s) for s in self.stops) + 1
        self.done = torch.zeros(batch_size, dtype=torch.bool)

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        generated = input_ids[:, self.start :]
        for row in range(generated.shape[0]):
            if self.done[row]:
                continue
            tail = generated[row, -self.window :].tolist()
            text = self.tokenizer.decode(tail, skip_special_tokens=False)
            self.done[row] = any(stop in text for stop in self.stops)
        return self.done.clone().to(input_ids.device)


def truncate_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` cut before the earliest stop sequence, and whether one was found.

    >>> truncate_at_stop("    return 1\\ndef g():", ["\\ndef "])
    ('    return 1', True)
    """
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
