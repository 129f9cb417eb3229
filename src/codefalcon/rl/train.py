"""`codefalcon train`: online RL from execution feedback, one recipe per algorithm.

`train_rl` runs the recipe of ``config.algo`` (`codefalcon.rl.recipes`): ``grpo.py`` (GRPO and
RLOO, which differ only in their advantage function), ``ppo.py`` (PPOCoder), ``coderl.py`` and
``falcon.py`` (meta-RL) and ``rft.py`` (rejection-sampling fine-tuning, the expert-iteration
baseline). Each recipe builds what its algorithm needs and writes its step top to
bottom in its own file: sample -> execute -> reward -> advantage -> loss -> update.

`train_loop` is the skeleton all of them run that step in: greedy pass@1 "before" -> steps until
``max_steps`` or ``max_minutes``, each logged, evaluated every ``eval_every`` and checkpointed
every ``save_every`` and at the end -> pass@1 "after". Every ``backend.sync_every`` steps the
sampling engine gets the trained weights (`Session.sync_engine`; nothing to do for hf). Samples
of step ``s`` are seeded from (seed, s) and the task order from (seed, epoch), so a run resumed
from a checkpoint continues exactly; a checkpoint refuses a resume under a different config
(`codefalcon.rl.run_dir.open_run`).

On several processes (`codefalcon.rl.distributed`) every rank draws the same global batch and
gives the recipe's step its shard of the tasks; the step's metrics are merged across ranks before
rank 0 logs them. GRPO, RLOO, PPO and CodeRL run this way; FALCON refuses more than one process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from codefalcon.rl.checkpoint import latest_checkpoint
from codefalcon.rl.distributed import current_world
from codefalcon.rl.run_dir import progress_bar, seeded_epochs
from codefalcon.rl.session import PromptFor, Resumed, Session
from codefalcon.rl.train_config import TrainConfig
from codefalcon.tasks.record import Task

log = logging.getLogger(__name__)

DATA_PARALLEL = frozenset({"grpo", "rloo", "ppo", "coderl"})
"""Recipes that run on several processes. FALCON adapts a copy per task, sums its own Reptile
gradient and writes its memory store: until those are reduced across ranks and kept to rank 0 it
would silently train something else than one process does, so it refuses."""

TrainStep = Callable[[int, list[Task]], dict[str, float]]
"""A recipe's step: (step index, the step's tasks) -> the step's metrics."""
Save = Callable[[int, tuple[int, int]], None]
"""A recipe's checkpoint: (step, data position after it) -> None."""


def train_rl(
    config: TrainConfig, progress: bool = True, *, allow_config_change: bool = False
) -> dict[str, Any]:
    """Run (or resume) RL training; returns the run summary (pass@1 before/after, steps, final model).

    ``allow_config_change``: resume even if ``config`` differs from the checkpoint's in keys that
    change what is learnt (`codefalcon.rl.train_config.MAY_CHANGE_ON_RESUME` lists the free ones).
    """
    from codefalcon.rl.recipes import coderl, falcon, grpo, ppo, rft  # they import train_loop from here

    world = current_world()
    if world.size > 1 and config.algo not in DATA_PARALLEL:
        raise ValueError(
            f"{config.algo} does not run on several processes yet ({world.size} launched): run it "
            f"as one process, or use {' or '.join(sorted(DATA_PARALLEL))}"
        )
    recipe = {
        "grpo": grpo.train,
        "rloo": grpo.train,
        "ppo": ppo.train,
        "coderl": coderl.train,
        "falcon": falcon.train,
        "rft": rft.train,
    }[config.algo]
    return recipe(config, progress, allow_config_change=allow_config_change)


def train_loop(
    session: Session, start: Resumed, train_step: TrainStep, save: Save, prompt_for: PromptFor, progress: bool
) -> dict[str, Any]:
    """Evaluate, run ``train_step`` to the end (see the module docstring), evaluate; the summary."""
    config, metrics, world = session.config, session.metrics, session.world
    evaluate = session.evaluate if session.eval_tasks else None
    if session.checkpoint is None and evaluate:
        metrics.log(0, {"eval/pass@1": evaluate("before", prompt_for)})
    step, position = start.step, start.position
    batches = _task_batches(session.tasks, config, position)
    bar = progress_bar(config.max_steps, step, "train", progress and world.is_writer)
    started = time.perf_counter()
    while step < config.max_steps:
        out_of_time = bool(config.max_minutes and time.perf_counter() - started > 60 * config.max_minutes)
        if world.sum(float(out_of_time)) > 0:  # every rank stops at the same step
            log.warning("max_minutes reached at step %d", step)
            break
        batch, position = next(batches)
        shard = world.shard(batch)  # this rank's whole tasks (all of them in one process)
        record = world.mean_metrics(_train_step(train_step, step, shard), len(shard), ("verdict/",))
        step += 1
        if step % config.backend.sync_every == 0:  # after the step's optimizer updates
            record.update(session.sync_engine())
        if evaluate and step % config.eval_every == 0 and step < config.max_steps:
            record["eval/pass@1"] = evaluate(f"step-{step:06d}", prompt_for)
        metrics.log(step, record)
        bar.update(1)
        bar.set_postfix(reward=f"{record['reward/total']:.3f}", pass_rate=f"{record['exec/pass_rate']:.2f}")
        if step % config.save_every == 0 or step == config.max_steps:
            save(step, position)
    bar.close()
    last = latest_checkpoint(session.out / "checkpoints")
    if last is None or last.step != step:  # stopped by max_minutes between two saves
        save(step, position)
    summary: dict[str, Any] = {"algo": config.algo, "steps": step, "train_tasks": len(session.tasks)}
    if evaluate:
        summary["pass@1_after"] = evaluate("after", prompt_for)
        metrics.log(step, {"eval/pass@1": summary["pass@1_after"]})
        summary["pass@1_before"] = session.pass_at_1("before")
    return {**summary, "final_model": str(session.out / "final")}


def _train_step(train_step: TrainStep, step: int, tasks: list[Task]) -> dict[str, float]:
    """One recipe step. Its own module-level function so tests can interrupt a run inside a step
    (tests/rl/test_train.py and tests/test_pipeline.py patch it to raise KeyboardInterrupt)."""
    return train_step(step, tasks)


def _task_batches(
    tasks: list[Task], config: TrainConfig, position: tuple[int, int]
) -> Iterator[tuple[list[Task], tuple[int, int]]]:
    """Endless batches of ``tasks_per_step`` tasks from (epoch, offset), a seeded order per epoch;
    every batch full (an epoch's leftover is topped up from its start)."""
    key = f"codefalcon.train/{config.seed}"
    for index, after in seeded_epochs(len(tasks), config.tasks_per_step, key, position, full_steps=True):
        yield [tasks[i] for i in index], after
