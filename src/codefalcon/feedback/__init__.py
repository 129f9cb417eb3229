"""Feedback: turning execution results and analysis into rewards.

- `codefalcon.feedback.unit_tests`: ``binary``, ``pass_ratio`` and ``coderl`` rewards from an
  `ExecutionResult` (harness failures are missing, never penalties);
- `codefalcon.feedback.static`: ruff lint density, radon complexity and maintainability in [0, 1];
- `codefalcon.feedback.judge` / `judge_backends`: FALCON's three-criterion AI judge over an
  OpenAI-compatible endpoint or a local policy;
- `codefalcon.feedback.compose`: weighted composition in which a failing program never
  outscores a passing one;
- `codefalcon.feedback.scorer`: `RewardScorer`, the picklable reward of an executed program
  that `codefalcon train` uses (unit tests, static, PPOCoder and judge components);
- `codefalcon.feedback.trl_rewards`: all of the above as picklable TRL reward functions;
- `codefalcon.feedback.code_match`: CodeBLEU's AST and data-flow match and static metrics for
  Python, C++, Java and JavaScript (tree-sitter);
- `codefalcon.feedback.ppocoder`: PPOCoder's compiler signal and match rewards, composed so unit
  tests dominate, also as TRL reward functions.

Every reward function returns a `Reward` (value and explanation); None means missing. Nothing
here imports `codefalcon.models` unless `PolicyChat` is used. See docs/feedback.md.
"""

from codefalcon.feedback.code_match import (
    ast_match,
    dataflow_edges,
    dataflow_match,
    static_metrics,
)
from codefalcon.feedback.compose import compose, weighted_mean
from codefalcon.feedback.judge import (
    CRITERIA,
    RUBRIC,
    AIJudge,
    Judgement,
    JudgeScores,
    JudgeUnavailable,
    judge_prompt,
    judge_reward,
    parse_judgement,
)
from codefalcon.feedback.judge_backends import OpenAIChat, OpenAIChatConfig, PolicyChat
from codefalcon.feedback.ppocoder import (
    PPOCODER_WEIGHTS,
    CodeMatchReward,
    PPOCoderReward,
    compiler_reward,
    ppocoder_components,
    ppocoder_reward,
    python_compiler_reward,
)
from codefalcon.feedback.record import Reward, RewardBreakdown
from codefalcon.feedback.scorer import RewardScorer
from codefalcon.feedback.static import (
    RUFF_RULES,
    complexity_reward,
    maintainability_reward,
    parse_error,
    ruff_reward,
    ruff_violations,
)
from codefalcon.feedback.trl_rewards import (
    ComposedReward,
    JudgeReward,
    StaticReward,
    TaskSource,
    UnitTestReward,
    completion_text,
    program_from_completion,
    prompt_text,
)
from codefalcon.feedback.unit_tests import (
    CODERL_REWARDS,
    PASS_VALUE,
    UNIT_TEST_RULES,
    UnitTestRule,
    binary_reward,
    coderl_reward,
    describe_result,
    pass_ratio_reward,
    unit_test_rule,
)

__all__ = [
    "CODERL_REWARDS",
    "CRITERIA",
    "PASS_VALUE",
    "PPOCODER_WEIGHTS",
    "RUBRIC",
    "RUFF_RULES",
    "UNIT_TEST_RULES",
    "AIJudge",
    "CodeMatchReward",
    "ComposedReward",
    "JudgeReward",
    "JudgeScores",
    "JudgeUnavailable",
    "Judgement",
    "OpenAIChat",
    "OpenAIChatConfig",
    "PPOCoderReward",
    "PolicyChat",
    "Reward",
    "RewardBreakdown",
    "RewardScorer",
    "StaticReward",
    "TaskSource",
    "UnitTestReward",
    "UnitTestRule",
    "ast_match",
    "binary_reward",
    "coderl_reward",
    "compiler_reward",
    "completion_text",
    "complexity_reward",
    "compose",
    "dataflow_edges",
    "dataflow_match",
    "describe_result",
    "judge_prompt",
    "judge_reward",
    "maintainability_reward",
    "parse_error",
    "parse_judgement",
    "pass_ratio_reward",
    "ppocoder_components",
    "ppocoder_reward",
    "program_from_completion",
    "prompt_text",
    "python_compiler_reward",
    "ruff_reward",
    "ruff_violations",
    "static_metrics",
    "unit_test_rule",
    "weighted_mean",
]
