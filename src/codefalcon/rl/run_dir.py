"""What every recipe does first: open its run folder, and walk its data in a resumable order."""

from __future__ import annotations

import logging
import random
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from codefalcon.configs import dump_config
from codefalcon.rl.checkpoint import Checkpoint, config_changes, latest_checkpoint

log = logging.getLogger(__name__)

RUN_CONTROL_KEYS = frozenset(
    {
        "out_dir",
        "device",
        "max_steps",
        "max_minutes",
        "save_every",
        "keep_checkpoints",
        "eval_every",
        "tensorboard",
        "exec_workers",
        "executor",
    }
)
"""Config keys of `codefalcon sft` and `train` that only say where and how long a run goes, how
often it saves and evaluates and how many workers it uses (and on which machines programs run,
``executor``): free to change when it resumes."""


class ConfigChangedError(ValueError):
    """A run folder's checkpoint was trained with another config than the one given to resume it."""


def open_run(
    out_dir: str | Path,
    config: BaseModel,
    seed: int,
    may_change: Collection[str] = RUN_CONTROL_KEYS,
    allow_config_change: bool = False,
    writer: bool = True,
    added_later: Mapping[str, Any] | None = None,
) -> tuple[Path, Checkpoint | None]:
    """Create the run folder, check a resumed run's config, save the resolved config in it, seed
    the RNGs; return the folder and its latest checkpoint (None for a fresh run; its RNG state is
    restored later with the rest).

    Resuming is refused (`ConfigChangedError`, naming every differing key) when ``config`` differs
    from the one the checkpoint saved in any key outside ``may_change``; with
    ``allow_config_change`` the differences are logged and the run continues under ``config``.
    ``writer``: False on the ranks other than 0 of a multi-process run, which only read the folder.
    ``added_later``: keys newer than some checkpoints, with their defaults as dumped
    (`newer_keys_at_default`).
    """
    out = Path(out_dir)
    if writer:
        out.mkdir(parents=True, exist_ok=True)
    checkpoint = latest_checkpoint(out / "checkpoints")
    if checkpoint is not None:
        check_resume_config(checkpoint, config, may_change, allow_config_change, added_later)
    if writer:
        (out / "config.yaml").write_text(dump_config(config), encoding="utf-8")
    torch.manual_seed(seed)
    random.seed(seed)
    return out, checkpoint


def check_resume_config(
    checkpoint: Checkpoint,
    config: BaseModel,
    may_change: Collection[str],
    allow_config_change: bool,
    added_later: Mapping[str, Any] | None = None,
) -> None:
    """Refuse (or, allowed, log) resuming ``checkpoint`` under a config that differs from its own
    in a key outside ``may_change`` (and outside `newer_keys_at_default` of ``added_later``)."""
    saved = checkpoint.state.get("config")
    if saved is None:
        log.warning("%s saved no config (an older checkpoint): its config is not checked", checkpoint.path)
        return
    current = config.model_dump(mode="json")
    free = {*may_change, *newer_keys_at_default(saved, current, added_later or {})}
    changes = config_changes(saved, current, free)
    if not changes:
        return
    listed = "; ".join(changes)
    if allow_config_change:
        log.warning("resuming %s with a changed config (allowed): %s", checkpoint.path, listed)
        return
    raise ConfigChangedError(
        f"{checkpoint.path} was trained with another config: {listed}. Resume with the config it "
        "saved, use a new out_dir, or allow the change (--allow-config-change, or "
        f"allow_config_change=True). Free to change on resume: {', '.join(sorted(may_change))}"
    )


def newer_keys_at_default(
    saved: Mapping[str, Any], current: Mapping[str, Any], added_later: Mapping[str, Any]
) -> set[str]:
    """The ``added_later`` keys (key -> default, as dumped) that the checkpoint's config ``saved``
    lacks and ``current`` leaves at their default: such a checkpoint trained as the default does,
    so resuming it with the default is no change (one resumed with another value still is).
    Keys are dotted for nested ones (``grpo.oversample``). Example: added_later {"tis_cap": None},
    saved without it, current tis_cap None -> {"tis_cap"}.
    """
    missing = object()

    def lookup(config: Mapping[str, Any], dotted: str) -> Any:
        value: Any = config
        for part in dotted.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return missing
            value = value[part]
        return value

    return {
        key
        for key, default in added_later.items()
        if lookup(saved, key) is missing and lookup(current, key) == default
    }


def seeded_epochs(
    n_items: int, per_step: int, key: str, position: tuple[int, int], full_steps: bool = False
) -> Iterator[tuple[list[int], tuple[int, int]]]:
    """Endless steps of ``per_step`` item indices, from (epoch, offset), in a seeded order per epoch.

    Each step also yields the position after it, which a checkpoint stores: restarting from that
    position gives exactly the steps an uninterrupted run would have taken next.

    An epoch's last step holds what is left (``n_items % per_step`` items) unless ``full_steps``:
    then the epoch's order is extended by its own first items up to a multiple of ``per_step``,
    so every step is full and no step repeats an item (those few items are seen twice in the
    epoch). An RL step on one leftover task would otherwise take a whole optimiser step on it.
    Example: 5 items, 2 per step, order [3, 0, 4, 1, 2] -> [3, 0], [4, 1], [2, 3].
    """
    epoch, offset = position
    while True:
        order = list(range(n_items))
        random.Random(f"{key}/{epoch}").shuffle(order)
        if full_steps and n_items > per_step:
            order += order[: -n_items % per_step]
        while offset < len(order):
            chosen = order[offset : offset + per_step]
            offset += per_step
            yield chosen, ((epoch, offset) if offset < len(order) else (epoch + 1, 0))
        epoch, offset = epoch + 1, 0


def progress_bar(total: int, done: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, unit="step", desc=desc, disable=not enabled)
