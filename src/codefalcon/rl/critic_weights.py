"""CodeRL's token weights from a trained critic: p_critic(observed outcome | program up to token t)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from codefalcon.critic import Critic, Outcome, default_problem_text, outcome_of_result
from codefalcon.rl.rollout import Rollouts


class CriticTokenWeights:
    """(B, C) weights for a step's rollouts, for `coderl_token_returns`.

    The critic scores each executed program (what it was trained on) and the policy's completion
    tokens are matched to the *last* C program tokens: a completion is the end of its program
    (a function body after the prompt's prefix), so with the policy's own tokenizer the match is
    exact; with another tokenizer it is approximate at the edges. Rows whose outcome is unknown
    (harness failures) get weight 0; they carry no loss anyway.
    """

    def __init__(self, path: str | Path, device: str | torch.device | None = None) -> None:
        self.critic = Critic.load(path, device=device)

    def __call__(self, rollouts: Rollouts) -> Tensor:
        """(B, C) weights on the rollouts' device (built on the CPU, where the scores come back)."""
        outcomes = [outcome_of_result(r) for r in rollouts.results]
        problems = [default_problem_text(t) for t in rollouts.tasks]
        scores = self.critic.token_scores(
            problems, list(rollouts.programs), [o or Outcome.FAILED_TEST for o in outcomes]
        )
        width = rollouts.completion_ids.shape[1]
        weights = torch.zeros(rollouts.size, width)
        lengths = rollouts.completion_mask.sum(dim=1).tolist()  # one transfer, not one per row
        for b, (known, n_completion) in enumerate(zip(outcomes, lengths, strict=True)):
            n_program = int(scores.mask[b].sum())
            if known is None or n_program == 0:
                continue
            index = torch.arange(n_completion) + max(n_program - n_completion, 0)
            weights[b, :n_completion] = scores.probs[b, index.clamp(max=n_program - 1)]
        return weights.to(rollouts.completion_ids.device)
