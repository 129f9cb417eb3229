"""The one prompt builder: plain, memory and repair prompts, and refine continuations.

Training and inference prompt through this same class (FALCON's rollouts and the retrieval-aware
warm-up via `codefalcon.rl.memory_prompts.MemoryPrompts`, `codefalcon solve` and its strategies),
so a policy is always scored on prompts of the kind it was trained on.

`Prompter` knows how one policy wants to be prompted (format, chat template, token counter,
prompt budget) and builds three kinds of prompt for a task:

- `Prompter.base`: the plain prompt (`codefalcon.models.prompts.build_prompt`).
- `Prompter.with_context`: the plain prompt plus retrieved solved examples (long-term memory)
  and/or feedback on earlier attempts (short-term memory), assembled under the token budget
  with `codefalcon.memory.assemble_prompt` (context is cut before the task ever is).

  * chat policies: one user message holding the examples, the task, the earlier programs with
    what went wrong (`Feedback.render`), and a request for a corrected program;
  * base (completion) and seq2seq policies: the examples as code and the feedback as a comment
    block, *before* the unchanged plain prompt, so the text still ends with the function prefix
    (or ``ANSWER:``) the model is trained to continue.

- `Prompter.continuation`: the plain prompt followed by the start of an earlier program, for
  CodeRL's refine step (resample the suffix after the prefix the critic likes best).

With nothing to add, `with_context` returns exactly the plain prompt, so a strategy that finds no
memory degrades to plain sampling token for token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from codefalcon.memory import PromptBudgetError, RetrievedExample, assemble_prompt
from codefalcon.memory.prompt import TRUNCATED
from codefalcon.models.prompts import (
    ChatRenderer,
    ExtractMode,
    Prompt,
    PromptFormat,
    build_prompt,
    chat_messages,
    chat_template_renderer,
    prompt_format,
)
from codefalcon.tasks.record import Task

if TYPE_CHECKING:
    from codefalcon.models.loading import Policy

REPAIR_REQUEST = (
    "Write a corrected program that passes the tests. Reply with the complete code in one "
    "```python code block."
)
"""Closes a chat repair prompt; never cut by the budget."""

EXAMPLES_HEADER = "Solved examples of similar tasks:\n\n"
CODE_EXAMPLES_HEADER = "# Solved examples of similar tasks:\n\n"
FEEDBACK_HEADER = "Your earlier attempts at this task and what went wrong (most recent first):\n\n"
CODE_FEEDBACK_LINE = "# Earlier attempts at the next task and what went wrong (most recent first):"
CODE_TASK_LINE = "# The next task:"
CHAT_FENCE = "```python\n"


def _approx_tokens(text: str) -> int:
    """About 3.5 characters per token for code: used only when no tokenizer is given."""
    return len(text) * 2 // 7 + 1


def comment_block(text: str) -> str:
    """``text`` as Python comment lines, markdown fence lines dropped.

    >>> print(comment_block("Attempt 1: wrong_answer\\n```python\\nx = 1\\n```"))
    # Attempt 1: wrong_answer
    # x = 1
    """
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("```")]
    return "\n".join(f"# {line}".rstrip() for line in lines)


@dataclass(frozen=True)
class Prompter:
    """How to prompt one policy (see the module docstring).

    ``count_tokens``: the policy's token count of a text (default: a character estimate).
    ``budget``: most prompt tokens; the back-end keeps prompt + ``max_new_tokens`` within the
    context, so `from_policy` sets ``max_positions - max_new_tokens``. None: no limit.
    """

    fmt: PromptFormat
    render_chat: ChatRenderer | None = None
    count_tokens: Callable[[str], int] = _approx_tokens
    budget: int | None = None

    @classmethod
    def from_policy(cls, policy: Policy, max_new_tokens: int) -> Prompter:
        """The prompter of a loaded policy generating ``max_new_tokens`` per sample."""
        limit = policy.max_positions
        # A causal model holds prompt and output in one context; an encoder only the prompt.
        budget = (
            None if limit is None else max(1, limit - max_new_tokens) if policy.kind == "causal" else limit
        )
        return cls.with_budget(policy, budget)

    @classmethod
    def with_budget(cls, policy: Policy, budget: int | None) -> Prompter:
        """The prompter of a loaded policy with an explicit prompt-token ``budget``."""
        fmt = prompt_format(policy)
        tokenizer = policy.tokenizer
        render = chat_template_renderer(tokenizer) if fmt is PromptFormat.CHAT else None

        def count(text: str) -> int:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])

        return cls(fmt, render, count, budget)

    def base(self, task: Task) -> Prompt:
        """The plain prompt of ``task``."""
        return build_prompt(task, self.fmt, self.render_chat)

    def with_context(
        self, task: Task, examples: Sequence[RetrievedExample] = (), feedback: Sequence[str] = ()
    ) -> Prompt:
        """The plain prompt with retrieved ``examples`` (best first) and ``feedback``.

        ``feedback``: rendered attempts, most recent first (`ShortTermMemory.feedback_items`).
        If the plain prompt alone is over the budget, it is returned unchanged (the back-end
        then cuts it from the left, as it would have anyway).
        """
        base = self.base(task)
        if not examples and not feedback:
            return base
        try:
            if self.fmt is PromptFormat.CHAT:
                text = self._chat_context(task, examples, feedback)
            else:
                text = self._code_context(base, examples, feedback)
        except PromptBudgetError:
            return base
        return Prompt(text, base.mode, base.stop)

    def _chat_context(self, task: Task, examples: Sequence[RetrievedExample], feedback: Sequence[str]) -> str:
        """One user message: examples, the task, the feedback, the repair request."""
        render = self.render_chat or (lambda messages: messages[-1]["content"])

        def as_message(content: str) -> str:
            return render([{"role": "user", "content": content}])

        assembled = assemble_prompt(
            chat_messages(task)[-1]["content"],
            [e.render() for e in examples],
            list(feedback),
            REPAIR_REQUEST if feedback else "",
            lambda text: self.count_tokens(as_message(text)),
            self.budget or 10**9,
            examples_header=EXAMPLES_HEADER,
            feedback_header=FEEDBACK_HEADER,
        )
        return as_message(assembled.text)

    def _code_context(
        self, base: Prompt, examples: Sequence[RetrievedExample], feedback: Sequence[str]
    ) -> str:
        """Examples as code, feedback as comments, then the plain prompt unchanged."""
        # A base model reads code best; a seq2seq (QA) model gets the task with its solution.
        code = self.fmt is PromptFormat.COMPLETION
        code_examples = [e.program.strip() if code else e.render() for e in examples]
        assembled = assemble_prompt(
            CODE_FEEDBACK_LINE if feedback else CODE_TASK_LINE,
            code_examples,
            [comment_block(item) for item in feedback],
            base.text,
            self.count_tokens,
            self.budget or 10**9,
            examples_header=CODE_EXAMPLES_HEADER,
            feedback_header="",
        )
        # An item cut to fit ends in a "[...]" line: keep the text before the prompt Python.
        return assembled.text.replace(TRUNCATED, "\n# [...]")

    def continuation(self, task: Task, program_prefix: str) -> tuple[Prompt, str]:
        """(prompt, lead) to resample the rest of a program after ``program_prefix``.

        ``lead`` is the part of the model's output the prompt already contains: the sampled
        completion is ``lead + new text``, read with the plain prompt's `ExtractMode`. For a
        completion task the prefix is cut after the task's ``completion_prefix`` (a program that
        rewrote the header gives an empty lead: a fresh sample); a chat prompt reopens a
        ```` ```python ```` fence.
        """
        base = self.base(task)
        if base.mode is ExtractMode.COMPLETION and task.completion_prefix:
            head = task.completion_prefix
            lead = program_prefix[len(head) :] if program_prefix.startswith(head) else ""
        elif base.mode is ExtractMode.CHAT:
            lead = CHAT_FENCE + program_prefix if program_prefix else ""
        else:
            lead = program_prefix
        return Prompt(base.text + lead, base.mode, base.stop), lead
