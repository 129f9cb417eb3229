"""The HTTP back-end against a real ``codefalcon serve`` process on a loopback port.

The server is started by the test as a subprocess with the tiny model (``--port 0``: it picks a
free port and prints its URL), so requests go through the OpenAI-compatible API, the batching
thread and HF generate, exactly as they would from another machine's client. The same back-end
against ``vllm serve`` is in vllm_engine_check.py (run explicitly where vLLM is installed).
"""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from codefalcon.models import FinishReason, HFBackend, SamplingParams, load_policy
from codefalcon.models.backends.openai import OpenAIBackend, ServerUnavailableError
from conftest import roughen, serving

PROMPTS = [
    "def add(a, b):\n",
    "import os\n\n\nclass Config:\n    def __init__(self, path):\n        self.path = path\n",
    "x = [",
]
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=16, logprobs=True)
SAMPLED = SamplingParams(temperature=1.0, max_new_tokens=12, seed=7)


def ids(results) -> list[list[tuple[int, ...]]]:
    return [[c.token_ids for c in row] for row in results]


@pytest.fixture(scope="module")
def served(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    """(url, policy): ``codefalcon serve`` on the rough tiny model, and the same policy here."""
    policy = roughen(load_policy(tiny_dir), seed=4)
    with serving(policy, tmp_path_factory.mktemp("served")) as url:
        yield url, policy


@pytest.fixture(scope="module")
def backend(served) -> OpenAIBackend:
    url, policy = served
    return OpenAIBackend(url, tokenizer=policy.tokenizer, concurrency=8)


def test_greedy_over_http_equals_in_process_hf(served, backend: OpenAIBackend) -> None:
    _, policy = served
    local = HFBackend(policy, batch_size=2).generate(PROMPTS, GREEDY, n=2)
    remote = backend.generate(PROMPTS, GREEDY, n=2)
    assert ids(remote) == ids(local)
    assert [c[0].text for c in remote] == [c[0].text for c in local]
    assert len({row[0].text for row in local}) == len(PROMPTS)  # not degenerate
    for here, there in zip(local, remote, strict=True):
        assert there[0].finish_reason is here[0].finish_reason
        assert there[0].logprobs == pytest.approx(here[0].logprobs, abs=1e-5)
    assert backend.server == "codefalcon" and backend.max_positions == 256


def test_text_prompts_without_a_tokenizer(served) -> None:
    url, policy = served
    (here,) = HFBackend(policy).generate(PROMPTS[:1], GREEDY)[0]
    (there,) = OpenAIBackend(url).generate(PROMPTS[:1], GREEDY)[0]
    assert (there.text, there.token_ids) == (here.text, here.token_ids)


def test_n_samples_are_seeded_per_sample(backend: OpenAIBackend) -> None:
    first = backend.generate(PROMPTS, SAMPLED, n=3)
    assert [len(row) for row in first] == [3, 3, 3]
    assert all(len({c.text for c in row}) > 1 for row in first)
    assert ids(backend.generate(PROMPTS, SAMPLED, n=3)) == ids(first)
    # Sample j is seeded from (seed, prompt, j): a resumed run draws samples 1.. again, alone.
    resumed = backend.generate(PROMPTS[::-1], SAMPLED, n=2, first_sample=1)[::-1]
    assert ids(resumed) == [row[1:] for row in ids(first)]
    other = SamplingParams(**{**SAMPLED.__dict__, "seed": 8})
    assert ids(backend.generate(PROMPTS, other, n=3)) != ids(first)


def test_stop_sequences_over_http(backend: OpenAIBackend) -> None:
    free = backend.generate(PROMPTS, SAMPLED, n=3)
    stop = next(ch for row in free for c in row for ch in c.text if ch.isalpha())
    stopped = backend.generate(PROMPTS, SamplingParams(**{**SAMPLED.__dict__, "stop": (stop,)}), n=3)
    flat = [c for row in stopped for c in row]
    assert all(stop not in c.text for c in flat)
    hit = [c for c in flat if c.finish_reason is FinishReason.STOP and not c.ended_by_eos]
    assert hit and all(c.n_tokens < SAMPLED.max_new_tokens for c in hit)
    for before, after in zip([c for row in free for c in row], flat, strict=True):
        assert before.text.startswith(after.text)  # the same sample, cut at the stop


def test_openai_request_shape(served) -> None:
    """A plain OpenAI client's request: text prompts in a list, n, stop as a string."""
    url, _ = served
    body = {"prompt": PROMPTS[:2], "max_tokens": 5, "temperature": 0, "n": 2, "stop": "\n\n"}
    request = urllib.request.Request(
        f"{url}/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    assert answer["object"] == "text_completion" and [c["index"] for c in answer["choices"]] == [0, 1, 2, 3]
    assert answer["choices"][0]["text"] == answer["choices"][1]["text"]  # greedy: n copies
    assert answer["usage"]["completion_tokens"] <= 4 * 5


def test_sync_loads_new_weights_into_the_server(served, backend: OpenAIBackend, tmp_path: Path) -> None:
    _, policy = served
    original = HFBackend(policy).generate(PROMPTS, GREEDY)
    saved = {k: v.clone() for k, v in policy.model.state_dict().items()}
    try:
        with torch.no_grad():  # an optimizer step, exaggerated
            generator = torch.Generator().manual_seed(0)
            for param in policy.model.parameters():
                param.add_(torch.randn(param.shape, generator=generator) * 0.3)
        trained = HFBackend(policy).generate(PROMPTS, GREEDY)
        assert ids(trained) != ids(original)
        assert ids(backend.generate(PROMPTS, GREEDY)) == ids(original)
        backend.sync(policy, tmp_path / "step-1")
        assert ids(backend.generate(PROMPTS, GREEDY)) == ids(trained)
    finally:
        policy.model.load_state_dict(saved)
        backend.sync(policy, tmp_path / "back")
    assert ids(backend.generate(PROMPTS, GREEDY)) == ids(original)


def test_bad_requests_are_reported(served, backend: OpenAIBackend, tmp_path: Path) -> None:
    url, _ = served
    with pytest.raises(ServerUnavailableError, match=r"HTTP 400.*prompt must be"):
        backend._post("/v1/completions", {"prompt": 5})
    with pytest.raises(ServerUnavailableError, match=r"HTTP 400.*safetensors"):
        backend.load_weights(tmp_path)  # an empty folder
    with pytest.raises(ServerUnavailableError, match="does not serve model 'nope'"):
        OpenAIBackend(url, model="nope")


def test_server_down_is_a_clear_error() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ServerUnavailableError, match=r"cannot reach the generation server.*codefalcon serve"):
        OpenAIBackend(f"http://127.0.0.1:{port}", timeout=5)
