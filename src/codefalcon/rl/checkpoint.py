"""Checkpoints that resume exactly: weights, optimiser, scheduler, RNG, step and data position.

Layout under a run's ``checkpoints/`` folder, one folder per optimiser step::

    step-000120/
        model/        save_pretrained output (a full model with its tokenizer, or a peft adapter)
        trainer.pt    optimiser and scheduler state dicts, RNG states, extra tensors
        state.json    step, data position, the resolved config, anything JSON the recipe wants back

A checkpoint is written into ``step-000120.tmp`` and renamed when complete, so a kill at any
moment leaves either the previous checkpoints or the new one, never a half-written folder that
`latest_checkpoint` would pick. Older ones beyond ``keep`` are deleted after the rename.

A run resumed with another config than its checkpoint's would continue a different experiment
under the old one's name, so `config_changes` names what differs and the recipes refuse it
(`codefalcon.rl.run_dir.open_run`) unless told otherwise.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

_PREFIX = "step-"


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint folder and what its ``state.json`` holds."""

    path: Path
    step: int
    state: dict[str, Any]

    @property
    def model_dir(self) -> Path:
        return self.path / "model"


def rng_state() -> dict[str, Any]:
    """Every RNG a recipe draws from: Python's, numpy's, torch's CPU one and, with CUDA, its GPUs'
    (dropout on the GPU draws from those)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore `rng_state`; CUDA states only on a machine with as many GPUs (else they are dropped)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(
    root: str | Path,
    step: int,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict[str, Any],
    *,
    extra: dict[str, Any] | None = None,
    keep: int = 2,
) -> Checkpoint:
    """Write checkpoint ``step`` under ``root`` atomically and prune to the newest ``keep``.

    ``state`` must be JSON-serialisable (step counters, data position, metrics); ``extra`` holds
    tensors or state dicts (a value head, a KL controller) saved in ``trainer.pt``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{_PREFIX}{step:06d}"
    tmp = root / f"{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    model.save_pretrained(tmp / "model")
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp / "model")
    trainer = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng_state(),
        "extra": extra or {},
    }
    torch.save(trainer, tmp / "trainer.pt")
    (tmp / "state.json").write_text(json.dumps({**state, "step": step}, indent=2), encoding="utf-8")
    _fsync_tree(tmp)
    if final.exists():  # the same step saved again (e.g. at the end of a resumed run)
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old.path, ignore_errors=True)
    return Checkpoint(final, step, {**state, "step": step})


def list_checkpoints(root: str | Path) -> list[Checkpoint]:
    """Complete checkpoints under ``root``, oldest first (unfinished ``.tmp`` folders ignored)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        if not path.name.startswith(_PREFIX) or path.suffix == ".tmp":
            continue
        state_file = path / "state.json"
        if not state_file.is_file() or not (path / "trainer.pt").is_file():
            continue
        state = json.loads(state_file.read_text(encoding="utf-8"))
        found.append(Checkpoint(path, int(state["step"]), state))
    return sorted(found, key=lambda c: c.step)


def latest_checkpoint(root: str | Path) -> Checkpoint | None:
    checkpoints = list_checkpoints(root)
    return checkpoints[-1] if checkpoints else None


def load_trainer_state(
    checkpoint: Checkpoint, optimizer: torch.optim.Optimizer, scheduler: Any
) -> dict[str, Any]:
    """Restore optimiser, scheduler and RNG from ``checkpoint``; return its ``extra`` dict.

    Everything is read onto the CPU, so a checkpoint written on a GPU resumes on a CPU-only
    machine and the other way round: the optimiser moves its state to its parameters' device
    (build it over the weights where they will train, before calling this), RNG states must be
    CPU tensors anyway, and ``extra`` tensors are CPU (``load_state_dict`` copies them into place).
    """
    trainer = torch.load(checkpoint.path / "trainer.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(trainer["optimizer"])
    if scheduler is not None and trainer["scheduler"] is not None:
        scheduler.load_state_dict(trainer["scheduler"])
    set_rng_state(trainer["rng"])
    return trainer["extra"]


def _fsync_tree(folder: Path) -> None:
    """Push every file of ``folder`` to disk before the rename publishes it."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


_ABSENT = "(absent)"


def config_changes(
    saved: Mapping[str, Any], current: Mapping[str, Any], may_change: Collection[str] = ()
) -> list[str]:
    """What differs between two configs (``model_dump(mode="json")`` dicts), as ``key: old -> new``.

    Keys are dotted (``grpo.eps_high``), in the config's order; a key in only one config shows
    ``(absent)`` on the other side. Keys in ``may_change``, and every key under one of them, are
    left out. Example: ``config_changes({"lr": 0.001, "grpo": {"beta": 0.0}, "max_steps": 4},
    {"lr": 0.002, "grpo": {"beta": 0.1}, "max_steps": 8}, {"max_steps"})`` ->
    ``["lr: 0.001 -> 0.002", "grpo.beta: 0.0 -> 0.1"]``.
    """
    changes: list[str] = []
    _diff("", saved, current, frozenset(may_change), changes)
    return changes


def _diff(key: str, old: Any, new: Any, may_change: frozenset[str], out: list[str]) -> None:
    if key and any(key == k or key.startswith(f"{k}.") for k in may_change):
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for name in dict.fromkeys([*old, *new]):
            _diff(
                f"{key}.{name}" if key else str(name),
                old.get(name, _ABSENT),
                new.get(name, _ABSENT),
                may_change,
                out,
            )
    elif old != new:
        out.append(f"{key}: {_shown(old)} -> {_shown(new)}")


def _shown(value: Any) -> str:
    return value if value == _ABSENT else json.dumps(value)
