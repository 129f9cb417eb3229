"""The critic: CodeRL's classifier of (problem, program) into test outcomes, with token-level scores.

`Critic` wraps an encoder-decoder or causal backbone with a per-token head; its max-pooled logits
label whole programs, `Critic.token_scores` gives the per-token factor of CodeRL's returns, and
`Critic.best_prefixes` the prefixes critic sampling resamples from. `train_critic` trains one on
evaluated samples plus reference solutions. See docs/critic.md.
"""

from codefalcon.critic.commands import critic_score_main, critic_train_main, load_train_config
from codefalcon.critic.data import (
    CriticData,
    CriticDataError,
    CriticExample,
    class_counts,
    default_problem_text,
    load_critic_examples,
    read_result_outcomes,
    reference_examples,
    split_by_task,
)
from codefalcon.critic.labels import (
    BINARY_LABELS,
    OUTCOME_LABELS,
    Outcome,
    class_index,
    class_labels,
    outcome_of_coderl_code,
    outcome_of_result,
    outcome_of_verdict,
)
from codefalcon.critic.model import (
    Critic,
    CriticBatch,
    CriticConfig,
    CriticOutput,
    Prefix,
    TokenScores,
    masked_max,
)
from codefalcon.critic.train import (
    CriticTrainConfig,
    FitStats,
    ProgramScore,
    class_weights,
    evaluate_critic,
    fit_critic,
    score_programs,
    train_critic,
)

__all__ = [
    "BINARY_LABELS",
    "OUTCOME_LABELS",
    "Critic",
    "CriticBatch",
    "CriticConfig",
    "CriticData",
    "CriticDataError",
    "CriticExample",
    "CriticOutput",
    "CriticTrainConfig",
    "FitStats",
    "Outcome",
    "Prefix",
    "ProgramScore",
    "TokenScores",
    "class_counts",
    "class_index",
    "class_labels",
    "class_weights",
    "critic_score_main",
    "critic_train_main",
    "default_problem_text",
    "evaluate_critic",
    "fit_critic",
    "load_critic_examples",
    "load_train_config",
    "masked_max",
    "outcome_of_coderl_code",
    "outcome_of_result",
    "outcome_of_verdict",
    "read_result_outcomes",
    "reference_examples",
    "score_programs",
    "split_by_task",
    "train_critic",
]
