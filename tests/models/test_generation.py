"""The HF back-end: seeds, greedy padding correctness, rounds, stops, token counts, truncation."""

from __future__ import annotations

from pathlib import Path

import pytest

from codefalcon.models import Completion, FinishReason, HFBackend, SamplingParams, load_policy
from codefalcon.models.decoding import row_seed, truncate_at_stop

PROMPTS = [
    "def add(a, b):\n",
    "import os\n\n\nclass Config:\n    def __init__(self, path):\n        self.path = path\n",
    "x = [",
]
SAMPLED = SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=12, seed=7)
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=12)


def texts(results: list[list[Completion]]) -> list[list[str]]:
    return [[c.text for c in row] for row in results]


def test_same_seed_same_samples(tiny_policy) -> None:
    backend = HFBackend(tiny_policy, batch_size=4)
    assert texts(backend.generate(PROMPTS, SAMPLED, n=3)) == texts(backend.generate(PROMPTS, SAMPLED, n=3))


def test_other_seed_other_samples(tiny_policy) -> None:
    backend = HFBackend(tiny_policy, batch_size=4)
    first = texts(backend.generate(PROMPTS, SAMPLED, n=3))
    second = texts(backend.generate(PROMPTS, SamplingParams(**{**SAMPLED.__dict__, "seed": 8}), n=3))
    assert first != second


def test_samples_of_one_prompt_differ(tiny_policy) -> None:
    (row,) = HFBackend(tiny_policy).generate(PROMPTS[:1], SAMPLED, n=4)
    assert len({c.text for c in row}) > 1


def test_samples_do_not_depend_on_batching_or_prompt_order(tiny_policy) -> None:
    # Each sample has its own generator seeded from (seed, prompt, index); batch shapes only
    # change float rounding, which does not flip any token for this model at this length.
    whole = HFBackend(tiny_policy, batch_size=16).generate(PROMPTS, SAMPLED, n=3)
    single = HFBackend(tiny_policy, batch_size=1).generate(PROMPTS[::-1], SAMPLED, n=3)
    assert texts(whole) == texts(single)[::-1]


def test_first_sample_continues_a_run(tiny_policy) -> None:
    backend = HFBackend(tiny_policy, batch_size=4)
    full = backend.generate(PROMPTS, SAMPLED, n=5)
    tail = backend.generate(PROMPTS, SAMPLED, n=2, first_sample=3)
    assert texts(tail) == [row[3:] for row in texts(full)]


def test_greedy_in_a_padded_batch_equals_greedy_alone(tiny_policy) -> None:
    batched = HFBackend(tiny_policy, batch_size=8).generate(PROMPTS, GREEDY)
    for prompt, (completion,) in zip(PROMPTS, batched, strict=True):
        (alone,) = HFBackend(tiny_policy, batch_size=1).generate([prompt], GREEDY)[0]
        assert completion.token_ids == alone.token_ids
    assert len({c.text for (c,) in batched}) == len(PROMPTS)  # outputs are not degenerate


def test_greedy_repeats_one_decode_n_times(tiny_policy) -> None:
    (row,) = HFBackend(tiny_policy).generate(PROMPTS[:1], GREEDY, n=3)
    assert len(row) == 3 and len({c.text for c in row}) == 1


@pytest.mark.parametrize(("n", "batch_size"), [(1, 1), (5, 2), (7, 3), (4, 16)])
def test_rounds_produce_exactly_n_samples_per_prompt(tiny_policy, n: int, batch_size: int) -> None:
    params = SamplingParams(temperature=1.0, max_new_tokens=3)
    results = HFBackend(tiny_policy, batch_size=batch_size).generate(PROMPTS, params, n=n)
    assert [len(row) for row in results] == [n] * len(PROMPTS)


def test_rounds_never_exceed_the_batch_size(tiny_policy, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = HFBackend(tiny_policy, batch_size=3)
    sizes: list[int] = []
    original = backend._generate_round

    def spy(rows, seeds, params):
        sizes.append(len(rows))
        return original(rows, seeds, params)

    monkeypatch.setattr(backend, "_generate_round", spy)
    backend.generate(PROMPTS, SamplingParams(temperature=1.0, max_new_tokens=2), n=4)
    assert sizes == [3, 3, 3, 3] and sum(sizes) == 12


def test_token_counts_and_length_finish(tiny_policy) -> None:
    results = HFBackend(tiny_policy).generate(PROMPTS, GREEDY)
    for (completion,) in results:
        assert completion.finish_reason is FinishReason.LENGTH
        assert completion.n_tokens == 12
        assert tiny_policy.tokenizer.decode(list(completion.token_ids)) == completion.text


def test_stop_sequences_end_and_cut_samples(tiny_policy) -> None:
    free = HFBackend(tiny_policy).generate(PROMPTS, SamplingParams(temperature=1.0, max_new_tokens=40), n=4)
    # Stop at a character that the free samples contain, so the stop surely triggers somewhere.
    stop = next(ch for row in texts(free) for text in row for ch in text if ch.isalpha())
    params = SamplingParams(temperature=1.0, max_new_tokens=40, stop=(stop,))
    stopped = HFBackend(tiny_policy).generate(PROMPTS, params, n=4)
    flat = [c for row in stopped for c in row]
    assert all(stop not in c.text for c in flat)
    hit = [c for c in flat if c.finish_reason is FinishReason.STOP]
    assert hit and all(c.n_tokens < 40 for c in hit)
    # The stopped sample is the free sample cut at the stop (same seeds, same tokens until then).
    for free_c, stop_c in zip([c for row in free for c in row], flat, strict=True):
        assert stop_c.text == truncate_at_stop(free_c.text, [stop])[0]


def test_long_prompts_are_cut_from_the_left(tiny_policy) -> None:
    prompt = "x = 1\n" * 400  # far beyond the 256 positions
    (completion,) = HFBackend(tiny_policy).generate([prompt], GREEDY)[0]
    assert completion.prompt_truncated and completion.n_tokens == 12


def test_seq2seq_policy_generates(tiny_t5_dir: Path) -> None:
    policy = load_policy(tiny_t5_dir)
    results = HFBackend(policy, batch_size=2).generate(PROMPTS, SAMPLED, n=2)
    assert [len(row) for row in results] == [2, 2, 2]
    greedy = HFBackend(policy).generate(PROMPTS, GREEDY)
    alone = HFBackend(policy, batch_size=1).generate(PROMPTS[1:2], GREEDY)
    assert greedy[1][0].token_ids == alone[0][0].token_ids  # right padding is masked too


def test_lora_wrapped_policy_generates(tiny_dir: Path) -> None:
    from codefalcon.models import LoraSpec

    policy = load_policy(tiny_dir, lora=LoraSpec(r=2))
    (row,) = HFBackend(policy).generate(PROMPTS[:1], SAMPLED, n=2)
    assert len(row) == 2 and all(0 < c.n_tokens <= 12 for c in row)


def test_row_seed_is_stable() -> None:
    assert row_seed(0, "p", 0) == row_seed(0, "p", 0)
    assert len({row_seed(0, "p", 0), row_seed(1, "p", 0), row_seed(0, "q", 0), row_seed(0, "p", 1)}) == 4
    assert 0 <= row_seed(2**40, "x" * 1000, 99) < 2**63


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
    ],
)
def test_sampling_params_validate(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SamplingParams(**kwargs)


def test_bad_backend_arguments(tiny_policy) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        HFBackend(tiny_policy, batch_size=0)
    with pytest.raises(ValueError, match="n >= 1"):
        HFBackend(tiny_policy).generate(PROMPTS, GREEDY, n=0)
