"""Log-probabilities: the causal shift on a hand-built example, and padded batches on tiny HF models."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

from codefalcon.rl import (
    completion_forward,
    completion_logits,
    completion_logprobs,
    entropy_from_logits,
    gather_logprobs,
    sequence_logprobs,
)
from codefalcon.rl.logprobs import distinct_rows, forward_accepts, used_width

ATOL = 1e-6
PAD = 0


def close(actual, expected, atol=ATOL) -> None:
    torch.testing.assert_close(
        torch.as_tensor(actual, dtype=torch.float64),
        torch.as_tensor(expected, dtype=torch.float64),
        atol=atol,
        rtol=0,
    )


def test_gather_logprobs_no_shift_and_ignores_masked_ids():
    # logits [0, ln 3] -> probs [1/4, 3/4]
    logits = torch.tensor([[[0.0, math.log(3.0)], [0.0, math.log(3.0)], [5.0, 5.0]]])
    tokens = torch.tensor([[1, 0, -100]])  # -100 at a masked position must not be read
    mask = torch.tensor([[1, 1, 0]])
    close(gather_logprobs(logits, tokens, mask), [[math.log(0.75), math.log(0.25), 0.0]])


def test_sequence_logprobs_shift_on_hand_built_logits():
    # Tokens a=2, b=1, c=3 over a vocabulary of 4. Logits at position t predict token t + 1:
    #   position 0 (after a): [0, ln 3, 0, 0] -> p(b=1 | a) = 3 / (1 + 3 + 1 + 1) = 0.5
    #   position 1 (after a b): [0, 0, 0, ln 5] -> p(c=3 | a b) = 5 / 8 = 0.625
    #   position 2 (after c) predicts past the end: never read, so garbage there changes nothing.
    logits = torch.tensor(
        [[[0.0, math.log(3.0), 0.0, 0.0], [0.0, 0.0, 0.0, math.log(5.0)], [99.0, -9.0, 3.0, 0.0]]]
    )
    labels = torch.tensor([[2, 1, 3]])
    mask = torch.ones_like(labels)
    # entry 0: nothing predicts the first token -> 0; then log 0.5, log 0.625
    close(sequence_logprobs(logits, labels, mask), [[0.0, math.log(0.5), math.log(0.625)]])
    # masking the last token (e.g. padding) zeroes it
    close(sequence_logprobs(logits, labels, torch.tensor([[1, 1, 0]])), [[0.0, math.log(0.5), 0.0]])


def test_entropy_from_logits():
    close(entropy_from_logits(torch.zeros(4)), math.log(4.0))  # uniform over 4
    close(entropy_from_logits(torch.tensor([0.0, float("-inf")])), 0.0)  # one certain outcome
    # p = [1/4, 3/4]: H = -(1/4 ln 1/4 + 3/4 ln 3/4) = 0.5623351446188083
    close(entropy_from_logits(torch.tensor([[0.0, math.log(3.0)]])), [0.5623351446188083])


# --- tiny random models: padded batches must match one unpadded sequence at a time ---

PROMPTS = [[5, 6, 7], [8, 9, 10, 11, 12], [13]]
COMPLETIONS = [[20, 21, 22, 23], [24, 25], []]


def pad_batch(left_pad_prompts: bool, prompts=PROMPTS, completions=COMPLETIONS):
    width_p = max(map(len, prompts))
    width_c = max(map(len, completions))
    rows = len(prompts)
    prompt_ids = torch.full((rows, width_p), PAD)
    prompt_mask = torch.zeros((rows, width_p), dtype=torch.long)
    completion_ids = torch.full((rows, width_c), PAD)
    completion_mask = torch.zeros((rows, width_c), dtype=torch.long)
    for i, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        span = slice(width_p - len(p), width_p) if left_pad_prompts else slice(0, len(p))
        prompt_ids[i, span] = torch.tensor(p)
        prompt_mask[i, span] = 1
        completion_ids[i, : len(c)] = torch.tensor(c, dtype=torch.long)
        completion_mask[i, : len(c)] = 1
    return prompt_ids, prompt_mask, completion_ids, completion_mask


@pytest.fixture(scope="module")
def gpt2():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50, bos_token_id=1, eos_token_id=1)
    )
    return model.eval()


def manual_causal(model, temperature: float = 1.0, prompts=PROMPTS, completions=COMPLETIONS) -> torch.Tensor:
    """One unpadded sequence at a time: logits at prompt_len - 1 + c predict completion token c."""
    out = torch.zeros(len(prompts), max(map(len, completions)))
    with torch.no_grad():
        for i, (p, c) in enumerate(zip(prompts, completions, strict=True)):
            logits = model(input_ids=torch.tensor([p + c])).logits[0] / temperature
            for j, token in enumerate(c):
                out[i, j] = logits[len(p) - 1 + j].log_softmax(-1)[token]
    return out


def test_causal_completion_logprobs_match_unpadded(gpt2):
    batch = pad_batch(left_pad_prompts=True)
    with torch.no_grad():
        logp = completion_logprobs(gpt2, *batch)
    assert logp.shape == (3, 4) and logp.dtype == torch.float32
    close(logp, manual_causal(gpt2), atol=1e-5)
    assert logp[2].abs().sum() == 0  # empty completion: nothing to score


def test_causal_temperature_scales_logits(gpt2):
    batch = pad_batch(left_pad_prompts=True)
    with torch.no_grad():
        logp = completion_logprobs(gpt2, *batch, temperature=0.7)
    close(logp, manual_causal(gpt2, temperature=0.7), atol=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        completion_logprobs(gpt2, *batch, temperature=0.0)


class NoLogitsToKeep(nn.Module):
    """A wrapper whose forward has no ``logits_to_keep`` (like a peft model): full logits come back."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, input_ids, attention_mask, position_ids):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)


def test_causal_path_without_logits_to_keep(gpt2):
    batch = pad_batch(left_pad_prompts=True)
    with torch.no_grad():
        logits = completion_logits(NoLogitsToKeep(gpt2), *batch)
        logp = completion_logprobs(NoLogitsToKeep(gpt2), *batch)
    assert logits.shape == (3, 4, 50)
    close(logp, manual_causal(gpt2), atol=1e-5)


def test_peft_model_keeps_only_the_completion_logits(gpt2):
    lora = get_peft_model(copy.deepcopy(gpt2), LoraConfig(r=2, target_modules=["c_attn"], lora_dropout=0.0))
    assert forward_accepts(lora, "logits_to_keep") and not forward_accepts(
        NoLogitsToKeep(gpt2), "logits_to_keep"
    )
    widths: list[int] = []
    lora.get_base_model().lm_head.register_forward_hook(lambda _m, _i, out: widths.append(out.shape[1]))
    batch = pad_batch(left_pad_prompts=True)
    with torch.no_grad():
        logits = completion_logits(lora, *batch)
        logp = completion_logprobs(lora, *batch)
    assert logits.shape == (3, 4, 50)
    assert widths == [4 + 1, 4 + 1]  # the output layer ran at the completion positions only, not 5 + 4
    close(logp, manual_causal(gpt2), atol=1e-5)  # a fresh adapter adds 0: the base model's numbers


def test_causal_rejects_right_padded_prompts(gpt2):
    with pytest.raises(ValueError, match="left-padded"):
        completion_logprobs(gpt2, *pad_batch(left_pad_prompts=False))


def test_causal_gradients_are_finite(gpt2):
    batch = pad_batch(left_pad_prompts=True)
    gpt2.zero_grad()
    completion_logprobs(gpt2, *batch).sum().backward()
    grads = [p.grad for p in gpt2.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    gpt2.zero_grad()


def test_causal_padding_ids_do_not_matter(gpt2):
    prompt_ids, prompt_mask, completion_ids, completion_mask = pad_batch(left_pad_prompts=True)
    with torch.no_grad():
        before = completion_logprobs(gpt2, prompt_ids, prompt_mask, completion_ids, completion_mask)
        prompt_ids = torch.where(prompt_mask.bool(), prompt_ids, 42)
        completion_ids = torch.where(completion_mask.bool(), completion_ids, 43)
        after = completion_logprobs(gpt2, prompt_ids, prompt_mask, completion_ids, completion_mask)
    close(after, before, atol=1e-6)


class RecordsWidth(NoLogitsToKeep):
    """Records the sequence length each forward is given."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.widths: list[int] = []

    def forward(self, input_ids, attention_mask, position_ids, **kwargs):
        self.widths.append(input_ids.shape[1])
        return self.model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kwargs
        )


def test_trailing_padding_columns_are_not_run_but_keep_their_shape(gpt2):
    prompt_ids, prompt_mask, completion_ids, completion_mask = pad_batch(left_pad_prompts=True)
    extra = 5  # a step padded to a longer sample that is not in this micro-batch
    completion_ids = torch.nn.functional.pad(completion_ids, (0, extra), value=PAD)
    completion_mask = torch.nn.functional.pad(completion_mask, (0, extra), value=0)
    model = RecordsWidth(gpt2)
    with torch.no_grad():
        logits, states = completion_forward(
            model, prompt_ids, prompt_mask, completion_ids, completion_mask, hidden=True
        )
        logp = completion_logprobs(model, prompt_ids, prompt_mask, completion_ids, completion_mask)
    assert model.widths == [5 + 4, 5 + 4]  # prompt 5 + the longest completion 4, not 4 + 5
    assert logits.shape == (3, 9, 50) and states is not None and states.shape == (3, 9, 32)
    assert logits[:, 4:].abs().sum() == 0 and states[:, 4:].abs().sum() == 0
    close(logp[:, :4], manual_causal(gpt2), atol=1e-5)
    assert logp[:, 4:].abs().sum() == 0


# a group's samples share their prompt: rows 0, 2 and 3 here
SHARED_PROMPTS = [PROMPTS[1], PROMPTS[0], PROMPTS[1], PROMPTS[1]]
SHARED_COMPLETIONS = [[20, 21, 22], [24, 25], [26], [27, 28, 29, 30]]


def test_shared_prompts_run_once_and_match_unpadded(gpt2):
    batch = pad_batch(True, SHARED_PROMPTS, SHARED_COMPLETIONS)
    shapes: list[tuple[int, ...]] = []
    hook = gpt2.transformer.wte.register_forward_hook(
        lambda _m, inputs, _o: shapes.append(tuple(inputs[0].shape))
    )
    try:
        with torch.no_grad():
            logp = completion_logprobs(gpt2, *batch)
    finally:
        hook.remove()
    assert shapes == [(2, 5), (4, 4)]  # the 2 distinct prompts once, then the 4 completions
    close(logp, manual_causal(gpt2, 1.0, SHARED_PROMPTS, SHARED_COMPLETIONS), atol=1e-5)


def test_shared_prompts_give_the_unshared_states_and_gradients(gpt2):
    batch = pad_batch(True, SHARED_PROMPTS, SHARED_COMPLETIONS)
    results = []
    for model in (gpt2, RecordsWidth(gpt2)):  # the wrapper takes no cache: every row whole
        gpt2.zero_grad()
        logits, states = completion_forward(model, *batch, hidden=True)
        logp = gather_logprobs(logits, batch[2], batch[3])
        (logp.sum() + (states * batch[3].unsqueeze(-1)).sum()).backward()  # real tokens only
        grads = [p.grad.clone() for p in gpt2.parameters() if p.grad is not None]
        results.append((logp.detach(), states.detach(), grads))
    gpt2.zero_grad()
    (logp_a, states_a, grads_a), (logp_b, states_b, grads_b) = results
    close(logp_a, logp_b, atol=1e-5)
    mask = batch[3].bool()
    close(states_a[mask], states_b[mask], atol=1e-5)
    assert len(grads_a) == len(grads_b) > 0
    for a, b in zip(grads_a, grads_b, strict=True):
        close(a, b, atol=1e-4)


def test_distinct_rows():
    ids = torch.tensor([[0, 5, 6], [7, 8, 9], [3, 5, 6]])  # rows 0 and 2 differ only in padding
    mask = torch.tensor([[0, 1, 1], [1, 1, 1], [0, 1, 1]])
    first, inverse = distinct_rows(ids, mask)
    assert sorted(first.tolist()) == [0, 1]
    assert inverse[0] == inverse[2] != inverse[1] and first[inverse[1]] == 1


def test_used_width():
    assert used_width(torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]])) == 2
    assert used_width(torch.tensor([[0, 0, 0], [0, 0, 0]])) == 1  # nothing real: one column
    assert used_width(torch.zeros((2, 0))) == 0
    assert used_width(torch.ones((2, 3), device="meta")) == 3  # no data to read: keep the shape


def test_seq2seq_completion_logprobs_match_unpadded():
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=50,
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        pad_token_id=PAD,
        eos_token_id=1,
        decoder_start_token_id=PAD,
    )
    model = T5ForConditionalGeneration(config).eval()
    batch = pad_batch(left_pad_prompts=False)  # seq2seq prompts are right-padded in codefalcon
    with torch.no_grad():
        logp = completion_logprobs(model, *batch)
        expected = torch.zeros(3, 4)
        for i, (p, c) in enumerate(zip(PROMPTS, COMPLETIONS, strict=True)):
            if not c:
                continue
            decoder_input = torch.tensor([[PAD, *c[:-1]]])  # start token, then targets shifted right
            logits = model(input_ids=torch.tensor([p]), decoder_input_ids=decoder_input).logits[0]
            expected[i, : len(c)] = logits.log_softmax(-1)[torch.arange(len(c)), torch.tensor(c)]
    close(logp, expected, atol=1e-5)
