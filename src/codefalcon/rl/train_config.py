"""Options of `codefalcon train` (online RL from execution feedback), grouped by purpose.

Every option has a default that works for the tiny model on generated tasks; the presets in
``configs/`` list only what they change. Algorithm sections are read only by their algorithm.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from codefalcon.configs import DeviceName, StrictModel
from codefalcon.execution import ExecutorConfig
from codefalcon.feedback import AIJudge, RewardScorer
from codefalcon.memory.options import ExampleFilterOptions
from codefalcon.models.backends import BackendOptions
from codefalcon.rl.executor_options import ExecutorOptions
from codefalcon.rl.optim import Bf16Setting
from codefalcon.rl.policy_setup import LoraOptions
from codefalcon.rl.run_dir import RUN_CONTROL_KEYS
from codefalcon.tasks.source import TaskSource

Algo = Literal["coderl", "ppo", "grpo", "rloo", "falcon", "rft"]

MAY_CHANGE_ON_RESUME = RUN_CONTROL_KEYS | {"reward.judge.concurrency"}
"""Keys a resumed run may change without ``allow_config_change``: where and how long it runs, how
often it saves and evaluates, and how many workers it uses. Every other key changes what the run
learns (or what its before/after evaluation measures), so a checkpoint refuses it."""

ADDED_LATER: dict[str, Any] = {
    "backend": BackendOptions().model_dump(mode="json"),
    "tis_cap": None,
    "rft": {"unique": True, "max_per_task": None, "drop_truncated": True},
    "grpo.oversample": 1.0,
    "sampling.stop": [],
    "train_filter": None,
}
"""Keys newer than some saved checkpoints (dotted for nested ones), with their defaults as dumped:
a checkpoint whose config lacks one trained as the default does, so resuming it with the default
is no change (`codefalcon.rl.run_dir.newer_keys_at_default`)."""


class SamplingOptions(StrictModel):
    """How rollouts are drawn (evaluation is always greedy)."""

    temperature: float = Field(default=1.0, gt=0)
    """Sampling temperature; log-probs in the losses use the same temperature."""
    top_p: float = Field(default=1.0, gt=0, le=1)
    """Nucleus sampling; 1 keeps the exact policy distribution the losses assume."""
    max_new_tokens: int = Field(default=128, ge=1)
    """Token budget per sample; samples that hit it are 'truncated'."""
    batch_size: int = Field(default=32, ge=1)
    """Sequences per generate call; execution of one chunk overlaps generation of the next."""
    stop: list[str] = Field(default_factory=list)
    """Extra stop sequences, added to the prompt's own. A chat model's prose after its code costs
    as many tokens as the code; ``["\\n```\\n"]`` ends a sample at its closing fence."""


class TrainFilterOptions(StrictModel):
    """Difficulty filtering (`codefalcon.rl.task_filter`): keep the train tasks a probe run's
    samples passed at a rate in [min_pass_rate, max_pass_rate]; unprobed tasks are dropped."""

    results: str
    """A `codefalcon evaluate` results JSONL of several samples per train task (the probe)."""
    min_pass_rate: float = Field(default=0.01, ge=0, le=1)
    """Default: every task solved at least once (in up to 100 samples)."""
    max_pass_rate: float = Field(default=1.0, ge=0, le=1)
    """Below 1 drops the tasks the probe always solved (GRPO gets no variance from them)."""
    drop_solved: str | None = None
    """A second results JSONL (e.g. a greedy run on the train tasks): drop every task it solved,
    so training samples the tasks where the evaluated (greedy) answer still fails."""

    @model_validator(mode="after")
    def _band(self) -> TrainFilterOptions:
        if self.min_pass_rate > self.max_pass_rate:
            raise ValueError(
                f"min_pass_rate {self.min_pass_rate} is above max_pass_rate {self.max_pass_rate}"
            )
        return self


class JudgeOptions(StrictModel):
    """FALCON's AI judge as a reward component: coding style, complexity, instruction following."""

    weight: float = Field(default=1.0, gt=0)
    """Weight of the judge among the auxiliary components (``static_weights`` holds the others)."""
    model: str
    """With ``base_url``: the endpoint's model name. Without: a local policy (folder, .gguf or
    short name) run greedily in the trainer's process."""
    base_url: str | None = None
    """OpenAI-compatible endpoint up to the version, e.g. http://127.0.0.1:8000/v1 (vLLM, Ollama,
    a hosted API); None: the local ``model``."""
    api_key_env: str | None = "OPENAI_API_KEY"
    """Environment variable holding the endpoint's key (read per request, never stored)."""
    concurrency: int = Field(default=4, ge=1)
    """Requests in flight at once."""
    timeout: float = Field(default=60.0, gt=0)
    """Seconds per request; a request that keeps failing makes that program's judge part missing."""
    max_retries: int = Field(default=3, ge=0)
    max_tokens: int = Field(default=256, ge=1)
    """Answer budget (the rubric asks for a short JSON object)."""

    @field_validator("base_url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {url!r}")
        return url

    def build(self) -> AIJudge:
        """The judge over the endpoint (picklable), or over the local model (loaded here)."""
        from codefalcon.feedback import OpenAIChat, OpenAIChatConfig, PolicyChat

        if self.base_url is not None:
            endpoint = OpenAIChatConfig(
                base_url=self.base_url,
                model=self.model,
                api_key_env=self.api_key_env,
                max_tokens=self.max_tokens,
                timeout=self.timeout,
                max_retries=self.max_retries,
            )
            return AIJudge(OpenAIChat(endpoint), concurrency=self.concurrency)
        from codefalcon.models import load_policy

        return AIJudge(PolicyChat(load_policy(self.model), self.max_tokens), concurrency=self.concurrency)


class RewardOptions(StrictModel):
    """The scalar reward of a sample (see docs/feedback.md): `codefalcon.feedback.RewardScorer`."""

    unit_tests: Literal["binary", "pass_ratio", "coderl"] = "binary"
    """binary: 1 if all tests pass; pass_ratio: fraction passed; coderl: -1/-0.6/-0.3/+1 by outcome."""
    static_weights: dict[
        Literal["ruff", "complexity", "maintainability", "compiler", "ast_match", "dataflow_match"], float
    ] = Field(default_factory=dict)
    """Weights of auxiliary components; empty = correctness only. ruff, complexity and
    maintainability read Python; compiler, ast_match and dataflow_match are PPOCoder's (any
    language, against the task's reference)."""
    aux_share: float = Field(default=0.5, ge=0, lt=1)
    """Share of the pass/fail gap the auxiliary components may use (a failing program never wins)."""
    judge: JudgeOptions | None = None
    """Add the AI judge's rubric score as a component (``reward/judge``); None: no judge."""

    def build_scorer(self) -> RewardScorer:
        """The scorer these options describe (a local judge model is loaded here)."""
        weights = dict(self.static_weights)
        judge = None
        if self.judge is not None:
            weights["judge"] = self.judge.weight
            judge = self.judge.build()
        return RewardScorer(self.unit_tests, weights, self.aux_share, judge)


class GRPOOptions(StrictModel):
    """GRPO / RLOO (DAPO-style token-level loss)."""

    eps_low: float = Field(default=0.2, gt=0)
    eps_high: float = Field(default=0.28, gt=0)
    """Clip-higher: a larger upper clip keeps exploration alive (DAPO)."""
    beta: float = Field(default=0.0, ge=0)
    """KL penalty to the reference (k3 estimator); 0 = no reference model needed."""
    scale_rewards: Literal["std", "none"] = "std"
    """Divide group-centred rewards by the group's std (GRPO) or not (Dr. GRPO)."""
    mask_truncated: bool = True
    """Drop samples that hit max_new_tokens from the loss (overlong filtering)."""
    oversample: float = Field(default=1.0, ge=1)
    """Dynamic sampling (DAPO): sample round(oversample x tasks_per_step) tasks and train on the
    first tasks_per_step whose group's rewards differ (zero-variance groups teach nothing). The
    extra tasks are a seeded draw per step, so a resumed run repeats them. 1: off."""


class PPOOptions(StrictModel):
    """PPOCoder's PPO: value head, GAE, clipped losses, adaptive KL to the frozen start policy."""

    gamma: float = Field(default=1.0, ge=0, le=1)
    lam: float = Field(default=0.95, ge=0, le=1)
    clip: float = Field(default=0.2, gt=0)
    vf_coef: float = Field(default=1e-3, ge=0)
    """PPOCoder's value-loss coefficient."""
    init_kl_coef: float = Field(default=0.05, ge=0)
    target_kl: float | None = Field(default=6.0, gt=0)
    """Adaptive controller target (None: fixed coefficient)."""
    kl_horizon: int = Field(default=10000, ge=1)
    whiten_advantages: bool = True


class CodeRLOptions(StrictModel):
    """CodeRL's actor update: critic-weighted policy gradient vs a greedy baseline, plus CE."""

    critic: str | None = None
    """Trained critic folder (`codefalcon critic train`); None: every token weighs 1."""
    relative_returns: bool = True
    """Subtract the reward of the greedy decode of the same task (CodeRL's baseline)."""
    ce_coef: float = Field(default=1.0, ge=0)
    """Weight of the supervised step on reference solutions that alternates with each RL step."""


class RFTOptions(StrictModel):
    """Rejection-sampling fine-tuning (expert iteration): cross-entropy on the passing samples."""

    unique: bool = True
    """Learn each distinct passing program of a task once per step, however often it was sampled."""
    max_per_task: int | None = Field(default=None, ge=1)
    """At most this many passing programs of one task per step (None: all of them)."""
    drop_truncated: bool = True
    """Never learn from a sample cut at the token budget, even if the cut program passed: it would
    teach the model not to stop."""


class FalconOptions(ExampleFilterOptions):
    """FALCON's meta-RL (see codefalcon.rl.recipes.falcon): memory in prompts, inner adaptation,
    Reptile. Its inner loss is GRPO's, with the ``grpo`` section's clip, scaling and masking."""

    inner_steps: int = Field(default=2, ge=1)
    """SGD steps of the per-task copy on that task's fresh samples (short-term memory)."""
    inner_lr: float = Field(default=1e-3, gt=0)
    """Inner SGD step size; the outer (Reptile) step uses ``lr`` with AdamW."""
    memory: str | None = None
    """Long-term store (SQLite; the FAISS index sits beside it). Default: <out_dir>/memory.db,
    which a resumed run rolls back to its checkpoint; a store given here is only added to."""
    embedder: str = "hashing"
    """hashing (no dependencies) or minilm (the offline all-MiniLM-L6-v2)."""
    retrieve_k: int = Field(default=2, ge=0)
    """Solved similar tasks put in each rollout prompt (0: no long-term memory in prompts)."""
    seed_with_references: bool = True
    """Start the memory with the training tasks' reference solutions (run and verified first),
    as the warm-up's retrieval-aware prompts do; test tasks are never stored."""


class TrainConfig(StrictModel):
    """Options of `codefalcon train` (YAML keys; each can be overridden as key=value)."""

    algo: Algo = "grpo"
    model: str
    """Start policy: usually the SFT model (runs/sft-tiny/final), a folder, .gguf or short name."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    device: DeviceName = "auto"
    """"auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N"; the frozen reference,
    value head and critic go to the same device as the policy."""
    lora: LoraOptions | None = None
    train: TaskSource | list[TaskSource]
    """Tasks to learn from (their hidden tests give the reward): one source or a list, whose
    tasks are pooled (ids must be distinct)."""
    train_filter: TrainFilterOptions | None = None
    """Only the train tasks a probe run solved sometimes (difficulty filtering); None: all."""
    eval: TaskSource | None = None
    """Held-out tasks: greedy pass@1 before, every eval_every steps, and after."""
    eval_limit: int | None = Field(default=None, ge=1)
    """Evaluate on the first N eval tasks only (faster periodic evaluation)."""
    out_dir: str = "runs/train"
    seed: int = 0
    max_steps: int = Field(default=100, ge=1)
    max_minutes: float | None = Field(default=None, gt=0)
    """Stop early (with a checkpoint) after this much wall time."""
    tasks_per_step: int = Field(default=8, ge=1)
    group_size: int = Field(default=8, ge=1)
    """Samples per task per step (GRPO/RLOO need at least 2)."""
    updates_per_step: int = Field(default=1, ge=1)
    """Optimiser passes over each step's rollouts (1 = on-policy)."""
    micro_batch_size: int = Field(default=16, ge=1)
    """Sequences per forward/backward; gradients accumulate to the whole step."""
    lr: float = Field(default=1e-5, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    bf16_autocast: Bf16Setting = "auto"
    """bfloat16 autocast of the forwards/backwards (weights stay float32). auto: on a GPU, and on a
    CPU only with native bf16 (AVX512-BF16/AMX); true on an AVX2-only CPU warns (emulated, slower)."""
    sampling: SamplingOptions = SamplingOptions()
    reward: RewardOptions = RewardOptions()
    grpo: GRPOOptions = GRPOOptions()
    ppo: PPOOptions = PPOOptions()
    coderl: CodeRLOptions = CodeRLOptions()
    falcon: FalconOptions = FalconOptions()
    rft: RFTOptions = RFTOptions()
    eval_every: int = Field(default=25, ge=1)
    eval_max_new_tokens: int = Field(default=128, ge=1)
    save_every: int = Field(default=10, ge=1)
    keep_checkpoints: int = Field(default=2, ge=1)
    exec_workers: int = Field(default=2, ge=1)
    exec_timeout: float = Field(default=4.0, gt=0)
    executor: ExecutorOptions = ExecutorOptions()
    """Where programs run: here (default) or on a Ray cluster, ``{backend: ray, address: ...}``;
    ``exec_workers`` and ``exec_timeout`` still size the local pool and limit each test."""
    tensorboard: bool = True
    backend: BackendOptions = BackendOptions()
    """The engine that samples rollouts: hf (default, the trainer's own model), ctranslate2, vllm or
    openai (`codefalcon.models.make_backend`), re-synced with the trained weights every
    ``backend.sync_every`` optimizer steps. Evaluation stays greedy HF. GRPO, RLOO, PPO and
    CodeRL only (see docs/rl.md)."""
    tis_cap: float | None = Field(default=None, ge=1)
    """Truncated importance sampling (Yao et al. 2025): weigh each token's policy-gradient term by
    min(exp(trainer old logp - engine logp), tis_cap), correcting for an engine that samples from
    a slightly different distribution than the trainer scores (int8, bf16, a stale sync). None:
    off. Needs a non-hf ``backend`` that reports log-probs; GRPO, RLOO, PPO and CodeRL."""

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        self._check_backend()
        if self.algo in ("grpo", "rloo", "falcon") and self.group_size < 2:
            raise ValueError(
                f"group_size must be >= 2 for {self.algo} (advantages are relative within a group); "
                "set group_size: 8"
            )
        if self.grpo.oversample > 1 and self.algo not in ("grpo", "rloo"):
            raise ValueError(
                f"grpo.oversample (dynamic sampling) is read by grpo and rloo only, not {self.algo}; "
                "set grpo.oversample: 1"
            )
        if self.algo == "falcon" and self.grpo.beta > 0:
            raise ValueError(
                "falcon's inner loop has no reference model, so grpo.beta must be 0; set grpo.beta: 0"
            )
        return self

    def _check_backend(self) -> None:
        """Refuse back-end settings that would be silently ignored or untested."""
        if self.backend.name != "hf" and self.algo == "falcon":
            # FALCON's per-task inner copies and memory prompts have not been checked against an
            # engine's samples; refuse rather than fall back to HF behind the user's back.
            raise ValueError(
                f"backend: falcon samples with the trainer's model only, not {self.backend.name!r}; "
                "set backend.name: hf (or use grpo, rloo, ppo or coderl with another back-end)"
            )
        if self.tis_cap is None:
            return
        if self.algo in ("falcon", "rft"):
            raise ValueError(f"tis_cap: {self.algo} has no importance-sampling correction; drop tis_cap")
        if self.backend.name == "hf":
            raise ValueError(
                "tis_cap corrects for an engine other than the trainer's model, but backend is hf "
                "(which samples from the trained model itself): set backend.name, or drop tis_cap"
            )
        if self.backend.name == "ctranslate2" and self.sampling.temperature != 1.0:
            # CTranslate2 reports untempered log-probs, so it gives none at other temperatures
            # and every weight would silently be 1.
            raise ValueError(
                "tis_cap with backend ctranslate2 needs sampling.temperature: 1 (CTranslate2 reports "
                f"no tempered log-probs; temperature is {self.sampling.temperature})"
            )

    @property
    def rollouts_per_step(self) -> int:
        return self.tasks_per_step * self.group_size

    @property
    def executor_config(self) -> ExecutorConfig:
        """What `codefalcon.execution.open_executor` builds the run's executor from."""
        return self.executor.build(self.exec_workers, self.exec_timeout)
