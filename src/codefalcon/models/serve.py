"""A small OpenAI-compatible completions server over `HFBackend` (``codefalcon serve``).

It puts any policy codefalcon can load behind the HTTP API that ``vllm serve`` speaks, so the
HTTP back-end (`codefalcon.models.backends.openai`) and other tools (the AI judge, scripts)
can sample from it, and so that back-end is tested here against a real process. Standard
library only (``http.server``); one model, real generation.

Endpoints:

- ``GET /health``; ``GET /v1/models`` (``owned_by: "codefalcon"``, ``max_model_len``).
- ``POST /v1/completions``: OpenAI's completions request: ``prompt`` (text, token ids, or a
  list of either), ``max_tokens`` (16), ``temperature`` (1), ``top_p`` (1), ``n`` (1),
  ``stop``, ``seed``, ``logprobs`` (0 or more: the sampled token's), plus vLLM's ``top_k``
  and ``return_token_ids``. Sample j of a prompt is seeded from (``seed``, prompt, j): the
  same request gives the same samples whatever else is batched with it. ``token_ids`` end with
  the eos id when the model ended the sample (as vLLM's do).
- ``POST /v1/load_weights {"path": folder}``: load new weights (a Hugging Face folder of the
  same model, e.g. the trainer's latest save) between generations.

Concurrent requests are batched: a worker thread takes what has arrived within
``max_wait_s`` (up to ``batch_size`` rows), groups rows with equal sampling settings and
samples each group in one `HFBackend.generate_rows` call.
"""

from __future__ import annotations

import json
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch

from codefalcon.models.decoding import row_seed
from codefalcon.models.generation import Completion, HFBackend, SamplingParams
from codefalcon.models.loading import Policy


class RequestError(ValueError):
    """A request the server cannot serve (answered 400 with this message)."""


@dataclass
class _Work:
    """One unit for the worker: rows to sample, or a call to run between batches."""

    rows: list[tuple[list[int], bool]] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    params: SamplingParams | None = None
    call: Callable[[], Any] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class Batcher:
    """Runs sampling work on one thread, batching rows that arrive close together."""

    def __init__(self, backend: HFBackend, max_wait_s: float = 0.01) -> None:
        self.backend = backend
        self.max_wait_s = max_wait_s
        self.inbox: queue.Queue[_Work | None] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="codefalcon-batcher", daemon=True)
        self.thread.start()

    def sample(self, rows: list[tuple[list[int], bool]], seeds: list[int], params: SamplingParams) -> list:
        return self._submit(_Work(rows=rows, seeds=seeds, params=params))

    def run(self, call: Callable[[], Any]) -> Any:
        """Run ``call`` on the worker thread between batches (e.g. a weight load)."""
        return self._submit(_Work(call=call))

    def stop(self) -> None:
        self.inbox.put(None)
        self.thread.join(timeout=10)

    def _submit(self, work: _Work) -> Any:
        self.inbox.put(work)
        work.done.wait()
        if work.error is not None:
            raise work.error
        return work.result

    def _loop(self) -> None:
        while True:
            first = self.inbox.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.max_wait_s
            while first.call is None and sum(len(w.rows) for w in batch) < self.backend.batch_size:
                try:
                    work = self.inbox.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if work is None:
                    self.inbox.put(None)  # stop after this batch
                    break
                batch.append(work)
            self._serve(batch)

    def _serve(self, batch: list[_Work]) -> None:
        calls = [w for w in batch if w.call is not None]
        groups: dict[SamplingParams, list[_Work]] = {}
        for work in batch:
            if work.call is None:
                assert work.params is not None
                groups.setdefault(replace(work.params, seed=0), []).append(work)
        for params, works in groups.items():
            try:
                rows = [r for w in works for r in w.rows]
                completions = self.backend.generate_rows(rows, [s for w in works for s in w.seeds], params)
                start = 0
                for work in works:
                    work.result = completions[start : start + len(work.rows)]
                    start += len(work.rows)
            except Exception as error:  # answered as a 500, the server keeps running
                for work in works:
                    work.error = error
            for work in works:
                work.done.set()
        for work in calls:
            try:
                assert work.call is not None
                work.result = work.call()
            except Exception as error:
                work.error = error
            work.done.set()


class GenerationServer(ThreadingHTTPServer):
    """The HTTP server: `Handler` answers, `Batcher` samples. ``port=0`` picks a free port."""

    daemon_threads = True

    def __init__(
        self,
        policy: Policy,
        host: str = "127.0.0.1",
        port: int = 8000,
        batch_size: int = 16,
        max_wait_s: float = 0.01,
    ) -> None:
        super().__init__((host, port), Handler)
        self.policy = policy
        self.backend = HFBackend(policy, batch_size=batch_size)
        self.batcher = Batcher(self.backend, max_wait_s)
        self.model_name = Path(policy.name).name or policy.name

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def server_close(self) -> None:
        self.batcher.stop()
        super().server_close()

    # --- what the handler calls

    def models(self) -> dict[str, Any]:
        card = {
            "id": self.model_name,
            "object": "model",
            "owned_by": "codefalcon",
            "max_model_len": self.policy.max_positions,
        }
        return {"object": "list", "data": [card]}

    def completions(self, body: dict[str, Any]) -> dict[str, Any]:
        params, n, seed = _parse_sampling(body)
        prompts = _parse_prompts(body.get("prompt"))
        rows, seeds = [], []
        for prompt in prompts:
            row = self._encode(prompt, params.max_new_tokens)
            key = prompt if isinstance(prompt, str) else json.dumps(prompt)
            for j in range(1 if params.greedy else n):
                rows.append(row)
                seeds.append(row_seed(seed, key, j))
        completions = self.batcher.sample(rows, seeds, params)
        per_prompt = 1 if params.greedy else n
        choices = []
        for i in range(len(prompts)):
            for j in range(n):
                completion = completions[i * per_prompt + (0 if params.greedy else j)]
                choices.append(self._choice(len(choices), completion, body))
        prompt_tokens = sum(len(self._encode(p, params.max_new_tokens)[0]) for p in prompts)
        completion_tokens = sum(c.n_tokens for c in completions) * (n if params.greedy else 1)
        return {
            "id": f"cmpl-{secrets.token_hex(8)}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def load_weights(self, body: dict[str, Any]) -> dict[str, Any]:
        path = body.get("path")
        if not isinstance(path, str) or not Path(path).is_dir():
            raise RequestError(f"load_weights needs 'path', a folder on the server's machine; got {path!r}")
        started = time.perf_counter()
        loaded = self.batcher.run(lambda: load_weights_into(self.policy.model, Path(path)))
        return {"loaded_tensors": loaded, "seconds": time.perf_counter() - started}

    def _encode(self, prompt: str | list[int], max_new_tokens: int) -> tuple[list[int], bool]:
        if isinstance(prompt, str):
            return self.backend.encode(prompt, max_new_tokens)
        limit = self.policy.max_positions
        room = None if limit is None else max(1, limit - max_new_tokens)
        return (prompt[-room:], True) if room is not None and len(prompt) > room else (prompt, False)

    def _choice(self, index: int, completion: Completion, body: dict[str, Any]) -> dict[str, Any]:
        ids = list(completion.token_ids)
        if completion.ended_by_eos:
            ids.append(self.backend.eos_ids[0])
        choice: dict[str, Any] = {
            "index": index,
            "text": completion.text,
            "finish_reason": completion.finish_reason.value,
            "stop_reason": None,
            "logprobs": None,
        }
        if body.get("logprobs") is not None and completion.logprobs is not None:
            values = [*completion.logprobs, *([None] * (len(ids) - len(completion.logprobs)))]
            tokenizer = self.policy.tokenizer
            choice["logprobs"] = {
                "tokens": tokenizer.convert_ids_to_tokens(ids),
                "token_logprobs": values,
                "top_logprobs": None,
                "text_offset": None,
            }
        if body.get("return_token_ids"):
            choice["token_ids"] = ids
        return choice


class Handler(BaseHTTPRequestHandler):
    """Routes requests to the `GenerationServer`; errors are JSON in OpenAI's shape."""

    server: GenerationServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/health":
            self._send(HTTPStatus.OK, {})
        elif self.path.rstrip("/") == "/v1/models":
            self._send(HTTPStatus.OK, self.server.models())
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no route GET {self.path}")

    def do_POST(self) -> None:
        routes = {"/v1/completions": self.server.completions, "/v1/load_weights": self.server.load_weights}
        route = routes.get(self.path.rstrip("/"))
        if route is None:
            self._read()  # drain the body so the connection stays usable
            self._error(HTTPStatus.NOT_FOUND, f"no route POST {self.path}")
            return
        try:
            body = json.loads(self._read() or b"{}")
            if not isinstance(body, dict):
                raise RequestError("the request body must be a JSON object")
            self._send(HTTPStatus.OK, route(body))
        except (RequestError, json.JSONDecodeError) as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error))
        except Exception as error:  # a failed generation is the server's fault, not the client's
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(error).__name__}: {error}")

    def log_message(self, format: str, *args: Any) -> None:  # http.server's signature
        """Quiet: one line per request would drown the output of a training run."""

    def _read(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: HTTPStatus, message: str) -> None:
        kind = "invalid_request_error" if status == HTTPStatus.BAD_REQUEST else "server_error"
        self._send(status, {"error": {"message": message, "type": kind, "code": status.value}})


def load_weights_into(model: torch.nn.Module, folder: Path) -> int:
    """Copy the tensors of a folder's ``*.safetensors`` into ``model`` in place; returns how many.

    Every file tensor must name a model tensor of the same shape; model tensors the folder lacks
    must be tied to ones it has (e.g. GPT-2's ``lm_head``), so a partial or foreign checkpoint
    is refused rather than half loaded.
    """
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise RequestError(f"no *.safetensors weights in {folder}")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(file))
    own = model.state_dict()
    unknown = [k for k in state if k not in own]
    if unknown:
        raise RequestError(f"{folder} has tensors this model lacks, e.g. {unknown[:3]}")
    missing = [k for k in own if k not in state]
    untied = [k for k in missing if not any(own[k].data_ptr() == own[j].data_ptr() for j in state)]
    if untied:
        raise RequestError(f"{folder} lacks tensors of this model, e.g. {untied[:3]}")
    with torch.no_grad():
        for name, tensor in state.items():
            if own[name].shape != tensor.shape:
                shapes = f"{tuple(tensor.shape)} in {folder}, {tuple(own[name].shape)} here"
                raise RequestError(f"{name}: {shapes}")
            own[name].copy_(tensor)
    return len(state)


def _parse_sampling(body: dict[str, Any]) -> tuple[SamplingParams, int, int]:
    """SamplingParams, n and the seed of a completions request (OpenAI's defaults)."""
    for unsupported in ("echo", "best_of", "suffix", "stream"):
        if body.get(unsupported):
            raise RequestError(f"{unsupported!r} is not supported by codefalcon serve")
    stop = body.get("stop") or ()
    stop = (stop,) if isinstance(stop, str) else tuple(stop)
    n = body.get("n", 1)
    if not isinstance(n, int) or n < 1:
        raise RequestError(f"n must be a positive integer, got {n!r}")
    seed = body.get("seed")
    seed = secrets.randbits(62) if seed is None else seed
    if not isinstance(seed, int):
        raise RequestError(f"seed must be an integer, got {seed!r}")
    try:
        params = SamplingParams(
            temperature=float(body.get("temperature", 1.0)),
            top_p=float(body.get("top_p", 1.0)),
            top_k=max(0, int(body.get("top_k", 0) or 0)),
            max_new_tokens=int(body.get("max_tokens", 16)),
            stop=stop,
            logprobs=body.get("logprobs") is not None,
        )
    except (TypeError, ValueError) as error:
        raise RequestError(str(error)) from None
    return params, n, seed


def _parse_prompts(prompt: Any) -> list[str | list[int]]:
    """OpenAI's prompt forms: a string, token ids, or a list of either."""
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(t, int) for t in prompt):
            return [prompt]
        if all(isinstance(p, str) for p in prompt):
            return list(prompt)
        if all(isinstance(p, list) and p and all(isinstance(t, int) for t in p) for p in prompt):
            return [list(p) for p in prompt]
    raise RequestError("prompt must be a string, a list of token ids, or a non-empty list of either")


def serve(
    policy: Policy,
    host: str = "127.0.0.1",
    port: int = 8000,
    batch_size: int = 16,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``policy`` until interrupted; ``on_ready(url)`` is called once it listens."""
    server = GenerationServer(policy, host, port, batch_size)
    if on_ready is not None:
        on_ready(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


__all__ = ["Batcher", "GenerationServer", "RequestError", "load_weights_into", "serve"]
