"""Tiny backbones for the critic tests: a 1-layer GPT-2 and a 1-layer T5, built once per session."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
import torch

from codefalcon.critic import Critic
from codefalcon.models import build_tiny_model

# A few stdlib modules: enough Python for a 500-token BPE, trained in a fraction of a second.
SOURCE_MODULES = ("textwrap.py", "shlex.py", "bisect.py")


def build_backbone(out_dir: Path, arch: str) -> Path:
    """A 1-layer, 32-wide model (about 30k parameters) with a 500-token BPE."""
    root = Path(sysconfig.get_paths()["stdlib"])
    build_tiny_model(
        out_dir,
        source_files=[root / name for name in SOURCE_MODULES],
        vocab_size=500,
        n_layer=1,
        n_embd=32,
        n_head=2,
        n_positions=256,
        arch=arch,
    )
    return out_dir


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: these models are tiny, and the machine's two cores are shared, where
    torch's thread pool makes small matmuls tens of times slower. Restored after each test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_backbone(tmp_path_factory.mktemp("critic-gpt2"), "gpt2")


@pytest.fixture(scope="session")
def t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_backbone(tmp_path_factory.mktemp("critic-t5"), "t5")


@pytest.fixture(params=["gpt2", "t5"])
def backbone_dir(request: pytest.FixtureRequest, gpt2_dir: Path, t5_dir: Path) -> Path:
    """Each backbone shape in turn: decoder-only and encoder-decoder."""
    return gpt2_dir if request.param == "gpt2" else t5_dir


def _make_critic(path: Path, binary: bool = False, seed: int = 0) -> Critic:
    """A fresh critic in eval mode, with small maxima that fit the tiny GPT-2's 256 positions."""
    critic = Critic.from_backbone(
        path, binary=binary, max_problem_tokens=64, max_program_tokens=96, seed=seed
    )
    return critic.eval()


@pytest.fixture(scope="session")
def make_critic():
    """`_make_critic` itself: tests build fresh critics (they may train or patch them)."""
    return _make_critic
