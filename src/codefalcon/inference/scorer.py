"""What critic sampling asks of a critic: `ProgramScorer`, and `CriticScorer` over `codefalcon.critic`.

The strategies only need two numbers from a critic, so they depend on this small protocol, not
on the model: a fake scorer in tests, CodeRL's trained critic in real runs.

Prefix scores are per *line* of the program, not per token: the critic and the policy may use
different tokenizers, and a refine step resamples from the start of a line, where the policy's
prompt text and the program text line up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from codefalcon.tasks.record import Task

if TYPE_CHECKING:
    from codefalcon.critic import Critic


class ProgramScorer(Protocol):
    """A critic as critic sampling uses it."""

    def score(self, task: Task, programs: Sequence[str]) -> list[float]:
        """P(the program passes the hidden tests), one per program, in order."""
        ...

    def prefix_scores(self, task: Task, program: str) -> list[float]:
        """P(pass | lines 1..i) for each line i of ``program`` (``program.splitlines()``).

        May be shorter than the program (a critic reads at most so many tokens): lines past
        the end have no score and are never chosen as a prefix end.
        """
        ...


def best_prefix(program: str, scores: Sequence[float]) -> str:
    """The lines of ``program`` up to the best-scoring line, kept with their newlines.

    The last line is never chosen (something must be left to resample) and ties go to the
    shortest prefix. "" when the program has fewer than two lines or there are no scores.

    >>> best_prefix("a\\nb\\nc\\n", [0.2, 0.9, 0.95])
    'a\\nb\\n'
    """
    lines = program.splitlines(keepends=True)
    usable = list(scores[: len(lines) - 1])
    if not usable:
        return ""
    best = max(range(len(usable)), key=lambda i: (usable[i], -i))
    prefix = "".join(lines[: best + 1])
    return prefix if prefix.endswith("\n") else prefix + "\n"


class CriticScorer:
    """`ProgramScorer` over a trained `codefalcon.critic.Critic` (CodeRL's critic).

    ``score``: the pass probability of the max-pooled program label. ``prefix_scores``: the
    critic's p(passed | program tokens 1..t) at the last token that ends within each line.
    The problem text is the one the critic was trained with (`default_problem_text`).
    """

    def __init__(self, critic: Critic, batch_size: int = 8) -> None:
        self.critic = critic
        self.batch_size = batch_size

    @classmethod
    def load(cls, path: str, batch_size: int = 8, device: str | None = None) -> CriticScorer:
        from codefalcon.critic import Critic

        return cls(Critic.load(path, device=device), batch_size)

    def score(self, task: Task, programs: Sequence[str]) -> list[float]:
        from codefalcon.critic import default_problem_text, score_programs

        problems = [default_problem_text(task)] * len(programs)
        return [s.pass_probability for s in score_programs(self.critic, problems, programs, self.batch_size)]

    def prefix_scores(self, task: Task, program: str) -> list[float]:
        from codefalcon.critic import default_problem_text

        scores = self.critic.pass_scores([default_problem_text(task)], [program])
        ids = scores.program_ids[0]
        probs = scores.probs[0, : len(ids)].tolist()
        ends = _token_ends(self.critic.tokenizer, program, len(ids))
        out: list[float] = []
        start = 0
        for line in program.splitlines(keepends=True):
            if not ends or start >= ends[-1]:
                break  # the critic read nothing of this line (it stops at max_program_tokens)
            start += len(line)
            last = max((k for k, end in enumerate(ends) if end <= start), default=0)
            out.append(float(probs[last]))
        return out


def _token_ends(tokenizer: object, program: str, n_tokens: int) -> list[int]:
    """Character offset where each of the first ``n_tokens`` program tokens ends.

    Uses the fast tokenizer's offsets (the same tokens `Critic.encode` makes); otherwise the
    lengths of decoded prefixes.
    """
    try:
        encoded = tokenizer(program, add_special_tokens=False, return_offsets_mapping=True)  # type: ignore[operator]
        return [end for _, end in encoded["offset_mapping"][:n_tokens]]
    except (NotImplementedError, TypeError, KeyError):
        ids = tokenizer(program, add_special_tokens=False)["input_ids"][:n_tokens]  # type: ignore[operator]
        return [len(tokenizer.decode(ids[: k + 1])) for k in range(len(ids))]  # type: ignore[attr-defined]
