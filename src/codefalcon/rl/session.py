"""What every RL recipe sets up the same way: run folder, policy, tasks, executor, back-end, scorer.

The back-end samples the rollouts: HF's generate on the trainer's own model by default, or an
engine with its own copy of the weights (``backend:``, `codefalcon.models.make_backend`), which
`Session.sync_engine` refreshes after optimizer steps and the session closes at its end.

`open_session` opens them in one place and closes them together; on a clean exit it writes the
final model to ``out_dir/final``. On several processes (`codefalcon.rl.distributed`) each rank
opens its own session over the same run folder, and only rank 0 writes to it. What differs
between algorithms (a frozen reference, a value head, a critic, long-term memory, the optimiser
over the right parameters) each recipe builds itself, after this, in its own file.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from codefalcon.evaluation.summary import EvalSummary, read_summary
from codefalcon.execution import Executor, RayExecutor, open_executor
from codefalcon.feedback import RewardScorer
from codefalcon.models import HFBackend, Policy, Prompt, SamplingParams, make_backend, model_device
from codefalcon.models.generation import SyncedBackend
from codefalcon.rl.checkpoint import Checkpoint, load_trainer_state, save_checkpoint
from codefalcon.rl.distributed import World, current_world
from codefalcon.rl.metrics_log import MetricsLog
from codefalcon.rl.optim import autocast_enabled
from codefalcon.rl.policy_setup import load_trainable_policy
from codefalcon.rl.rollout import Rollouts, collect_rollouts
from codefalcon.rl.run_dir import open_run
from codefalcon.rl.task_filter import filter_by_pass_rate
from codefalcon.rl.train_config import ADDED_LATER, MAY_CHANGE_ON_RESUME, TrainConfig
from codefalcon.tasks.record import Task
from codefalcon.tasks.source import load_sources

log = logging.getLogger(__name__)

PromptFor = Callable[[Task], Prompt]


@dataclass(frozen=True)
class Resumed:
    """Where a run starts: step 0 at the data's start, or a checkpoint's step and position."""

    step: int = 0
    position: tuple[int, int] = (0, 0)
    """(epoch, offset) of the next task batch (`codefalcon.rl.run_dir.seeded_epochs`)."""
    extra: dict[str, Any] | None = None
    """The recipe's own checkpointed state (value head, KL controller); None for a fresh run."""


@dataclass(frozen=True)
class Session:
    """The shared resources of one RL run (see the module docstring)."""

    config: TrainConfig
    out: Path
    checkpoint: Checkpoint | None
    """The checkpoint being resumed; None for a fresh run."""
    policy: Policy
    tasks: list[Task]
    eval_tasks: list[Task]
    metrics: MetricsLog
    executor: Executor | RayExecutor
    backend: SyncedBackend
    """The engine that samples rollouts (``config.backend``); `encoder` itself for hf."""
    encoder: HFBackend
    """HF over the trainer's policy: lays samples out as tensors whichever engine drew them."""
    scorer: RewardScorer
    stack: contextlib.ExitStack
    """Closes with the session: where a recipe opens what it needs for the whole run (memory)."""
    world: World
    """This process's rank among the training processes (size 1 alone); rank 0 writes."""

    @property
    def device(self) -> torch.device:
        return model_device(self.policy.model)

    @property
    def autocast(self) -> bool:
        """Resolved bf16 autocast for the policy's device (`codefalcon.rl.optim.autocast_enabled`)."""
        return autocast_enabled(self.config.bf16_autocast, self.device)

    @property
    def external_engine(self) -> bool:
        """Rollouts come from an engine with its own weights (not the trainer's model)."""
        return self.backend is not self.encoder

    def sampling(self, step: int) -> SamplingParams:
        """Rollout sampling of ``step``: new samples every step, the same ones after a resume.
        Another engine than HF also reports its log-probs (``sample/logp_gap``, ``tis_cap``)."""
        options = self.config.sampling
        return SamplingParams(
            temperature=options.temperature,
            top_p=options.top_p,
            max_new_tokens=options.max_new_tokens,
            stop=tuple(options.stop),
            seed=self.config.seed * 1_000_003 + step,
            logprobs=self.external_engine,
        )

    def sync_engine(self) -> dict[str, float]:
        """Copy the policy's current weights into the sampling engine; ``time/sync`` (seconds).

        Nothing for hf, which samples from the trained model itself. A server (openai) is
        shared by the ranks of a multi-process run, so only rank 0 tells it to reload.
        """
        if not self.external_engine:
            return {}
        t0 = time.perf_counter()
        if self.world.is_writer or self.config.backend.name != "openai":
            self.backend.sync(self.policy)
        self.world.barrier()  # no rank samples before the server has the new weights
        return {"time/sync": time.perf_counter() - t0}

    def sample(
        self, tasks: list[Task], step: int, prompt_for: PromptFor
    ) -> tuple[Rollouts, dict[str, float]]:
        """Sample ``group_size`` programs per task, execute them, score them (`collect_rollouts`
        with this run's back-end, executor and scorer); the rollouts on the policy's device (where
        advantages and losses meet the model's outputs) and the time each phase took."""
        config = self.config
        rollouts, times = collect_rollouts(
            self.backend,
            self.executor,
            self.scorer,
            tasks,
            prompt_for,
            self.sampling(step),
            config.group_size,
            config.sampling.batch_size,
            self.encoder,
        )
        # a Ray executor counts the jobs it re-ran after losing a node (cumulative); local: 0
        retried = {"exec/retried": float(getattr(self.executor, "retried", 0))}
        return rollouts.to(self.device), {**times.metrics(), **retried}

    def optimizer(self, *heads: torch.nn.Module) -> torch.optim.Optimizer:
        """AdamW over the policy's trainable weights (all, or the LoRA adapter) and ``heads``'
        (PPO's value head); build it after everything is on its device."""
        params = [p for p in self.policy.model.parameters() if p.requires_grad]
        params += [p for head in heads for p in head.parameters()]
        return torch.optim.AdamW(params, lr=self.config.lr, weight_decay=self.config.weight_decay)

    def resume(self, optimizer: torch.optim.Optimizer) -> Resumed:
        """Restore optimiser and RNG from the checkpoint (build the optimiser over the weights
        where they train first); a fresh run starts at step 0."""
        if self.checkpoint is None:
            return Resumed()
        extra = load_trainer_state(self.checkpoint, optimizer, None)
        log.warning("resuming from %s (step %d)", self.checkpoint.path, self.checkpoint.step)
        position = tuple(self.checkpoint.state["position"])
        return Resumed(self.checkpoint.step, (position[0], position[1]), extra)

    def save(
        self,
        optimizer: torch.optim.Optimizer,
        step: int,
        position: tuple[int, int],
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Checkpoint ``step``: weights, optimiser, RNG, data position, ``extra`` and the config."""
        config = self.config
        state = {"position": list(position), "algo": config.algo, "config": config.model_dump(mode="json")}
        if self.world.is_writer:  # the ranks hold the same weights, optimiser state and position
            save_checkpoint(
                self.out / "checkpoints",
                step,
                self.policy.model,
                self.policy.tokenizer,
                optimizer,
                None,
                state,
                extra=extra,
                keep=config.keep_checkpoints,
            )
        self.world.barrier()  # nobody looks for the checkpoint before it is there

    def evaluate(self, name: str, prompt_for: PromptFor) -> float | None:
        """Greedy pass@1 on the eval tasks, written to ``eval/<name>/`` (samples, results, summary),
        prompted as the recipe's rollouts are (FALCON: with memory; test tasks are never in it).
        On several processes rank 0 evaluates while the others wait (they return None)."""
        from codefalcon.evaluation.policy import evaluate_policy

        if not self.world.is_writer:
            self.world.barrier()
            return None
        config = self.config
        params = SamplingParams(temperature=0.0, max_new_tokens=config.eval_max_new_tokens, seed=config.seed)
        folder = self.out / "eval" / name
        if (folder / "samples.jsonl").exists():
            (folder / "samples.jsonl").unlink()  # an interrupted evaluation restarts from scratch
        summary = evaluate_policy(
            self.policy,
            self.eval_tasks,
            folder,
            params,
            executor=self.executor,
            batch_size=config.sampling.batch_size,
            progress=False,
            prompt_for=prompt_for,
        )
        self.world.barrier()
        return EvalSummary.from_dict(summary, str(folder / "summary.json")).pass_at(1)

    def pass_at_1(self, name: str) -> float | None:
        """pass@1 of an evaluation written earlier (e.g. "before", by the run this one resumes)."""
        path = self.out / "eval" / name / "summary.json"
        return read_summary(path).pass_at(1) if path.is_file() else None


@contextlib.contextmanager
def open_session(config: TrainConfig, allow_config_change: bool = False) -> Iterator[Session]:
    """Open (or resume) the run of ``config``; see the module docstring.

    Resuming under a config that differs from the checkpoint's outside `MAY_CHANGE_ON_RESUME` (and
    keys newer than the checkpoint left at their defaults, `ADDED_LATER`) is refused
    (`codefalcon.rl.run_dir.ConfigChangedError`) unless ``allow_config_change``.
    """
    world = current_world()
    if world.size > config.tasks_per_step:
        raise ValueError(
            f"{world.size} processes share {config.tasks_per_step} tasks per step: every rank needs "
            f"a task; set tasks_per_step >= {world.size} (a multiple of it balances the ranks)"
        )
    # tasks first: a bad data file or train_filter fails before a run folder or model exists
    tasks = load_sources(config.train)
    if not tasks:
        raise ValueError("train: no tasks loaded")
    if config.train_filter is not None:
        band = config.train_filter
        tasks, report = filter_by_pass_rate(
            tasks, band.results, band.min_pass_rate, band.max_pass_rate, band.drop_solved
        )
        solved = f", after dropping {report.dropped_solved} solved in {band.drop_solved}"
        log.info(
            "train_filter: %d of %d train tasks (%d probed) have a pass rate in [%g, %g]%s",
            report.kept, report.total, report.probed, band.min_pass_rate, band.max_pass_rate,
            solved if band.drop_solved else "",
        )  # fmt: skip
    eval_tasks = (config.eval.load() if config.eval else [])[: config.eval_limit]
    out, checkpoint = open_run(
        config.out_dir,
        config,
        config.seed,
        MAY_CHANGE_ON_RESUME,
        allow_config_change,
        world.is_writer,
        ADDED_LATER,
    )
    world.barrier()  # rank 0 has made the run folder
    policy = load_trainable_policy(
        config.model, config.dtype, config.lora, checkpoint.model_dir if checkpoint else None, config.device
    )
    world.broadcast_parameters(policy.model)
    policy.model.eval()  # no dropout in RL: the sampled and the trained distribution must agree
    scorer = config.reward.build_scorer()
    with contextlib.ExitStack() as stack:
        metrics = MetricsLog(
            out, checkpoint.step if checkpoint else None, config.tensorboard, world.is_writer
        )
        stack.callback(metrics.close)
        executor = stack.enter_context(open_executor(config.executor_config))
        batch_size = config.sampling.batch_size
        backend = make_backend(config.backend, policy, batch_size=batch_size, seed=config.seed)
        stack.callback(backend.close)  # on error too: engines hold threads, memory, temp folders
        encoder = backend if isinstance(backend, HFBackend) else HFBackend(policy, batch_size=batch_size)
        session = Session(
            config,
            out,
            checkpoint,
            policy,
            tasks,
            eval_tasks,
            metrics,
            executor,
            backend,
            encoder,
            scorer,
            stack,
            world,
        )
        if config.backend.name == "openai":
            # In-process engines were just built from the policy; a server holds whatever it was
            # started with (another model, an older run), so it gets the policy before step 1.
            log.info(
                "synced the policy into %s in %.2f s", config.backend.url, session.sync_engine()["time/sync"]
            )
        yield session
    if world.is_writer:
        final = out / "final"
        policy.model.save_pretrained(final)
        policy.tokenizer.save_pretrained(final)
    world.barrier()
