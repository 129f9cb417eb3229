"""FALCON's memory prompts: retrieved solutions of similar training tasks come before the task."""

from __future__ import annotations

from pathlib import Path

from codefalcon.execution import ExecutionResult, TestResult, Verdict
from codefalcon.memory import Attempt, HashingEmbedder, LongTermMemory
from codefalcon.models import build_policy_prompt, load_policy
from codefalcon.rl.memory_prompts import MemoryPrompts
from codefalcon.tasks.synth import generate_splits

PASSED = ExecutionResult(Verdict.PASSED, (TestResult(0, Verdict.PASSED),), n_tests=1)


def test_completion_prompt_gets_similar_solved_programs_and_ends_with_the_task(
    tiny_dir: Path, tmp_path: Path
) -> None:
    policy = load_policy(tiny_dir)
    train, test = generate_splits(30, 3, seed=11, difficulty="easy")
    with LongTermMemory(tmp_path / "m.db", HashingEmbedder(256)) as memory:
        memory.add(Attempt.from_execution(t, t.solutions[0], PASSED, model_step=1) for t in train[1:])
        memory.add([Attempt.from_execution(test[0], test[0].solutions[0], PASSED, model_step=1)])
        prompts = MemoryPrompts(policy, memory, k=2, budget=250)
        query = train[0]
        prompt = prompts(query)
        base = build_policy_prompt(query, policy)
        assert prompt.text.endswith(base.text) and prompt.text != base.text
        assert prompt.mode == base.mode and prompt.stop == base.stop
        assert test[0].solutions[0].strip() not in prompt.text  # never a test-split task
        assert query.solutions[0].strip() not in prompt.text  # never the task itself
        assert len(policy.tokenizer(prompt.text)["input_ids"]) <= 250
        tight = MemoryPrompts(policy, memory, k=2, budget=len(policy.tokenizer(base.text)["input_ids"]) + 5)
        assert tight(query).text.endswith(base.text)  # the context is cut, the task never


def test_no_memory_no_change(tiny_dir: Path, tmp_path: Path) -> None:
    policy = load_policy(tiny_dir)
    task = generate_splits(1, 1, seed=2)[0][0]
    with LongTermMemory(tmp_path / "m.db", HashingEmbedder(64)) as memory:
        assert MemoryPrompts(policy, memory, k=2, budget=200)(task) == build_policy_prompt(task, policy)


def test_training_and_inference_prompts_are_byte_identical(tiny_dir: Path, tmp_path: Path) -> None:
    # FALCON's rollouts (MemoryPrompts) and `codefalcon solve`'s falcon strategy (Prompter) must
    # show a policy the same text for the same task and retrieved examples.
    from codefalcon.models.prompter import Prompter

    policy = load_policy(tiny_dir)
    train, _ = generate_splits(30, 3, seed=11, difficulty="easy")
    max_new_tokens = 64
    budget = (policy.max_positions or 4096) - max_new_tokens
    with LongTermMemory(tmp_path / "m.db", HashingEmbedder(256)) as memory:
        memory.add(Attempt.from_execution(t, t.solutions[0], PASSED, model_step=1) for t in train[1:])
        training = MemoryPrompts(policy, memory, k=2, budget=budget)
        inference = Prompter.from_policy(policy, max_new_tokens)
        for task in train[:5]:
            examples = memory.retrieve(task, k=2, n_errors=0).examples
            assert examples
            assert training(task) == inference.with_context(task, examples)
