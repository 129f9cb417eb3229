"""Reference answers as training targets: what the policy should write after its prompt.

Supervised warm-up (and CodeRL's alternating CE step) teaches the model to answer a prompt the
way generation will later read it, so the target depends on the prompt format:

- ``completion`` with a ``completion_prefix`` (HumanEval, synthetic tasks): the reference's text
  after the prefix (the function body), then eos, so the model learns to stop;
- ``completion`` without a prefix and ``qa`` (MBPP/APPS for base and seq2seq models): the whole
  reference program, then eos;
- ``chat``: the assistant turn ```` ```python\\n{program}\\n``` ```` rendered by the tokenizer's
  chat template, ending with its end-of-turn token.

`encode_example` tokenizes a (prompt, answer) pair with the loss masked to the answer tokens:
the prompt is encoded exactly as `HFBackend` encodes it for generation.
"""

from __future__ import annotations

from dataclasses import dataclass

from codefalcon.models.generation import encode_prompt
from codefalcon.models.loading import Policy
from codefalcon.models.prompts import (
    FENCE_TAGS,
    ExtractMode,
    Prompt,
    PromptFormat,
    build_policy_prompt,
    chat_messages,
    prompt_format,
)
from codefalcon.tasks.record import Task

IGNORE_INDEX = -100
"""Label of positions that carry no loss (prompt and padding), as torch's cross-entropy expects."""


@dataclass(frozen=True)
class Example:
    """One tokenized training pair.

    Causal policies: ``input_ids`` is prompt + answer and ``labels`` the same length with the
    prompt positions set to `IGNORE_INDEX`. Seq2seq policies: ``input_ids`` is the prompt (the
    encoder's input) and ``labels`` the answer (the decoder's targets).
    """

    task_id: str
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def n_answer_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)

    @property
    def length(self) -> int:
        return max(len(self.input_ids), len(self.labels))


def answer_text(task: Task, prompt: Prompt, solution: str, fmt: PromptFormat, tokenizer=None) -> str:
    """The text the policy should generate after ``prompt`` to write ``solution`` (no eos).

    >>> from codefalcon.tasks.record import TestSuite, TestStyle
    >>> task = Task("t/0", "def inc(x):\\n", TestSuite(TestStyle.ASSERT, ()),
    ...             entry_point="inc", completion_prefix="def inc(x):\\n")
    >>> prompt = Prompt("def inc(x):\\n", ExtractMode.COMPLETION)
    >>> answer_text(task, prompt, "def inc(x):\\n    return x + 1\\n", PromptFormat.COMPLETION)
    '    return x + 1\\n'
    """
    if fmt is PromptFormat.CHAT:
        reply = f"```{FENCE_TAGS[task.tests.language]}\n{solution.strip()}\n```"
        if tokenizer is not None:
            messages = [*chat_messages(task), {"role": "assistant", "content": reply}]
            full = tokenizer.apply_chat_template(messages, tokenize=False)
            if full.startswith(prompt.text):
                return full[len(prompt.text) :]
        return reply
    prefix = task.completion_prefix
    if prompt.mode is ExtractMode.COMPLETION and prefix and solution.startswith(prefix):
        return solution[len(prefix) :]
    return solution if solution.endswith("\n") else solution + "\n"


def encode_example(policy: Policy, task: Task, solution: str, prompt: Prompt | None = None) -> Example:
    """Prompt and answer ids for ``task`` with reference ``solution``, loss on the answer only.

    ``prompt``: the prompt to train under (default `build_policy_prompt`; e.g. one with
    retrieved context); its format must be the policy's.

    The answer ends at the first eos id (chat templates put text after their end-of-turn token)
    or gets one appended, so the model learns where to stop.
    """
    prompt = prompt or build_policy_prompt(task, policy)
    fmt = prompt_format(policy)
    tokenizer = policy.tokenizer
    answer = answer_text(task, prompt, solution, fmt, tokenizer if fmt is PromptFormat.CHAT else None)
    answer_ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    eos = tokenizer.eos_token_id
    answer_ids = answer_ids[: answer_ids.index(eos) + 1] if eos in answer_ids else [*answer_ids, eos]
    prompt_ids = encode_prompt(tokenizer, prompt.text)
    if policy.kind == "seq2seq":
        return Example(task.task_id, tuple(prompt_ids), tuple(answer_ids))
    labels = [IGNORE_INDEX] * len(prompt_ids) + answer_ids
    return Example(task.task_id, tuple(prompt_ids + answer_ids), tuple(labels))
