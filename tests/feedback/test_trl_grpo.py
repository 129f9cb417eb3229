"""TRL's real `GRPOTrainer` with codefalcon's reward functions: the tiny model, offline, on the CPU.

This test is the source of truth for the TRL example in docs/feedback.md: the code between the
"docs example" markers is that example (`test_docs_example_is_this_test` keeps the two equal).

A random model writes no working code, so every reward would be a compile error and GRPO would
have no advantage to learn from. Each task's ``completion_prefix`` is therefore its reference
solution followed by ``# ``: a completion without a line break stays inside that comment and the
program passes; one with a line break usually does not compile. The model still sees the task's
own prompt, and the executor runs the real tests, so rewards are mixed within a group.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="the optional `trl` extra is not installed")

import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from codefalcon.execution import ExecutorConfig
from codefalcon.feedback import ComposedReward, StaticReward, UnitTestReward, complexity_reward
from codefalcon.tasks import Task
from codefalcon.tasks.synth import generate_splits
from support import assert_suite

ADD = "def add(a, b):\n    return a + b\n"
# A test the harness cannot express (it passes a function to the program's process): a program
# that compiles gets `infrastructure_error`, which must reach TRL as None, not as a low score.
HARNESS = Task("toy/harness", "def add(a, b):\n", assert_suite("assert add(lambda x: x, 1) == 1"),
               entry_point="add", solutions=(ADD,))  # fmt: skip
DOCS = Path(__file__).resolve().parents[2] / "docs" / "feedback.md"


class Recording(UnitTestReward):
    """`UnitTestReward` that keeps what TRL passed it and what it returned."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[dict] = []

    def __call__(self, prompts, completions, **columns):
        values = super().__call__(prompts, completions, **columns)
        self.calls.append(
            {"prompts": prompts, "completions": completions, "columns": columns, "values": values}
        )
        return values


def compiles(program: str) -> bool:
    try:
        compile(program, "<program>", "exec")
    except (SyntaxError, ValueError):  # ValueError: a NUL character
        return False
    return True


@pytest.mark.slow
def test_grpo_trainer_trains_with_our_rewards(tiny_dir: Path, tmp_path: Path) -> None:
    train, _ = generate_splits(3, 1, seed=0)
    tasks = [dataclasses.replace(t, completion_prefix=t.solutions[0] + "# ") for t in [*train, HARNESS]]
    by_id = {t.task_id: t for t in tasks}

    # docs example: begin
    dataset = Dataset.from_list([{"prompt": t.prompt, "task_id": t.task_id} for t in tasks])
    unit = Recording(tasks, mode="coderl", executor_config=ExecutorConfig(workers=2, timeout=2.0))
    composed = ComposedReward(unit, {"complexity": StaticReward(complexity_reward, tasks)}, aux_share=0.5)
    args = GRPOConfig(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=8,  # completions, not prompts: 2 prompts x 4 generations
        num_generations=4,
        reward_weights=[0.0, 1.0],  # unit_tests_coderl only logged; composed is the training signal
        max_completion_length=32,
        learning_rate=1e-3,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        seed=0,
    )
    trainer = GRPOTrainer(
        model=str(tiny_dir), reward_funcs=[unit, composed], args=args, train_dataset=dataset
    )
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    trainer.train()
    # docs example: end
    unit.executor().close()

    assert trainer.state.global_step == args.max_steps == 2
    assert trainer.reward_func_names == ["unit_tests_coderl", "composed"]
    logs = [entry for entry in trainer.state.log_history if "rewards/unit_tests_coderl/mean" in entry]
    assert len(logs) == len(unit.calls) == 2  # one generation batch, one reward call, one log per step

    decode = trainer.processing_class.batch_decode
    group = args.num_generations
    harness_values = []
    for call, log in zip(unit.calls, logs, strict=True):
        ids, completions, values = call["columns"]["task_id"], call["completions"], call["values"]
        assert len(completions) == len(values) == args.per_device_train_batch_size
        # TRL's real completions: the decoded generated tokens, for each prompt's group of generations.
        assert completions == decode(call["columns"]["completion_ids"], skip_special_tokens=True)
        assert call["prompts"] == [by_id[i].prompt for i in ids]
        assert all(len(set(ids[k : k + group])) == 1 for k in range(0, len(ids), group))
        for task_id, completion, value in zip(ids, completions, values, strict=True):
            program = by_id[task_id].completion_prefix + completion
            if task_id == HARNESS.task_id:
                harness_values.append(value)
                assert value == (None if compiles(program) else -1.0), (completion, value)
            else:
                assert value in (1.0, -1.0, -0.6, -0.3) and (value == -1.0) != compiles(program)
        # Our values are what TRL logged: None is left out of the mean (TRL turns it into NaN).
        present = [v for v in values if v is not None]
        assert log["rewards/unit_tests_coderl/mean"] == pytest.approx(sum(present) / len(present))
        # TRL's reward is the weighted sum: the composed reward alone (both are None on the same rows).
        assert log["reward"] == pytest.approx(log["rewards/composed/mean"])
        # ComposedReward's components come through TRL's log_metric.
        assert log["reward/passed"] == pytest.approx(sum(v == 1.0 for v in present) / len(present))
        logged_by_composed = {"reward/correctness", "reward/complexity", "reward/total"}
        assert {"rewards/composed/mean", "rewards/composed/std", *logged_by_composed} <= set(log)

    assert None in harness_values  # the harness failure reached TRL as None at least once
    assert any(log["frac_reward_zero_std"] < 1.0 for log in logs)  # some group had an advantage
    assert any(log["grad_norm"] > 0.0 for log in logs)
    changed = [name for name, p in trainer.model.named_parameters() if not torch.equal(p, before[name])]
    assert changed, "no parameter changed: the reward never gave GRPO anything to learn from"


def _statements(code: str) -> list[str]:
    return [ast.dump(node) for node in ast.parse(code).body]


def test_docs_example_is_this_test() -> None:
    """docs/feedback.md's TRL example, from `dataset = ...` on, is the code between the markers."""
    source = Path(__file__).read_text(encoding="utf-8")
    marked = source.split("    # docs example: begin\n")[1].split("    # docs example: end\n")[0]
    for test_name, docs_name in (("Recording(", "UnitTestReward("), ("str(tmp_path)", '"out"'),
                                 ("str(tiny_dir)", '"path/to/policy"')):  # fmt: skip
        marked = marked.replace(test_name, docs_name)
    expected = [s for s in _statements(textwrap.dedent(marked)) if "id='before'" not in s]
    section = DOCS.read_text(encoding="utf-8").split("### The example is a test\n")[1]
    example = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert example, "docs/feedback.md has no TRL example"
    code = example.group(1)
    documented = _statements(code[code.index("dataset = ") :])
    assert len(expected) == 6 and documented == expected  # dataset, unit, composed, args, trainer, train
