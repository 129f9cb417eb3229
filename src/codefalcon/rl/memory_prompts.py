"""Prompts with long-term memory: solved similar training tasks put before the task.

Used by FALCON's rollouts (`codefalcon.rl.recipes.falcon`), by the retrieval-aware warm-up
(`SFTConfig.memory_context`) so the policy has seen such prompts before RL, and by held-out
evaluation of a FALCON policy. A model never trained with retrieved context in its prompt is
hurt by it (the SFT tiny model falls from 10% to 0% greedy pass@1 on 100 held-out tasks when two
retrieved programs precede the task), which is why the warm-up can mix such prompts in.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from codefalcon.execution import ExecutorConfig, open_executor
from codefalcon.memory import Attempt, ExampleFilter, LongTermMemory, load_embedder
from codefalcon.memory.record import NO_FILTER
from codefalcon.models import Policy, Prompt
from codefalcon.models.prompter import Prompter
from codefalcon.rl.rollout import Rollouts
from codefalcon.tasks.record import Task


class MemoryPrompts:
    """Prompts with retrieved solutions of similar training tasks before the task (see module doc).

    The prompt itself is `Prompter.with_context`'s, the same that ``codefalcon solve`` and the
    falcon inference strategy build, so training and inference prompts are byte-identical for
    the same task and examples. ``budget``: the most prompt tokens (the model's context minus
    the generation budget); retrieved context is cut first, the task never. ``rules``: which
    neighbours may be shown (`ExampleFilter`).
    """

    def __init__(
        self, policy: Policy, memory: LongTermMemory, k: int, budget: int, rules: ExampleFilter = NO_FILTER
    ) -> None:
        self.policy, self.memory, self.k, self.rules = policy, memory, k, rules
        self.prompter = Prompter.with_budget(policy, budget)

    def __call__(self, task: Task) -> Prompt:
        examples = (
            self.memory.retrieve(task, k=self.k, n_errors=0, rules=self.rules).examples if self.k else ()
        )
        return self.prompter.with_context(task, examples)

    def record(self, rollouts: Rollouts, step: int) -> None:
        """Write every rollout of ``step`` to the long-term store (one transaction)."""
        attempts = [
            Attempt.from_execution(
                task, program, result, rewards=breakdown.metrics(prefix=""), model_step=step
            )
            for task, program, result, breakdown in zip(
                rollouts.tasks, rollouts.programs, rollouts.results, rollouts.breakdowns, strict=True
            )
        ]
        self.memory.add(attempts)


def open_memory(path: str | Path, embedder: str) -> LongTermMemory:
    return LongTermMemory(path, load_embedder(embedder))


def store_references(memory: LongTermMemory, tasks: Sequence[Task], executor_config: ExecutorConfig) -> int:
    """Run the tasks' first reference solutions and store them (with their real verdicts) as
    step-0 attempts, for tasks not stored yet. Returns how many were added."""
    todo = [t for t in tasks if t.solutions and not memory.has_task(t.task_id)]
    if not todo:
        return 0
    with open_executor(executor_config) as executor:
        results = executor.run_batch([(t.runnable(t.solutions[0]), t.tests) for t in todo])
    memory.add(
        Attempt.from_execution(t, t.solutions[0], r, model_step=0) for t, r in zip(todo, results, strict=True)
    )
    return len(todo)
