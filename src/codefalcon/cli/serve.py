"""`codefalcon serve` and the ``--backend`` options that the sampling commands share."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from codefalcon.cli.common import err, fail


class Backend(str, Enum):
    hf = "hf"
    ctranslate2 = "ctranslate2"
    vllm = "vllm"
    openai = "openai"


BackendOption = Annotated[
    Backend,
    typer.Option(
        help="Generation engine: hf (transformers), ctranslate2, vllm (in-process), or openai (an "
        "OpenAI-compatible server at --backend-url: codefalcon serve, vllm serve). docs/models.md."
    ),
]
BackendUrlOption = Annotated[
    str | None, typer.Option(help="openai back-end: the server's base URL, e.g. http://127.0.0.1:8000.")
]
BackendThreadsOption = Annotated[
    int | None,
    typer.Option(help="CPU threads of the engine (default: the cores minus one for ctranslate2 and vllm)."),
]


def backend_options(backend: Backend, url: str | None, threads: int | None) -> dict[str, Any]:
    """The ``--backend*`` options as `BackendOptions` fields, checked (before any model loads)."""
    from pydantic import ValidationError

    from codefalcon.models import BackendOptions

    options = {"name": backend.value, "url": url, "threads": threads}
    try:
        BackendOptions(**options)
    except ValidationError as e:
        messages = "; ".join(item["msg"].removeprefix("Value error, ") for item in e.errors())
        raise fail(f"--backend: {messages}") from None
    return options


def build_backend(options: dict[str, Any], policy: Any, batch_size: int, seed: int) -> Any:
    """`make_backend` with its errors as command-line errors naming the option."""
    from codefalcon.models import BackendOptions, EngineMissingError, make_backend

    try:
        return make_backend(BackendOptions(**options), policy, batch_size=batch_size, seed=seed)
    except (EngineMissingError, ConnectionError, ValueError) as e:
        raise fail(f"--backend {options['name']}: {e}") from None


def serve(
    model: Annotated[
        str, typer.Argument(help="A local Hugging Face folder, a .gguf file, or a short name (smollm2-135m).")
    ],
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one (printed).")] = 8000,
    host: Annotated[str, typer.Option(help="Address to bind; the default takes local connections only.")] = (
        "127.0.0.1"
    ),
    batch_size: Annotated[int, typer.Option(help="Most sequences per generate call.")] = 16,
    lora: Annotated[Path | None, typer.Option(help="A saved peft LoRA adapter folder to apply.")] = None,
    dtype: Annotated[str, typer.Option(help="Weights dtype: float32 or bfloat16.")] = "float32",
    device: Annotated[str, typer.Option(help="auto (CUDA if available, else CPU), cpu, cuda or cuda:N.")] = (
        "auto"
    ),
    threads: Annotated[int | None, typer.Option(help="torch threads (default: torch's own).")] = None,
) -> None:
    """Serve a policy behind an OpenAI-compatible /v1/completions API (HF generate behind it).

    For --backend openai, scripts and the AI judge. Also POST /v1/load_weights {"path": folder}
    to load a newer checkpoint of the same model. Prints the URL on stdout once it listens.
    """
    import torch

    from codefalcon.models import load_policy
    from codefalcon.models.serve import serve as run_server

    if batch_size < 1:
        raise fail(f"--batch-size must be >= 1, got {batch_size}")
    if not 0 <= port < 65536:
        raise fail(f"--port must be in 0..65535, got {port}")
    if dtype not in ("float32", "bfloat16"):
        raise fail(f"--dtype must be float32 or bfloat16, got {dtype!r}")
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        policy = load_policy(model, dtype=dtype, lora=lora, device=device)
    except (FileNotFoundError, ValueError) as e:
        raise fail(f"model: {e}") from None

    def ready(url: str) -> None:
        print(url, flush=True)
        err.print(f"serving {policy.name} ({policy.kind}) at {url}/v1 (Ctrl-C stops)")

    try:
        run_server(policy, host, port, batch_size, on_ready=ready)
    except OSError as e:
        raise fail(f"cannot listen on {host}:{port}: {e}") from None
    sys.stdout.flush()
