"""Chat back-ends for the AI judge: an OpenAI-compatible HTTP endpoint, or a local `Policy`.

Both are callables ``str -> str`` (prompt in, answer out), picklable, and hold no open
connection or thread, so they can be sent to worker processes.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codefalcon.feedback.judge import JudgeUnavailable

if TYPE_CHECKING:  # only for hints: importing models loads torch, which feedback must not force
    from codefalcon.models.loading import Policy

# Statuses worth retrying: rate limits, overloaded or restarting servers.
_RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class OpenAIChatConfig:
    """An OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server, ...)."""

    base_url: str
    """Up to and including the version, e.g. ``http://127.0.0.1:8000/v1``; ``/chat/completions`` is added."""
    model: str
    """The model name the server expects."""
    api_key_env: str | None = "OPENAI_API_KEY"
    """Name of the environment variable holding the key (read at request time, never stored);
    None or an unset variable sends no Authorization header (local servers need none)."""
    temperature: float = 0.0
    """0 for reproducible judgements."""
    max_tokens: int = 256
    """Answer budget; the rubric needs a short JSON object."""
    system: str | None = None
    """Optional system message sent before the rubric."""
    timeout: float = 60.0
    """Seconds per request (connect and read)."""
    max_retries: int = 3
    """Retries after the first attempt, on timeouts, connection errors and 408/429/5xx."""
    backoff: float = 1.0
    """Seconds before the first retry; doubled each time (a numeric Retry-After wins if larger)."""
    max_backoff: float = 30.0
    """Longest single wait between attempts."""

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if self.timeout <= 0 or self.max_retries < 0 or self.backoff < 0:
            raise ValueError("need timeout > 0, max_retries >= 0 and backoff >= 0")


class OpenAIChat:
    """``prompt -> answer`` over ``POST {base_url}/chat/completions``, with retries and backoff.

    Plain ``urllib`` (no client library): one request per call, so the object stays picklable
    and thread-safe. Raises `JudgeUnavailable` once retries are exhausted or the response body is
    not a chat completion; raises ``RuntimeError`` at once for other 4xx statuses (a wrong URL,
    model name or key: retrying cannot fix those, and the run should stop).
    """

    def __init__(self, config: OpenAIChatConfig) -> None:
        self.config = config

    def __call__(self, prompt: str) -> str:
        cfg = self.config
        messages = [{"role": "system", "content": cfg.system}] if cfg.system else []
        messages.append({"role": "user", "content": prompt})
        body = {"model": cfg.model, "messages": messages, "temperature": cfg.temperature}
        body["max_tokens"] = cfg.max_tokens
        data = self._post_with_retries(json.dumps(body).encode())
        try:
            return str(data["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError):
            raise JudgeUnavailable(f"not a chat completion: {str(data)[:200]}") from None

    def _post_with_retries(self, payload: bytes) -> Any:
        cfg = self.config
        for attempt in range(cfg.max_retries + 1):
            try:
                return self._post(payload)
            except _Retryable as error:
                if attempt == cfg.max_retries:
                    raise JudgeUnavailable(f"{error} (after {attempt + 1} attempts)") from None
                wait = min(cfg.max_backoff, max(cfg.backoff * 2**attempt, error.retry_after))
                time.sleep(wait)
        raise AssertionError("unreachable")

    def _post(self, payload: bytes) -> Any:
        cfg = self.config
        url = cfg.base_url.rstrip("/") + "/chat/completions"
        request = urllib.request.Request(url, data=payload, headers=self._headers(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=cfg.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read()[:200].decode(errors="replace")
            if error.code in _RETRY_STATUSES:
                wait = _retry_after(error.headers.get("Retry-After"))
                raise _Retryable(f"HTTP {error.code}: {detail}", wait) from None
            raise RuntimeError(f"judge endpoint refused the request: HTTP {error.code}: {detail}") from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as error:
            raise _Retryable(f"{type(error).__name__}: {getattr(error, 'reason', error)}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise JudgeUnavailable(f"response is not JSON: {raw[:200]!r}") from None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        # Read at request time so the key is never stored, pickled or logged with the object.
        key = os.environ.get(self.config.api_key_env) if self.config.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(header: str | None) -> float:
    """Seconds from a numeric Retry-After header (HTTP dates are ignored: 0)."""
    try:
        return max(0.0, float(header)) if header else 0.0
    except ValueError:
        return 0.0


class PolicyChat:
    """``prompt -> answer`` with a local `codefalcon.models.Policy`, greedy.

    The prompt goes through the tokenizer's chat template when the policy has one (as a single
    user message), and is used as plain text otherwise. ``codefalcon.models`` is imported only
    when this class is used, so the feedback package does not load torch by itself.
    """

    def __init__(self, policy: Policy, max_new_tokens: int = 256) -> None:
        from codefalcon.models.generation import HFBackend, SamplingParams

        self.policy = policy
        self.params = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
        self._backend = HFBackend(policy, batch_size=1)

    def __call__(self, prompt: str) -> str:
        text = prompt
        if self.policy.is_chat:
            messages = [{"role": "user", "content": prompt}]
            render = self.policy.tokenizer.apply_chat_template
            text = render(messages, tokenize=False, add_generation_prompt=True)
        return self._backend.generate([text], self.params, n=1)[0][0].text
