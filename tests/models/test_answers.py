"""Training targets: the answer a policy should write after its prompt, tokenized with the loss mask."""

from __future__ import annotations

from pathlib import Path

import pytest

from codefalcon.models import build_policy_prompt, extract_program, load_policy
from codefalcon.models.answers import IGNORE_INDEX, answer_text, encode_example
from codefalcon.models.prompts import PromptFormat, build_prompt
from codefalcon.tasks import load_mbpp
from codefalcon.tasks.synth import generate_tasks


@pytest.fixture(scope="module")
def synth_tasks():
    return generate_tasks(12, seed=3, split="train")


def test_completion_answer_is_the_body_and_extracts_back(synth_tasks) -> None:
    for task in synth_tasks:
        prompt = build_prompt(task, PromptFormat.COMPLETION)
        answer = answer_text(task, prompt, task.solutions[0], PromptFormat.COMPLETION)
        assert task.completion_prefix + answer == task.solutions[0]
        # what generation would read back from this answer is the reference itself
        assert extract_program(task, answer, prompt.mode) == task.solutions[0]


def test_mbpp_program_answer_is_the_whole_reference(shared_data: Path) -> None:
    task = load_mbpp(shared_data / "mbpp.jsonl", "train")[0]
    prompt = build_prompt(task, PromptFormat.COMPLETION)
    answer = answer_text(task, prompt, task.solutions[0], PromptFormat.COMPLETION)
    assert answer.rstrip("\n") == task.solutions[0].rstrip("\n")
    assert answer.endswith("\n")


def test_chat_answer_without_template_is_a_fenced_block(synth_tasks) -> None:
    task = synth_tasks[0]
    prompt = build_prompt(task, PromptFormat.CHAT)
    answer = answer_text(task, prompt, task.solutions[0], PromptFormat.CHAT)
    assert answer == f"```python\n{task.solutions[0].strip()}\n```"
    assert extract_program(task, answer, prompt.mode).strip() == task.solutions[0].strip()


def test_encode_example_masks_the_prompt_and_ends_with_eos(tiny_dir: Path, synth_tasks) -> None:
    policy = load_policy(tiny_dir)
    task = synth_tasks[1]
    example = encode_example(policy, task, task.solutions[0])
    prompt_ids = policy.tokenizer(build_policy_prompt(task, policy).text)["input_ids"]
    n_prompt = len(prompt_ids)
    assert list(example.input_ids[:n_prompt]) == prompt_ids
    assert all(label == IGNORE_INDEX for label in example.labels[:n_prompt])
    assert list(example.labels[n_prompt:]) == list(example.input_ids[n_prompt:])
    assert example.labels[-1] == policy.tokenizer.eos_token_id
    decoded = policy.tokenizer.decode(example.input_ids[n_prompt:-1])
    assert task.completion_prefix + decoded == task.solutions[0]


def test_encode_example_seq2seq_puts_the_answer_in_labels(tiny_t5_dir: Path, synth_tasks) -> None:
    policy = load_policy(tiny_t5_dir)
    task = synth_tasks[2]
    example = encode_example(policy, task, task.solutions[0])
    assert IGNORE_INDEX not in example.labels
    assert example.labels[-1] == policy.tokenizer.eos_token_id
    assert policy.tokenizer.decode(example.labels[:-1]).strip() == task.solutions[0].strip()
