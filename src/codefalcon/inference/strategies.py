"""Inference strategies under a fixed sample budget: sample, best-of-n, repair, critic sampling, falcon.

Every strategy spends at most ``budget`` generations per task (every sampled completion counts,
whatever became of it) and returns, per task, a `Solution`: all generated programs ranked best
first, so ``ranked[0]`` is the strategy's pick (pass@1) and the top n give n@k.

- `sample`: ``budget`` samples of the plain prompt, ranked in sample order.
- `best_of_n`: ``budget`` samples of the plain prompt, ranked by passing the example tests,
  then by critic score.
- `repair`: ``initial`` samples; then for ``rounds`` rounds, one repair of each program that
  failed the example tests, prompted with its feedback (short-term memory). Ranked by the
  example tests.
- `critic_sampling` (CodeRL): ``initial`` samples; each round, programs passing the examples are
  *refined* (the suffix after the prefix the critic scores highest is resampled) and the others
  *repaired*. Ranked by the example tests, then by critic score.
- `falcon`: `repair` with solved programs of similar tasks, retrieved from long-term memory,
  in every prompt.

``initial`` defaults to ``budget // (rounds + 1)`` (at least 1). Only the visible example tests
(`codefalcon.inference.examples`) are ever run here; scoring on hidden tests is done afterwards
by `codefalcon.inference.solve.score_solutions`. A task without visible tests cannot be filtered
or repaired: every strategy then spends its whole budget on plain samples and notes it.

Seeds: the candidate with index j of a task (0-based generation order) is sampled with sample
index j, so `sample` draws exactly the samples `codefalcon generate` draws with the same seed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from codefalcon.execution.result import ExecutionResult, Verdict
from codefalcon.inference.examples import VisibleTests, visible_tests
from codefalcon.inference.scorer import ProgramScorer, best_prefix
from codefalcon.memory import ExampleFilter, Feedback, LongTermMemory, RetrievedExample, ShortTermMemory
from codefalcon.memory.record import NO_FILTER
from codefalcon.models.extract import extract_program
from codefalcon.models.generation import FinishReason, GenerationBackend, SamplingParams
from codefalcon.models.prompter import Prompter
from codefalcon.models.prompts import Prompt
from codefalcon.tasks.record import Task, TestSuite


class Strategy(str, enum.Enum):
    """The strategies by name (`codefalcon solve --strategy`)."""

    SAMPLE = "sample"
    BEST_OF_N = "best_of_n"
    REPAIR = "repair"
    CRITIC = "critic"
    FALCON = "falcon"


class Origin(str, enum.Enum):
    """How a candidate was generated."""

    SAMPLE = "sample"
    """From the task's (memory-augmented, for falcon) prompt."""
    REPAIR = "repair"
    """From a repair prompt holding an earlier program and its feedback."""
    REFINE = "refine"
    """The suffix of an earlier program resampled after its best prefix (critic sampling)."""


class Runner(Protocol):
    """What strategies need of `codefalcon.execution.Executor`."""

    def run_batch(
        self, jobs: Sequence[tuple[str, TestSuite]], *, stop_on_first_failure: bool = False
    ) -> list[ExecutionResult]: ...


@dataclass(frozen=True)
class InferenceSettings:
    """The budget and knobs shared by all strategies (same values = a fair comparison)."""

    budget: int = 4
    """Generations per task, all rounds included; every sampled completion counts."""
    rounds: int = 1
    """Repair / refine rounds after the initial samples."""
    initial: int | None = None
    """Samples in the first round; None: ``budget // (rounds + 1)``, at least 1."""
    params: SamplingParams = field(default_factory=SamplingParams)
    """Sampling parameters of every generation."""
    feedback_attempts: int = 2
    """Earlier attempts of a repair chain shown in a repair prompt (short-term memory capacity)."""
    retrieve_k: int = 2
    """Solved examples retrieved from long-term memory per task (falcon)."""
    example_filter: ExampleFilter = NO_FILTER
    """Which similar tasks may be shown (falcon; `ExampleFilter`)."""

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ValueError(f"budget must be >= 1, got {self.budget}")
        if self.rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {self.rounds}")
        if self.initial is not None and not 1 <= self.initial <= self.budget:
            raise ValueError(f"initial must be in 1..budget ({self.budget}), got {self.initial}")
        if self.feedback_attempts < 1 or self.retrieve_k < 0:
            raise ValueError("feedback_attempts must be >= 1 and retrieve_k >= 0")

    @property
    def first_round(self) -> int:
        """Samples in the first round of a multi-round strategy."""
        return self.initial if self.initial is not None else max(1, self.budget // (self.rounds + 1))


@dataclass(frozen=True)
class Candidate:
    """One generated program and what inference knows about it (never its hidden-test verdict)."""

    task_id: str
    index: int
    """0-based generation order within the task; also the sample index that seeds it."""
    program: str
    completion: str
    """The model's text (with the refine lead it continued), as `extract_program` read it."""
    origin: Origin
    round: int
    parent: int | None = None
    """Index of the candidate this one repairs or refines."""
    example_verdict: Verdict | None = None
    """Verdict on the visible example tests; None when they were not run."""
    example_pass_ratio: float | None = None
    score: float | None = None
    """The critic's P(pass); None without a critic."""
    truncated: bool = False
    """The sample hit ``max_new_tokens``."""

    @property
    def example_passed(self) -> bool:
        return self.example_verdict is Verdict.PASSED


@dataclass(frozen=True)
class Solution:
    """One task's candidates, best first, and what producing them cost."""

    task_id: str
    ranked: tuple[Candidate, ...]
    n_generated: int
    """Generations spent on this task (== len(ranked), <= budget)."""
    n_tokens: int
    notes: tuple[str, ...] = ()
    """Fallbacks taken, e.g. no visible tests or no critic."""

    @property
    def pick(self) -> Candidate | None:
        return self.ranked[0] if self.ranked else None


# ---------------------------------------------------------------------------------------------
# The engine: rounds of generation, example tests and bookkeeping. Strategies differ in three
# functions (first prompt, next jobs, rank key), passed in, not selected by a flag.


@dataclass(frozen=True)
class _Job:
    """One generation to make: its prompt, the lead text it continues, where it comes from."""

    prompt: Prompt
    lead: str
    origin: Origin
    parent: int | None


@dataclass
class _TaskRun:
    """A task being solved: its visible tests, retrieved examples, candidates so far."""

    task: Task
    visible: VisibleTests
    examples: tuple[RetrievedExample, ...] = ()
    candidates: list[Candidate] = field(default_factory=list)
    tokens: int = 0
    notes: list[str] = field(default_factory=list)
    roots: dict[int, int] = field(default_factory=dict)  # candidate index -> chain root index

    def chain(self, index: int) -> str:
        """Short-term memory key of the repair chain a candidate belongs to."""
        return f"{self.task.task_id}#{self.roots[index]}"


NextJobs = Callable[[_TaskRun, list[Candidate], int, ShortTermMemory], list[_Job]]
RankKey = Callable[[Candidate], tuple]


def _solve(
    tasks: Sequence[Task],
    backend: GenerationBackend,
    prompter: Prompter,
    executor: Runner,
    settings: InferenceSettings,
    *,
    first_prompt: Callable[[_TaskRun], Prompt],
    next_jobs: NextJobs | None,
    rank_key: RankKey,
    scorer: ProgramScorer | None = None,
    memory: LongTermMemory | None = None,
) -> list[Solution]:
    """Run the rounds for all tasks together and rank each task's candidates."""
    runs = [_TaskRun(task, visible_tests(task)) for task in tasks]
    for run in runs:
        if memory is not None:
            run.examples = tuple(
                memory.retrieve(run.task, k=settings.retrieve_k, rules=settings.example_filter).examples
            )
            run.notes.append(f"retrieved {len(run.examples)} solved examples")
        if not run.visible.available and next_jobs is not None:
            run.notes.append("no visible tests: plain samples only")
    stm = ShortTermMemory(settings.feedback_attempts)
    multi = next_jobs is not None
    jobs: dict[int, list[_Job]] = {}
    for i, run in enumerate(runs):
        n = settings.first_round if multi and run.visible.available else settings.budget
        prompt = first_prompt(run)
        jobs[i] = [_Job(prompt, "", Origin.SAMPLE, None)] * n
    for round_ in range(settings.rounds + 1 if multi else 1):
        if not any(jobs.values()):
            break
        new = _generate_round(runs, jobs, backend, settings.params, round_)
        _check_examples(runs, new, executor, stm)
        if scorer is not None:
            _score(runs, new, scorer)
        if not multi or round_ == settings.rounds:
            break
        jobs = {}
        for i, run in enumerate(runs):
            left = settings.budget - len(run.candidates)
            fresh = [run.candidates[k] for k in new.get(i, [])]
            jobs[i] = next_jobs(run, fresh, round_ + 1, stm)[:left] if run.visible.available else []
    return [
        Solution(
            run.task.task_id,
            tuple(sorted(run.candidates, key=rank_key)),
            len(run.candidates),
            run.tokens,
            tuple(run.notes),
        )
        for run in runs
    ]


def _generate_round(
    runs: list[_TaskRun],
    jobs: dict[int, list[_Job]],
    backend: GenerationBackend,
    params: SamplingParams,
    round_: int,
) -> dict[int, list[int]]:
    """Generate every job; append the candidates; return the new candidate indices per run.

    Consecutive identical jobs of a task (the first round's samples) form a block of n samples
    of one prompt; blocks are grouped into one back-end call per (first sample index, n, stop
    sequences). The back-end seeds sample j of a prompt from j alone, so each candidate is
    seeded by its own index whatever else is in the batch.
    """
    groups: dict[tuple[int, int, tuple[str, ...]], list[tuple[int, int, _Job]]] = {}
    for i, run_jobs in jobs.items():
        start = len(runs[i].candidates)
        for offset, n, job in _blocks(run_jobs):
            groups.setdefault((start + offset, n, job.prompt.stop), []).append((i, start + offset, job))
    made: dict[tuple[int, int], Candidate] = {}
    for (first, n, stops), members in sorted(groups.items()):
        merged = replace(params, stop=tuple(dict.fromkeys(params.stop + stops)))
        outputs = backend.generate([job.prompt.text for _, _, job in members], merged, n, first_sample=first)
        for (i, start, job), completions in zip(members, outputs, strict=True):
            run = runs[i]
            for idx, completion in enumerate(completions, start=start):
                text = job.lead + completion.text
                program = extract_program(run.task, text, job.prompt.mode)
                made[(i, idx)] = Candidate(
                    run.task.task_id, idx, program, text, job.origin, round_, job.parent,
                    truncated=completion.finish_reason is FinishReason.LENGTH,
                )  # fmt: skip
                run.tokens += completion.n_tokens
    new: dict[int, list[int]] = {}
    for i, idx in sorted(made):
        run = runs[i]
        assert idx == len(run.candidates), "candidates are appended in index order"
        candidate = made[(i, idx)]
        run.candidates.append(candidate)
        parent = candidate.parent
        run.roots[idx] = run.roots[parent] if parent is not None else idx
        new.setdefault(i, []).append(idx)
    return new


def _blocks(jobs: list[_Job]) -> list[tuple[int, int, _Job]]:
    """(offset, count, job) for each run of identical consecutive jobs."""
    blocks: list[tuple[int, int, _Job]] = []
    for offset, job in enumerate(jobs):
        if blocks and blocks[-1][2] == job:
            blocks[-1] = (blocks[-1][0], blocks[-1][1] + 1, job)
        else:
            blocks.append((offset, 1, job))
    return blocks


def _check_examples(
    runs: list[_TaskRun], new: dict[int, list[int]], executor: Runner, stm: ShortTermMemory
) -> None:
    """Run new candidates on their task's visible tests; record verdicts and feedback."""
    todo = [(i, k) for i, ks in new.items() for k in ks if runs[i].visible.available]
    jobs = [(runs[i].task.runnable(runs[i].candidates[k].program), runs[i].visible.suite) for i, k in todo]
    results = executor.run_batch(jobs) if jobs else []  # type: ignore[arg-type]
    for (i, k), result in zip(todo, results, strict=True):
        run = runs[i]
        candidate = run.candidates[k]
        run.candidates[k] = replace(
            candidate, example_verdict=result.verdict, example_pass_ratio=result.pass_ratio
        )
        stm.add(run.chain(k), Feedback.from_execution(candidate.program, result))


def _score(runs: list[_TaskRun], new: dict[int, list[int]], scorer: ProgramScorer) -> None:
    """The critic's P(pass) of each new candidate."""
    for i, ks in new.items():
        run = runs[i]
        scores = scorer.score(run.task, [run.candidates[k].program for k in ks])
        for k, s in zip(ks, scores, strict=True):
            run.candidates[k] = replace(run.candidates[k], score=float(s))


# ---------------------------------------------------------------------------------------------
# Rank keys (smaller sorts first) and next-round job makers.


def by_sample_order(c: Candidate) -> tuple:
    return (c.index,)


def by_examples(c: Candidate) -> tuple:
    """Programs passing every example test first, then by the fraction passed, then order."""
    return (not c.example_passed, -(c.example_pass_ratio or 0.0), c.index)


def by_examples_then_critic(c: Candidate) -> tuple:
    """CodeRL: programs passing the example tests first, each group by critic score."""
    return (
        not c.example_passed,
        -(c.score if c.score is not None else 0.0),
        -(c.example_pass_ratio or 0.0),
        c.index,
    )


def _repair_job(run: _TaskRun, c: Candidate, prompter: Prompter, stm: ShortTermMemory) -> _Job:
    prompt = prompter.with_context(run.task, run.examples, stm.feedback_items(run.chain(c.index)))
    return _Job(prompt, "", Origin.REPAIR, c.index)


def _repair_failures(prompter: Prompter) -> NextJobs:
    """Next round: one repair of each new program that failed the example tests, in order."""

    def next_jobs(run: _TaskRun, fresh: list[Candidate], round_: int, stm: ShortTermMemory) -> list[_Job]:
        return [_repair_job(run, c, prompter, stm) for c in fresh if not c.example_passed]

    return next_jobs


def _refine_or_repair(prompter: Prompter, scorer: ProgramScorer | None) -> NextJobs:
    """Next round of critic sampling: refine new programs that pass the examples, repair the rest.

    Programs are taken best first (passing, then critic score), so a short budget goes to the
    most promising. Without a critic the refine prefix is empty: a fresh sample.
    """

    def next_jobs(run: _TaskRun, fresh: list[Candidate], round_: int, stm: ShortTermMemory) -> list[_Job]:
        out = []
        for c in sorted(fresh, key=by_examples_then_critic):
            if not c.example_passed:
                out.append(_repair_job(run, c, prompter, stm))
                continue
            prefix = best_prefix(c.program, scorer.prefix_scores(run.task, c.program)) if scorer else ""
            prompt, lead = prompter.continuation(run.task, prefix)
            out.append(_Job(prompt, lead, Origin.REFINE, c.index))
        return out

    return next_jobs


# ---------------------------------------------------------------------------------------------
# The strategies.


def sample(
    backend: GenerationBackend,
    prompter: Prompter,
    tasks: Sequence[Task],
    executor: Runner,
    settings: InferenceSettings,
) -> list[Solution]:
    """``budget`` plain samples per task, ranked in sample order (pass@1 = the first sample).

    The example tests are still run, so the results show how often they would have helped.
    """
    return _solve(
        tasks, backend, prompter, executor, settings,
        first_prompt=lambda run: prompter.base(run.task), next_jobs=None, rank_key=by_sample_order,
    )  # fmt: skip


def best_of_n(
    backend: GenerationBackend,
    prompter: Prompter,
    tasks: Sequence[Task],
    executor: Runner,
    settings: InferenceSettings,
    scorer: ProgramScorer | None = None,
) -> list[Solution]:
    """``budget`` plain samples, ranked by the example tests and then the critic's score."""
    solutions = _solve(
        tasks, backend, prompter, executor, settings, first_prompt=lambda run: prompter.base(run.task),
        next_jobs=None, rank_key=by_examples_then_critic if scorer else by_examples, scorer=scorer,
    )  # fmt: skip
    return solutions if scorer else _noted(solutions, "no critic: ranked by example tests")


def repair(
    backend: GenerationBackend,
    prompter: Prompter,
    tasks: Sequence[Task],
    executor: Runner,
    settings: InferenceSettings,
) -> list[Solution]:
    """Initial samples, then ``rounds`` rounds repairing programs that fail the example tests.

    A repair prompt holds the task and the chain's latest attempts with their feedback (the
    failing input, expected and actual output, the error) from short-term memory. A chain ends
    when its program passes the example tests, so a task may spend less than its budget.
    """
    return _solve(
        tasks, backend, prompter, executor, settings, first_prompt=lambda run: prompter.base(run.task),
        next_jobs=_repair_failures(prompter), rank_key=by_examples,
    )  # fmt: skip


def critic_sampling(
    backend: GenerationBackend,
    prompter: Prompter,
    tasks: Sequence[Task],
    executor: Runner,
    settings: InferenceSettings,
    scorer: ProgramScorer | None = None,
) -> list[Solution]:
    """CodeRL's critic sampling (Le et al. 2022, section 3.3) under the same budget.

    Sample ``initial`` programs and run the example tests. Each round, a program that passes
    them is refined: the critic's best prefix (`best_prefix` over `ProgramScorer.prefix_scores`)
    is kept and a new ending sampled; a program that fails is repaired from its feedback.
    Finally programs passing the examples come first, each group ranked by critic score.
    Without a critic, ranking uses the example tests alone and refining resamples from scratch;
    every solution notes it.
    """
    solutions = _solve(
        tasks, backend, prompter, executor, settings, first_prompt=lambda run: prompter.base(run.task),
        next_jobs=_refine_or_repair(prompter, scorer),
        rank_key=by_examples_then_critic if scorer else by_examples, scorer=scorer,
    )  # fmt: skip
    if scorer is None:
        return _noted(solutions, "no critic: ranked by example tests; refine resamples from scratch")
    return solutions


def falcon(
    backend: GenerationBackend,
    prompter: Prompter,
    tasks: Sequence[Task],
    executor: Runner,
    settings: InferenceSettings,
    memory: LongTermMemory,
) -> list[Solution]:
    """FALCON inference: `repair` with long-term memory in every prompt.

    The ``retrieve_k`` best programs of the most similar solved *other* tasks (never the task
    itself, never a test-split task: `LongTermMemory.retrieve`) go before the task in the
    first prompt and in every repair prompt, next to the short-term feedback.
    """
    return _solve(
        tasks, backend, prompter, executor, settings,
        first_prompt=lambda run: prompter.with_context(run.task, run.examples),
        next_jobs=_repair_failures(prompter), rank_key=by_examples, memory=memory,
    )  # fmt: skip


def run_strategy(
    strategy: Strategy | str,
    backend: GenerationBackend,
    prompter: Prompter,
    tasks: Sequence[Task],
    executor: Runner,
    settings: InferenceSettings,
    *,
    scorer: ProgramScorer | None = None,
    memory: LongTermMemory | None = None,
) -> list[Solution]:
    """The strategy by name; ``scorer`` is used by best_of_n and critic, ``memory`` by falcon."""
    strategy = Strategy(strategy)
    if strategy is Strategy.SAMPLE:
        return sample(backend, prompter, tasks, executor, settings)
    if strategy is Strategy.BEST_OF_N:
        return best_of_n(backend, prompter, tasks, executor, settings, scorer)
    if strategy is Strategy.REPAIR:
        return repair(backend, prompter, tasks, executor, settings)
    if strategy is Strategy.CRITIC:
        return critic_sampling(backend, prompter, tasks, executor, settings, scorer)
    if memory is None:
        raise ValueError("the falcon strategy needs a long-term memory store (--memory PATH)")
    return falcon(backend, prompter, tasks, executor, settings, memory)


def _noted(solutions: list[Solution], note: str) -> list[Solution]:
    return [replace(s, notes=(*s.notes, note)) for s in solutions]
