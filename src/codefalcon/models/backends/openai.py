"""OpenAI-compatible HTTP back-end: samples from a ``/v1/completions`` server given its URL.

Works against ``vllm serve`` (GPU or CPU) and against ``codefalcon serve`` (an HF model behind
the same API, `codefalcon.models.serve`). Standard library only (urllib, threads).

With a tokenizer (the policy's), prompts are sent as token ids, encoded and cut exactly as
`HFBackend` does, and samples come back as token ids (``return_token_ids``, which vLLM and our
server honour), so ``Completion.token_ids`` are the sampled ids RL trains on. Without one,
prompts go as text and the server's text and token ids are taken as they come.

Each (prompt, sample j) is one request with ``n=1`` and ``seed`` = `row_seed` (seed, prompt, j),
sent ``concurrency`` at a time so the server batches them: sample j does not depend on the
batch, as in-process. Weight sync (`OpenAIBackend.sync` / `load_weights` / `load_adapter`):

- ``codefalcon serve``: ``POST /v1/load_weights {"path": folder}``.
- ``vllm serve`` started with ``VLLM_SERVER_DEV_MODE=1`` (and, for models with tied
  embeddings, ``--worker-extension-cls codefalcon.models.backends.vllm.WorkerExtension``):
  ``POST /collective_rpc`` with ``reload_weights(weights_path=folder)``, the re-tie of the
  output layer (`codefalcon.models.backends.vllm.retie_lm_head`), ``POST /reset_prefix_cache``.
  LoRA: started with ``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``,
  ``POST /v1/load_lora_adapter``, and later requests name the adapter as their model.

The folder is written on this machine, so the server must see the same file system.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from codefalcon.models.backends.common import export_policy
from codefalcon.models.generation import (
    Completion,
    FinishReason,
    SamplingParams,
    encode_for_generation,
    eos_token_ids,
    fan_out,
    finish_row,
)
from codefalcon.models.loading import Policy


class ServerUnavailableError(ConnectionError):
    """The generation server could not be reached or answered with an error."""


class OpenAIBackend:
    """`GenerationBackend` over an OpenAI-compatible completions server at ``url``.

    ``url``: the server's base, e.g. ``http://127.0.0.1:8000`` (a trailing ``/v1`` is fine).
    ``model``: the served model name (default: the first the server lists). ``tokenizer``: the
    policy's, to send token ids (recommended; see the module docstring). ``concurrency``:
    requests in flight. ``timeout``: seconds per request. ``api_key``: sent as a bearer token.
    """

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        tokenizer: Any = None,
        concurrency: int = 16,
        timeout: float = 600.0,
        api_key: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        base = url.rstrip("/")
        self.base = base[: -len("/v1")] if base.endswith("/v1") else base
        self.tokenizer = tokenizer
        self.concurrency = concurrency
        self.timeout = timeout
        self.api_key = api_key
        self.eos_ids = eos_token_ids(tokenizer, None) if tokenizer is not None else []
        card = self._first_model(model)
        self.model = str(card["id"])
        self.server = "codefalcon" if card.get("owned_by") == "codefalcon" else str(card.get("owned_by", ""))
        self.max_positions = card.get("max_model_len")
        self._workdir: Path | None = None

    @classmethod
    def from_policy(cls, url: str, policy: Policy, **options: Any) -> OpenAIBackend:
        return cls(url, tokenizer=policy.tokenizer, **options)

    # --- weights

    def sync(self, policy: Policy, folder: str | Path | None = None) -> None:
        """Save the policy (LoRA merged) to ``folder`` (default: a temporary one) and have the
        server load it."""
        if folder is None:
            if self._workdir is None:
                self._workdir = Path(tempfile.mkdtemp(prefix="codefalcon-http-"))
            folder = self._workdir / "weights"
        self.load_weights(export_policy(policy, folder))

    def load_weights(self, folder: str | Path) -> None:
        """Have the server reload its weights from a Hugging Face folder of the same model."""
        path = str(Path(folder).resolve())
        if self.server == "codefalcon":
            self._post("/v1/load_weights", {"path": path})
            return
        hint = " (start vllm serve with VLLM_SERVER_DEV_MODE=1 for weight reloads)"
        self._post("/collective_rpc", {"method": "reload_weights", "kwargs": {"weights_path": path}}, hint)
        try:  # a tied lm_head keeps its old weights after vLLM's reload (see `retie_lm_head`)
            self._post("/collective_rpc", {"method": "codefalcon_retie_lm_head"})
        except ServerUnavailableError as error:
            warnings.warn(
                f"{self.base}: could not re-tie the output layer after the reload ({error}); a model "
                "with tied embeddings keeps sampling from its old lm_head unless vllm serve runs with "
                "--worker-extension-cls codefalcon.models.backends.vllm.WorkerExtension",
                stacklevel=2,
            )
        self._post("/reset_prefix_cache", None, hint)

    def load_adapter(self, folder: str | Path, name: str) -> None:
        """Hot-load a saved LoRA adapter under ``name`` and sample from it from now on (vLLM:
        ``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``)."""
        body = {"lora_name": name, "lora_path": str(Path(folder).resolve())}
        hint = " (vllm serve needs --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)"
        self._post("/v1/load_lora_adapter", body, hint)
        self.model = name

    def close(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    # --- sampling

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, n: int = 1, *, first_sample: int = 0
    ) -> list[list[Completion]]:
        """``n`` completions per prompt, one request per distinct sample."""
        if self.tokenizer is None:
            encoded: list[tuple[Any, bool]] = [(p, False) for p in prompts]
        else:
            encoded = [
                encode_for_generation(self.tokenizer, p, params.max_new_tokens, self.max_positions)
                for p in prompts
            ]
        return fan_out(self.generate_rows, prompts, encoded, params, n, first_sample)

    def generate_rows(
        self, rows: Sequence[tuple[Any, bool]], seeds: Sequence[int], params: SamplingParams
    ) -> list[Completion]:
        """One completion per row (token ids, or text without a tokenizer), row k seeded
        ``seeds[k]``; ``concurrency`` requests in flight."""
        bodies = [self._request(prompt, seed, params) for (prompt, _), seed in zip(rows, seeds, strict=True)]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(bodies)))) as pool:
            answers = list(pool.map(lambda body: self._post("/v1/completions", body), bodies))
        return [
            self._completion(answer["choices"][0], params, truncated)
            for answer, (_, truncated) in zip(answers, rows, strict=True)
        ]

    def _request(self, prompt: Any, seed: int, params: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": 1.0 if params.greedy else params.top_p,
            "n": 1,
            "return_token_ids": True,
            "skip_special_tokens": True,
        }
        if not params.greedy:
            body["seed"] = seed
            if params.top_k > 0:
                body["top_k"] = params.top_k
        if params.stop:
            body["stop"] = list(params.stop)
        if params.logprobs:
            body["logprobs"] = 0  # the sampled token's log-prob only
        return body

    def _completion(self, choice: dict[str, Any], params: SamplingParams, truncated: bool) -> Completion:
        ids = [int(t) for t in choice.get("token_ids") or []]
        logprobs = None
        if params.logprobs and choice.get("logprobs"):
            values = choice["logprobs"].get("token_logprobs") or []
            logprobs = [float("nan") if x is None else float(x) for x in values]
        if self.tokenizer is not None and ids:
            return finish_row(self.tokenizer, ids, self.eos_ids, params.stop, truncated, logprobs)
        reason = FinishReason.LENGTH if choice.get("finish_reason") == "length" else FinishReason.STOP
        ended_by_eos = reason is FinishReason.STOP and choice.get("stop_reason") is None
        return Completion(
            str(choice.get("text", "")),
            tuple(ids),
            reason,
            truncated,
            ended_by_eos=ended_by_eos,
            logprobs=tuple(logprobs) if logprobs is not None else None,
        )

    # --- HTTP

    def _first_model(self, wanted: str | None) -> dict[str, Any]:
        cards = self._get("/v1/models").get("data") or []
        if wanted is not None:
            for card in cards:
                if card.get("id") == wanted:
                    return card
            names = ", ".join(str(c.get("id")) for c in cards) or "none"
            raise ServerUnavailableError(f"{self.base} does not serve model {wanted!r} (it serves: {names})")
        if not cards:
            raise ServerUnavailableError(f"{self.base}/v1/models lists no model")
        return cards[0]

    def _get(self, path: str) -> dict[str, Any]:
        return self._call(urllib.request.Request(self.base + path, headers=self._headers()), "")

    def _post(self, path: str, body: dict[str, Any] | None, hint: str = "") -> dict[str, Any]:
        data = json.dumps(body if body is not None else {}).encode()
        request = urllib.request.Request(self.base + path, data=data, headers=self._headers(), method="POST")
        return self._call(request, hint)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _call(self, request: urllib.request.Request, hint: str) -> dict[str, Any]:
        url = request.full_url
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", errors="replace")[:500]
            raise ServerUnavailableError(f"{url} answered HTTP {error.code}: {detail}{hint}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise ServerUnavailableError(
                f"cannot reach the generation server at {url} ({reason}); start one with "
                "`codefalcon serve MODEL --port PORT` or `vllm serve`, or check --backend-url"
            ) from None
        return json.loads(raw) if raw.strip() else {}
