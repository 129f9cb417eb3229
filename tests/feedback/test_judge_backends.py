"""Judge back-ends: an OpenAI-compatible server faked on 127.0.0.1, and a local tiny policy."""

from __future__ import annotations

import json
import pickle
import sysconfig
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from codefalcon.feedback import AIJudge, JudgeUnavailable, OpenAIChat, OpenAIChatConfig

GOOD = '{"coding_style": 2, "complexity": 1, "instruction_following": 2}'


class FakeServer(ThreadingHTTPServer):
    """Answers /v1/chat/completions from a script of steps; records every request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script: list[tuple] = []
        self.requests: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        step = self.server.script.pop(0) if self.server.script else ("answer", GOOD)
        kind, arg = step
        if kind == "sleep":
            time.sleep(arg)
            step = ("answer", GOOD)
        if kind == "status":
            self._send(arg, b'{"error": "scripted"}')
        elif kind == "raw":
            self._send(200, arg)
        else:
            reply = {"choices": [{"message": {"role": "assistant", "content": step[1]}}]}
            self._send(200, json.dumps(reply).encode())

    def _send(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout test)
            pass

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture
def server() -> Iterator[FakeServer]:
    srv = FakeServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def chat(server: FakeServer, **overrides) -> OpenAIChat:
    fields = {"base_url": server.url, "model": "judge-1", "api_key_env": "CODEFALCON_TEST_JUDGE_KEY"}
    fields |= {"timeout": 2.0, "max_retries": 2, "backoff": 0.01} | overrides
    return OpenAIChat(OpenAIChatConfig(**fields))


def test_success_sends_model_messages_and_key_from_env(server, monkeypatch) -> None:
    monkeypatch.setenv("CODEFALCON_TEST_JUDGE_KEY", "sk-test")
    judgement = AIJudge(chat(server)).judge("Add numbers.", "def add(a, b):\n    return a + b\n")
    assert judgement.reward.value == pytest.approx(8 / 9, abs=1e-12)
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
    assert request["body"]["model"] == "judge-1" and request["body"]["temperature"] == 0.0
    assert "Add numbers." in request["body"]["messages"][-1]["content"]


def test_no_key_in_environment_sends_no_header_and_key_is_not_pickled(server, monkeypatch) -> None:
    monkeypatch.setenv("CODEFALCON_TEST_JUDGE_KEY", "sk-secret")
    client = chat(server)
    assert b"sk-secret" not in pickle.dumps(client)
    monkeypatch.delenv("CODEFALCON_TEST_JUDGE_KEY")
    assert pickle.loads(pickle.dumps(client))("hi") == GOOD
    assert server.requests[-1]["auth"] is None


def test_malformed_answer_is_missing(server) -> None:
    server.script = [("answer", "This code is quite nice, I'd say an 8/10.")]
    judgement = AIJudge(chat(server)).judge("t", "x = 1")
    assert judgement.reward.value is None and judgement.scores is None
    assert "not understood" in judgement.reward.explanation


def test_500_then_success_is_retried(server) -> None:
    server.script = [("status", 500), ("status", 503), ("answer", GOOD)]
    assert AIJudge(chat(server)).judge("t", "x = 1").reward.value == pytest.approx(8 / 9, abs=1e-12)
    assert len(server.requests) == 3


def test_errors_after_retries_are_missing(server) -> None:
    server.script = [("status", 500)] * 3  # first attempt + 2 retries
    judgement = AIJudge(chat(server)).judge("t", "x = 1")
    assert judgement.reward.value is None and "HTTP 500" in judgement.reward.explanation
    assert len(server.requests) == 3


def test_timeout_is_retried_then_missing(server) -> None:
    server.script = [("sleep", 0.6), ("sleep", 0.6)]
    client = chat(server, timeout=0.2, max_retries=1)
    started = time.monotonic()
    judgement = AIJudge(client).judge("t", "x = 1")
    assert judgement.reward.value is None and "after 2 attempts" in judgement.reward.explanation
    assert time.monotonic() - started < 2.0
    # A timeout followed by a quick answer succeeds.
    server.script = [("sleep", 0.6)]
    assert AIJudge(chat(server, timeout=0.2, max_retries=1)).judge("t", "x").reward.value is not None


def test_client_errors_are_not_retried(server) -> None:
    server.script = [("status", 401)]
    with pytest.raises(RuntimeError, match="HTTP 401"):
        chat(server)("hi")
    assert len(server.requests) == 1


def test_body_that_is_not_a_completion_is_unavailable(server) -> None:
    server.script = [("raw", b'{"object": "error"}')]
    with pytest.raises(JudgeUnavailable, match="not a chat completion"):
        chat(server)("hi")


def test_connection_refused_is_unavailable() -> None:
    config = OpenAIChatConfig("http://127.0.0.1:9/v1", "m", timeout=0.5, max_retries=1, backoff=0.01)
    with pytest.raises(JudgeUnavailable, match="after 2 attempts"):
        OpenAIChat(config)("hi")


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="http"):
        OpenAIChatConfig("localhost:8000", "m")


@pytest.mark.slow  # loading torch and transformers dominates: about 8 s
def test_local_policy_backend(tmp_path) -> None:
    """A tiny random model: the plumbing works and its noise is a missing judgement, not -1."""
    from codefalcon.feedback import PolicyChat
    from codefalcon.models import build_tiny_model, load_policy

    sources = [Path(sysconfig.get_paths()["stdlib"]) / "bisect.py"]
    build_tiny_model(tmp_path, sources, vocab_size=300, n_layer=1, n_embd=32, n_head=2, n_positions=1024)
    policy_chat = PolicyChat(load_policy(tmp_path), max_new_tokens=8)
    answer = policy_chat("Rate this program.")
    assert isinstance(answer, str) and answer == policy_chat("Rate this program.")  # greedy
    judgement = AIJudge(policy_chat).judge("t", "x = 1")
    assert judgement.reward.value is None or 0.0 <= judgement.reward.value <= 1.0
