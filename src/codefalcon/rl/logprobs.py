"""Log-probabilities of sampled tokens: from logits, and from a Hugging Face model on prompt + completion.

The alignment rule of a causal LM: the logits at position t are the distribution of the token at
position t + 1. So for input ids ``x`` (B, T) and the model's logits ``L`` (B, T, V),

    log p(x[:, t] | x[:, :t]) = log_softmax(L[:, t - 1])[x[:, t]]   for t >= 1,

and the first token has no prediction. `sequence_logprobs` applies this shift and returns a (B, T)
tensor aligned with the *tokens* (entry t is the log-probability of token t). `gather_logprobs`
does no shift: its logits must already sit at their target's position. `completion_logits` /
`completion_logprobs` run a model on left-padded prompts plus right-padded completions and return
values for the completion tokens only, (B, C), aligned with ``completion_ids``.

All outputs are float32 (log-softmax is computed row by row in float32, so bf16 logits lose no
precision and the (B, T, V) float32 copy is never materialised at once) and 0 at masked positions.
The functions that run a model move their inputs to the model's device and return tensors there.
"""

from __future__ import annotations

import inspect

import torch
from torch import Tensor, nn


def gather_logprobs(logits: Tensor, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
    """log softmax(logits)[token] per position, with no shift: (B, T, V), (B, T) -> (B, T) float32.

    Masked positions give 0, and their token ids are never read (they may be -100 or any pad id).
    Example: logits [[[0, 0]]] (two equally likely tokens), tokens [[1]] -> [[log 0.5]] = [[-0.6931]].
    """
    valid = torch.ones_like(tokens, dtype=torch.bool) if mask is None else mask.to(torch.bool)
    safe = torch.where(valid, tokens, torch.zeros_like(tokens))
    rows = [
        row.float().log_softmax(dim=-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
        for row, ids in zip(logits, safe, strict=True)
    ]
    logp = torch.stack(rows)
    return torch.where(valid, logp, torch.zeros_like(logp))


def sequence_logprobs(logits: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    """Per-token log p of ``labels`` given a causal LM's logits over the same sequence, (B, T).

    ``logits`` (B, T, V) are the model's output for input ids ``labels`` (B, T); ``mask`` (B, T)
    marks the tokens to score (e.g. the completion). Entry t of the result is
    log_softmax(logits[:, t - 1])[labels[:, t]] (the logits one position *earlier*); entry 0 is always
    0 because nothing predicts the first token. Masked entries are 0.
    Example: labels [[a, b, c]] -> [[0, log p(b | a), log p(c | a b)]].
    """
    shifted = gather_logprobs(logits[:, :-1], labels[:, 1:], mask[:, 1:])
    first = torch.zeros_like(shifted[:, :1])
    return torch.cat([first, shifted], dim=1)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy in nats of the softmax of each logit vector: (..., V) -> (...), float32.

    H = logsumexp(l) - sum_v softmax(l)_v l_v, which stays finite when some logits are -inf.
    Example: two equal logits -> log 2 = 0.6931.
    """
    logits = logits.float()
    probs = logits.softmax(dim=-1)
    weighted = torch.where(probs > 0, probs * logits, torch.zeros_like(logits))
    return torch.logsumexp(logits, dim=-1) - weighted.sum(dim=-1)


def completion_logits(
    model: nn.Module,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    completion_ids: Tensor,
    completion_mask: Tensor,
    temperature: float = 1.0,
) -> Tensor:
    """Logits predicting each completion token, (B, C, V), divided by ``temperature`` (see
    `completion_forward`)."""
    return completion_forward(model, prompt_ids, prompt_mask, completion_ids, completion_mask, temperature)[0]


def completion_forward(
    model: nn.Module,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    completion_ids: Tensor,
    completion_mask: Tensor,
    temperature: float = 1.0,
    *,
    hidden: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Logits predicting each completion token, (B, C, V), divided by ``temperature``.

    Entry [:, c] is the distribution the model gave completion token c (already shifted, ready for
    `gather_logprobs` and `entropy_from_logits`). Pass the sampling temperature so the log-probs are
    those of the distribution that was actually sampled.

    Causal LMs (``model.config.is_encoder_decoder`` false): prompts (B, P) must be *left*-padded
    (every ``prompt_mask[:, -1]`` is 1) and completions (B, C) right-padded. The model sees
    [prompt | completion] with the joined attention mask and position ids counted from each row's
    first real token, so a padded row gets the same numbers as the same row alone.
    Seq2seq LMs: prompts go to the encoder (padded on either side), completions are the decoder
    targets, fed shifted right behind the decoder start token.

    `completion_forward` also returns, with ``hidden=True``, the last layer's hidden states
    (B, C, H) at the same positions as the logits: the state that predicts completion token c,
    which is where a value head reads V_t. Inputs are moved to the model's device; the outputs
    are on it. Trailing columns that are padding in every row are not run through the model:
    their logits (and states) are 0. Rows with the same prompt (a task's samples) run it once
    when the model's forward takes a key/value cache.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (got {temperature}); greedy samples are scored at 1.0")
    device = next(model.parameters()).device  # models.model_device would pull transformers into rl
    prompt_ids, prompt_mask = prompt_ids.to(device), prompt_mask.to(device)
    completion_ids, completion_mask = completion_ids.to(device), completion_mask.to(device)
    # A step's completions are padded to its longest sample, often one that ran to the token
    # budget; a micro-batch of shorter ones would spend most of its forward on padding. The
    # decoder is causal, so columns after every row's last token change nothing before them.
    width, padded = used_width(completion_mask), completion_ids.shape[1]
    completion_ids, completion_mask = completion_ids[:, :width], completion_mask[:, :width]
    if getattr(model.config, "is_encoder_decoder", False):
        logits, states = _seq2seq_logits(model, prompt_ids, prompt_mask, completion_ids, hidden)
    else:
        logits, states = _causal_logits(
            model, prompt_ids, prompt_mask, completion_ids, completion_mask, hidden
        )
    if width < padded:  # callers index (B, C) tensors: give the dropped columns back as zeros
        logits = torch.nn.functional.pad(logits, (0, 0, 0, padded - width))
        states = None if states is None else torch.nn.functional.pad(states, (0, 0, 0, padded - width))
    return (logits / temperature if temperature != 1.0 else logits), states


def used_width(mask: Tensor) -> int:
    """(B, C) right-padded mask -> columns up to the last real one of any row (at least 1).

    Example: [[1, 1, 0, 0], [1, 0, 0, 0]] -> 2.
    """
    if mask.numel() == 0 or mask.device.type == "meta":  # nothing to read: keep the shape
        return mask.shape[1]
    real = mask.to(torch.bool).any(dim=0).nonzero()
    return int(real.max()) + 1 if real.numel() else 1


def completion_logprobs(
    model: nn.Module,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    completion_ids: Tensor,
    completion_mask: Tensor,
    temperature: float = 1.0,
) -> Tensor:
    """log p(completion token c | prompt, earlier completion tokens), (B, C) float32; 0 at padding.

    Same inputs as `completion_logits`, and the result is on the model's device. Gradients flow to
    the model unless called under no_grad (as for the frozen reference and the old policy).
    """
    logits = completion_logits(model, prompt_ids, prompt_mask, completion_ids, completion_mask, temperature)
    return gather_logprobs(logits, completion_ids.to(logits.device), completion_mask.to(logits.device))


def _causal_logits(
    model: nn.Module,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    completion_ids: Tensor,
    completion_mask: Tensor,
    hidden: bool = False,
) -> tuple[Tensor, Tensor | None]:
    if prompt_ids.shape[1] == 0 or not bool(prompt_mask[:, -1].to(torch.bool).all()):
        raise ValueError(
            "causal prompts must be non-empty and left-padded (prompt_mask[:, -1] all 1): "
            "the logits at the last prompt position predict the first completion token"
        )
    n_completion = completion_ids.shape[1]
    first, inverse = distinct_rows(prompt_ids, prompt_mask)
    keyword = next((k for k in CACHE_KEYWORDS if forward_accepts(model, k)), None)
    if len(first) < len(prompt_ids) and n_completion and keyword is not None:
        shared = _shared_prompt_logits(
            model, keyword, prompt_ids, prompt_mask, completion_ids, completion_mask, first, inverse, hidden
        )
        if shared is not None:
            return shared
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)  # (B, P + C)
    attention_mask = torch.cat([prompt_mask, completion_mask], dim=1).to(torch.long)
    # Positions count real tokens only, as in generate(): a left-padded row must see 0, 1, ...
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    kwargs: dict[str, object] = {}
    if forward_accepts(model, "logits_to_keep"):
        kwargs["logits_to_keep"] = n_completion + 1  # positions P - 1 .. P + C - 1 only
    if hidden:
        kwargs["output_hidden_states"] = True
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kwargs)
    # Position P - 1 + c predicts completion token c; the last position predicts past the end.
    keep = slice(-(n_completion + 1), -1)
    return out.logits[:, keep], (out.hidden_states[-1][:, keep] if hidden else None)


CACHE_KEYWORDS = ("cache", "past_key_values")
"""What a Hugging Face forward calls its key/value cache, argument and output: ``cache`` since
transformers 5.2x, ``past_key_values`` before."""


def _shared_prompt_logits(
    model: nn.Module,
    keyword: str,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    completion_ids: Tensor,
    completion_mask: Tensor,
    first: Tensor,
    inverse: Tensor,
    hidden: bool,
) -> tuple[Tensor, Tensor | None] | None:
    """`_causal_logits` with each distinct prompt run once: a group's samples share their prompt,
    so its keys and values are computed once and gathered for every row (gradients flow back
    through the gather to the one prompt pass). None if the model gives no cache to gather from.
    """
    masks = prompt_mask[first].to(torch.long)
    kwargs: dict[str, object] = {"output_hidden_states": hidden}
    if forward_accepts(model, "logits_to_keep"):
        kwargs["logits_to_keep"] = 1
    head = model(
        input_ids=prompt_ids[first],
        attention_mask=masks,
        position_ids=(masks.cumsum(dim=1) - 1).clamp(min=0),
        use_cache=True,
        **kwargs,
    )
    cache = getattr(head, keyword, None)
    if cache is None or not hasattr(cache, "batch_select_indices"):
        return None
    cache.batch_select_indices(inverse)  # (distinct, ...) -> (B, ...)
    attention_mask = torch.cat([prompt_mask, completion_mask], dim=1).to(torch.long)
    positions = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)[:, prompt_ids.shape[1] :]
    tail = model(
        input_ids=completion_ids,
        attention_mask=attention_mask,
        position_ids=positions,
        use_cache=True,
        **{keyword: cache},
        output_hidden_states=hidden,
    )
    # The prompt's last position predicts completion token 0; completion position c, token c + 1.
    logits = torch.cat([head.logits[:, -1:][inverse], tail.logits[:, :-1]], dim=1)
    if not hidden:
        return logits, None
    states = torch.cat([head.hidden_states[-1][:, -1:][inverse], tail.hidden_states[-1][:, :-1]], dim=1)
    return logits, states


def distinct_rows(ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(first, inverse) of (B, T) padded rows: the first row of each distinct one, and each row's
    index into ``first``. Padding ids do not count. Example: rows a, b, a -> first [row of a, row
    of b] in some order, and inverse maps rows 0 and 2 to the same entry. Meta tensors (no data)
    count as all distinct.
    """
    n = ids.shape[0]
    if ids.device.type == "meta" or n == 0:
        return torch.arange(n, device=ids.device), torch.arange(n, device=ids.device)
    key = torch.where(mask.to(torch.bool), ids, torch.full_like(ids, -1))
    _, inverse = torch.unique(key, dim=0, return_inverse=True)
    rows = torch.arange(n, device=ids.device)
    first = torch.full((int(inverse.max()) + 1,), n, dtype=torch.long, device=ids.device)
    return first.scatter_reduce(0, inverse, rows, reduce="amin"), inverse


def _seq2seq_logits(
    model: nn.Module, prompt_ids: Tensor, prompt_mask: Tensor, completion_ids: Tensor, hidden: bool = False
) -> tuple[Tensor, Tensor | None]:
    start = model.config.decoder_start_token_id
    if start is None:
        raise ValueError("seq2seq model has no config.decoder_start_token_id to start the decoder with")
    # Decoder input c is target c - 1 (start token first): its logits at c predict target c. Right
    # padding needs no decoder mask, since the decoder is causal and padding comes after.
    decoder_input_ids = torch.cat(
        [torch.full_like(completion_ids[:, :1], start), completion_ids[:, :-1]], dim=1
    )
    out = model(
        input_ids=prompt_ids,
        attention_mask=prompt_mask.to(torch.long),
        decoder_input_ids=decoder_input_ids,
        output_hidden_states=hidden,
    )
    return out.logits, (out.decoder_hidden_states[-1] if hidden else None)


def forward_accepts(model: nn.Module, name: str) -> bool:
    """Whether ``model.forward`` takes the keyword ``name`` (e.g. HF's ``logits_to_keep``).

    A peft model's forward takes ``**kwargs`` and hands them to the model it wraps, so that
    model's signature decides: otherwise a LoRA update would run the output layer (and its
    backward) at every prompt position too.
    """
    unwrap = getattr(model, "get_base_model", None)
    target = unwrap() if callable(unwrap) else model
    try:
        return name in inspect.signature(target.forward).parameters
    except (TypeError, ValueError):
        return False
