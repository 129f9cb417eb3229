"""Inference strategies under a fixed sample budget: sample, best-of-n, repair, critic sampling, falcon.

- `visible_tests`: the example tests a strategy may run (never the hidden ones).
- `Prompter`: plain, repair / memory (`with_context`) and refine (`continuation`) prompts.
- `ProgramScorer` (protocol) and `CriticScorer`: the critic as critic sampling uses it.
- `sample`, `best_of_n`, `repair`, `critic_sampling`, `falcon` (or `run_strategy` by name):
  per task a `Solution`, its `Candidate` programs ranked best first.
- `SolveConfig`, `solve_main`: the `codefalcon solve` command; `score_solutions` and
  `summarize_solutions` score on hidden tests (pass@1 of the pick, n@k). See docs/inference.md.
"""

from codefalcon.inference.examples import ExampleSource, VisibleTests, visible_tests
from codefalcon.inference.scorer import CriticScorer, ProgramScorer, best_prefix
from codefalcon.inference.solve import (
    SolveConfig,
    sample_lines,
    score_solutions,
    solve,
    solve_main,
    summarize_solutions,
)
from codefalcon.inference.strategies import (
    Candidate,
    InferenceSettings,
    Origin,
    Solution,
    Strategy,
    best_of_n,
    critic_sampling,
    falcon,
    repair,
    run_strategy,
    sample,
)
from codefalcon.models.prompter import Prompter, comment_block

__all__ = [
    "Candidate",
    "CriticScorer",
    "ExampleSource",
    "InferenceSettings",
    "Origin",
    "ProgramScorer",
    "Prompter",
    "Solution",
    "SolveConfig",
    "Strategy",
    "VisibleTests",
    "best_of_n",
    "best_prefix",
    "comment_block",
    "critic_sampling",
    "falcon",
    "repair",
    "run_strategy",
    "sample",
    "sample_lines",
    "score_solutions",
    "solve",
    "solve_main",
    "summarize_solutions",
    "visible_tests",
]
