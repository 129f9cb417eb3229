"""RL for code models: losses, advantages and KL control as pure functions (see docs/rl.md).

The pure functions live in `codefalcon.rl.losses`; the training recipes, one per algorithm, in
`codefalcon.rl.recipes` (entry point: `codefalcon.rl.train.train_rl`).

Every function takes tensors and masks and returns tensors, or a scalar loss plus a frozen stats
record of detached floats; none knows where samples came from, what device it runs on, or any
config. Per-token tensors are (B, T) with a (B, T) mask (1 = real token); per-sample ones (B,).
"""

from codefalcon.rl.logprobs import (
    completion_forward,
    completion_logits,
    completion_logprobs,
    entropy_from_logits,
    gather_logprobs,
    sequence_logprobs,
)
from codefalcon.rl.losses.ce import masked_token_cross_entropy
from codefalcon.rl.losses.coderl import (
    PGStats,
    coderl_pg_loss,
    coderl_token_returns,
    observed_outcome_probs,
)
from codefalcon.rl.losses.grpo import (
    Aggregate,
    ConstantNormalizer,
    GroupStats,
    GRPOStats,
    group_advantages,
    grpo_loss,
    informative_rows,
    rloo_advantages,
    sequence_mean,
    token_mean,
)
from codefalcon.rl.losses.kl import (
    AdaptiveKLController,
    FixedKLController,
    KLController,
    KLEstimator,
    KLPenaltyStats,
    kl_k1,
    kl_k3,
    kl_penalty_rewards,
)
from codefalcon.rl.losses.masked import (
    last_valid_index,
    masked_count,
    masked_mean,
    masked_sum,
    masked_var,
    masked_whiten,
)
from codefalcon.rl.losses.ppo import (
    PolicyStats,
    ValueStats,
    explained_variance,
    gae,
    ppo_policy_loss,
    ppo_value_loss,
)
from codefalcon.rl.losses.rft import rft_loss, verified_rows
from codefalcon.rl.reptile import reptile_gradients
from codefalcon.rl.stats import to_metrics

__all__ = [
    "AdaptiveKLController",
    "Aggregate",
    "ConstantNormalizer",
    "FixedKLController",
    "GRPOStats",
    "GroupStats",
    "KLController",
    "KLEstimator",
    "KLPenaltyStats",
    "PGStats",
    "PolicyStats",
    "ValueStats",
    "coderl_pg_loss",
    "coderl_token_returns",
    "completion_forward",
    "completion_logits",
    "completion_logprobs",
    "entropy_from_logits",
    "explained_variance",
    "gae",
    "gather_logprobs",
    "group_advantages",
    "grpo_loss",
    "informative_rows",
    "kl_k1",
    "kl_k3",
    "kl_penalty_rewards",
    "last_valid_index",
    "masked_count",
    "masked_mean",
    "masked_sum",
    "masked_token_cross_entropy",
    "masked_var",
    "masked_whiten",
    "observed_outcome_probs",
    "ppo_policy_loss",
    "ppo_value_loss",
    "reptile_gradients",
    "rft_loss",
    "rloo_advantages",
    "sequence_logprobs",
    "sequence_mean",
    "to_metrics",
    "token_mean",
    "verified_rows",
]
