"""Prompt assembly: context goes first, the instruction and answer marker never."""

from __future__ import annotations

import pytest

from codefalcon.memory import PromptBudgetError, assemble_prompt


def words(text: str) -> int:
    return len(text.split())


KW = {"examples_header": "", "feedback_header": ""}


def test_everything_fits() -> None:
    p = assemble_prompt("do it", ["e1 x", "e2 x"], ["f1 y"], "A:", words, 100, **KW)
    # 2 + 2 (examples) + 2 (instruction) + 2 (feedback) + 1 (marker) = 9 words
    assert p.text == "e1 x\n\ne2 x\n\ndo it\n\nf1 y\n\nA:"
    assert (p.n_tokens, p.examples_kept, p.feedback_kept, p.truncated) == (9, 2, 1, False)


def test_lowest_ranked_examples_go_first() -> None:
    p = assemble_prompt("do it", ["e1 x", "e2 x", "e3 x"], ["f1 y"], "A:", words, 7, **KW)
    # fixed 3 + feedback 2 = 5; one 2-word example fits in 7
    assert p.text == "e1 x\n\ndo it\n\nf1 y\n\nA:"
    assert (p.examples_kept, p.examples_dropped, p.feedback_kept) == (1, 2, 1)


def test_best_example_is_truncated_before_feedback_is_touched() -> None:
    example = " ".join(f"w{i}" for i in range(100))
    p = assemble_prompt("do it", [example, "e2"], ["f1 y"], "A:", words, 30, **KW)
    assert p.truncated and p.feedback_kept == 1 and p.examples_kept == 1
    assert p.n_tokens <= 30 and p.text.startswith("w0 w1 w2") and "[...]" in p.text
    assert p.text.endswith("do it\n\nf1 y\n\nA:")


def test_feedback_is_cut_only_after_all_examples() -> None:
    feedback = ["newest " * 5, "older " * 5]
    p = assemble_prompt("do it", ["e1 x"], feedback, "A:", words, 9, **KW)
    # fixed 3; newest feedback 5 -> 8; nothing else fits in 9
    assert (p.examples_kept, p.feedback_kept, p.feedback_dropped) == (0, 1, 1)
    assert p.text == "do it\n\n" + "newest " * 5 + "\n\nA:"


def test_instruction_and_marker_are_never_cut() -> None:
    p = assemble_prompt("do it", ["e1 x"], "f1 y", "A:", words, 3, **KW)
    assert p.text == "do it\n\nA:"
    with pytest.raises(PromptBudgetError, match="3 tokens, over the budget of 2"):
        assemble_prompt("do it", [], [], "A:", words, 2)


def test_character_counter_and_headers() -> None:
    p = assemble_prompt("Solve.", ["Task: a\nSolution: b"], [], "Answer:\n", len, 200)
    assert p.text == "Solved examples of similar tasks:\n\nTask: a\nSolution: b\n\nSolve.\n\nAnswer:\n"
    assert p.n_tokens == len(p.text) <= 200
