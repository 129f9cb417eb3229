"""Prompt assembly under a token budget: context is cut before the instruction ever is.

Layout, sections separated by a blank line and left out when empty::

    <examples header> <example 1> ... <example k>     (retrieved, best first)
    <instruction>
    <feedback header> <feedback 1> ... <feedback m>   (recent, most relevant first)
    <answer marker>

Trimming order when the whole does not fit: drop retrieved examples, lowest-ranked first; then
truncate the one left; then the same for feedback. The instruction and the answer marker are never
cut; if they alone exceed the budget, `PromptBudgetError`. Tokens are counted by a callable on the
whole assembled text (token counts are not additive across joins), so this module needs no model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

TRUNCATED = "\n[...]"  # appended to a cut item
MIN_KEPT_CHARS = 40  # a truncated item shorter than this is dropped instead


class PromptBudgetError(ValueError):
    """The instruction and answer marker alone exceed the token budget."""


@dataclass(frozen=True)
class AssembledPrompt:
    """The prompt text and what had to go to fit it. ``str(prompt)`` is the text."""

    text: str
    n_tokens: int
    examples_kept: int
    examples_dropped: int
    feedback_kept: int
    feedback_dropped: int
    truncated: bool

    def __str__(self) -> str:
        return self.text


def _join(
    instruction: str,
    examples: Sequence[str],
    feedback: Sequence[str],
    marker: str,
    headers: tuple[str, str],
) -> str:
    parts = []
    if examples:
        parts.append(headers[0] + "\n\n".join(examples))
    parts.append(instruction)
    if feedback:
        parts.append(headers[1] + "\n\n".join(feedback))
    return "\n\n".join(parts) + "\n\n" + marker if marker else "\n\n".join(parts)


def _fit(items: list[str], fits: Callable[[list[str]], bool]) -> tuple[list[str], bool]:
    """Longest prefix of ``items`` that fits, its last item truncated if needed.

    Drops whole items from the end while more than one is left and they do not fit; then cuts
    the last one (binary search on characters) to the longest text that fits; if even
    `MIN_KEPT_CHARS` of it does not fit, drops it too. Returns (items, truncated?).
    """
    items = list(items)
    while len(items) > 1 and not fits(items):
        items.pop()
    if not items or fits(items):
        return items, False
    last = items[-1]
    lo, hi = 0, len(last)  # invariant: a cut at lo fits (or lo == 0), a cut at hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits([*items[:-1], last[:mid] + TRUNCATED]):
            lo = mid
        else:
            hi = mid
    if lo < MIN_KEPT_CHARS or not fits([*items[:-1], last[:lo] + TRUNCATED]):
        return items[:-1], False
    return [*items[:-1], last[:lo] + TRUNCATED], True


def assemble_prompt(
    instruction: str,
    retrieved_examples: Sequence[str],
    recent_feedback: Sequence[str] | str,
    answer_marker: str,
    count_tokens: Callable[[str], int],
    budget: int,
    *,
    examples_header: str = "Solved examples of similar tasks:\n\n",
    feedback_header: str = "Your earlier attempts at this task and what went wrong:\n\n",
) -> AssembledPrompt:
    """The prompt within ``budget`` tokens as counted by ``count_tokens``.

    ``retrieved_examples``: rendered examples, best first (`Retrieval.example_texts`).
    ``recent_feedback``: rendered feedback items, most relevant first
    (`ShortTermMemory.feedback_items`), or one text. ``count_tokens``: e.g.
    ``lambda s: len(tokenizer(s).input_ids)``.

    >>> words = lambda s: len(s.split())
    >>> p = assemble_prompt("Write f.", ["ex A", "ex B"], [], "Answer:", words, 6, examples_header="")
    >>> p.text, p.examples_kept, p.examples_dropped
    ('ex A\\n\\nWrite f.\\n\\nAnswer:', 1, 1)
    """
    if budget <= 0:
        raise ValueError(f"budget must be positive, got {budget}")
    feedback = [recent_feedback] if isinstance(recent_feedback, str) else list(recent_feedback)
    feedback = [f for f in feedback if f.strip()]
    examples = [e for e in retrieved_examples if e.strip()]
    headers = (examples_header, feedback_header)

    def size(ex: Sequence[str], fb: Sequence[str]) -> int:
        return count_tokens(_join(instruction, ex, fb, answer_marker, headers))

    fixed = size([], [])
    if fixed > budget:
        raise PromptBudgetError(
            f"the instruction and answer marker alone take {fixed} tokens, over the budget of "
            f"{budget}: raise the budget or shorten the instruction"
        )
    kept_fb, cut_fb = _fit(feedback, lambda fb: size([], fb) <= budget)
    kept_ex, cut_ex = _fit(examples, lambda ex: size(ex, kept_fb) <= budget)
    text = _join(instruction, kept_ex, kept_fb, answer_marker, headers)
    return AssembledPrompt(
        text=text,
        n_tokens=count_tokens(text),
        examples_kept=len(kept_ex),
        examples_dropped=len(examples) - len(kept_ex),
        feedback_kept=len(kept_fb),
        feedback_dropped=len(feedback) - len(kept_fb),
        truncated=cut_ex or cut_fb,
    )
