"""What every recipe does first: open its run folder, and walk its data in a resumable order."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from codefalcon.configs import dump_config
from codefalcon.rl.checkpoint import Checkpoint, latest_checkpoint


def open_run(out_dir: str | Path, config: BaseModel, seed: int) -> tuple[Path, Checkpoint | None]:
    """Create the run folder, save the resolved config in it, seed the RNGs; return the folder and
    its latest checkpoint (None for a fresh run; its RNG state is restored later with the rest)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(dump_config(config), encoding="utf-8")
    torch.manual_seed(seed)
    random.seed(seed)
    return out, latest_checkpoint(out / "checkpoints")


def seeded_epochs(
    n_items: int, per_step: int, key: str, position: tuple[int, int]
) -> Iterator[tuple[list[int], tuple[int, int]]]:
    """Endless steps of ``per_step`` item indices, from (epoch, offset), in a seeded order per epoch.

    Each step also yields the position after it, which a checkpoint stores: restarting from that
    position gives exactly the steps an uninterrupted run would have taken next.
    """
    epoch, offset = position
    while True:
        order = list(range(n_items))
        random.Random(f"{key}/{epoch}").shuffle(order)
        while offset < n_items:
            chosen = order[offset : offset + per_step]
            offset += per_step
            yield chosen, ((epoch, offset) if offset < n_items else (epoch + 1, 0))
        epoch, offset = epoch + 1, 0


def progress_bar(total: int, done: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, unit="step", desc=desc, disable=not enabled)
