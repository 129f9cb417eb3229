"""Prompts with long-term memory: solved similar training tasks put before the task.

Used by FALCON's rollouts (`codefalcon.rl.falcon`), by the retrieval-aware warm-up
(`SFTConfig.memory_context`) so the policy has seen such prompts before RL, and by held-out
evaluation of a FALCON policy. A model never trained with retrieved context in its prompt is
hurt by it (the SFT tiny model falls from 10% to 0% greedy pass@1 on 100 held-out tasks when two
retrieved programs precede the task), which is why the warm-up can mix such prompts in.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codefalcon.execution import Executor, ExecutorConfig
from codefalcon.memory import (
    Attempt,
    ExampleFilter,
    LongTermMemory,
    PromptBudgetError,
    assemble_prompt,
    load_embedder,
)
from codefalcon.memory.record import NO_FILTER
from codefalcon.models import Policy, Prompt, PromptFormat, build_policy_prompt, prompt_format
from codefalcon.models.prompts import chat_messages, chat_template_renderer
from codefalcon.rl.rollout import Rollouts
from codefalcon.tasks.record import Task

EXAMPLES_HEADER = "Solved examples of similar tasks:\n\n"


class MemoryPrompts:
    """Prompts with retrieved solutions of similar training tasks before the task (see module doc).

    Completion prompts get the example programs as plain code before the function to complete
    (few-shot, as a code model reads files); chat prompts get them in the user message. Other
    formats are left as they are. ``budget``: the most prompt tokens (the model's context minus
    the generation budget); retrieved context is cut first, the task never. ``rules``: which
    neighbours may be shown (`ExampleFilter`).
    """

    def __init__(
        self, policy: Policy, memory: LongTermMemory, k: int, budget: int, rules: ExampleFilter = NO_FILTER
    ) -> None:
        self.policy, self.memory, self.k, self.budget, self.rules = policy, memory, k, budget, rules
        self.format = prompt_format(policy)

    def __call__(self, task: Task) -> Prompt:
        base = build_policy_prompt(task, self.policy)
        examples = (
            self.memory.retrieve(task, k=self.k, n_errors=0, rules=self.rules).examples if self.k else ()
        )
        if not examples or self.format is PromptFormat.QA:
            return base
        try:
            return self._with_examples(task, base, examples)
        except PromptBudgetError:
            return base  # the task alone fills the budget: no room for any context

    def _with_examples(self, task: Task, base: Prompt, examples: Sequence[Any]) -> Prompt:
        if self.format is PromptFormat.COMPLETION:
            programs = [e.program.strip() + "\n" for e in examples]
            text = assemble_prompt(
                base.text, programs, [], "", self._count, self.budget, examples_header=""
            ).text
            return Prompt(text, base.mode, base.stop)
        user = chat_messages(task)[-1]["content"]
        rendered = [e.render() for e in examples]
        content = assemble_prompt(
            user, rendered, [], "", self._count, self.budget - 64, examples_header=EXAMPLES_HEADER
        )
        text = chat_template_renderer(self.policy.tokenizer)([{"role": "user", "content": content.text}])
        return Prompt(text, base.mode, base.stop)

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

    def _count(self, text: str) -> int:
        return len(self.policy.tokenizer(text, add_special_tokens=False)["input_ids"])


def open_memory(path: str | Path, embedder: str) -> LongTermMemory:
    return LongTermMemory(path, load_embedder(embedder))


def store_references(memory: LongTermMemory, tasks: Sequence[Task], executor_config: ExecutorConfig) -> int:
    """Run the tasks' first reference solutions and store them (with their real verdicts) as
    step-0 attempts, for tasks not stored yet. Returns how many were added."""
    todo = [t for t in tasks if t.solutions and not memory.has_task(t.task_id)]
    if not todo:
        return 0
    with Executor(executor_config) as executor:
        results = executor.run_batch([(t.runnable(t.solutions[0]), t.tests) for t in todo])
    memory.add(
        Attempt.from_execution(t, t.solutions[0], r, model_step=0) for t, r in zip(todo, results, strict=True)
    )
    return len(todo)
