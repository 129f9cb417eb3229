"""Strategies with a scripted back-end and a real sandbox: each part's effect, the budget, the rules."""

from __future__ import annotations

import pytest

from codefalcon.execution import Executor, ExecutorConfig, Verdict
from codefalcon.inference import (
    InferenceSettings,
    Origin,
    Prompter,
    Strategy,
    best_of_n,
    critic_sampling,
    falcon,
    repair,
    run_strategy,
    sample,
    score_solutions,
    summarize_solutions,
)
from codefalcon.memory import Attempt, HashingEmbedder, LongTermMemory
from codefalcon.models import PromptFormat, SamplingParams
from inference.fakes import (
    CRASH,
    OVERFIT,
    PREFIX,
    RIGHT,
    WRONG,
    FakeCritic,
    ScriptedBackend,
    SpyRunner,
    add_task,
)

PROMPTER = Prompter(PromptFormat.COMPLETION)


@pytest.fixture(scope="module")
def executor():
    with Executor(ExecutorConfig(workers=1, timeout=5.0)) as ex:
        yield ex


def settings(budget: int, rounds: int = 1, initial: int | None = None) -> InferenceSettings:
    return InferenceSettings(budget, rounds, initial, SamplingParams(temperature=0.8, max_new_tokens=32))


def hidden_passed(solutions, tasks, executor) -> list[list[bool]]:
    return [[r.passed for r in rs] for rs in score_solutions(solutions, tasks, executor)]


def test_repair_fixes_a_crash_from_its_feedback_where_sampling_does_not(executor):
    # Without feedback the model crashes; shown its error, it writes the right body.
    backend = ScriptedBackend(lambda prompt, j: RIGHT if "ZeroDivisionError" in prompt else CRASH)
    tasks = [add_task()]
    plain = sample(backend, PROMPTER, tasks, executor, settings(2))
    assert hidden_passed(plain, tasks, executor) == [[False, False]]
    # one call for both samples, numbered 0 and 1: the samples `codefalcon generate` draws
    assert backend.calls == [([PREFIX], 2, 0)]

    backend = ScriptedBackend(lambda prompt, j: RIGHT if "ZeroDivisionError" in prompt else CRASH)
    (solution,) = repair(backend, PROMPTER, tasks, executor, settings(2, rounds=1))
    # round 0: one sample (2 // (1 + 1)); round 1: its repair
    assert [c.origin for c in solution.ranked] == [Origin.REPAIR, Origin.SAMPLE]
    assert solution.pick.program == PREFIX + RIGHT
    assert hidden_passed([solution], tasks, executor) == [[True, False]]
    repair_prompt = backend.prompts[1]
    assert "ZeroDivisionError: division by zero" in repair_prompt
    assert "input: [2, 3]" in repair_prompt  # the failing example input
    assert "#     return a / 0" in repair_prompt  # the previous program, as comments
    assert repair_prompt.endswith(PREFIX)  # a base model still continues the function


def test_repair_shows_wrong_answers_and_stops_a_chain_once_examples_pass(executor):
    backend = ScriptedBackend(lambda prompt, j: RIGHT if "got: -1" in prompt else WRONG)
    (solution,) = repair(backend, PROMPTER, [add_task()], executor, settings(4, rounds=3, initial=1))
    # the first repair passes the examples: no more generations for this chain
    assert solution.n_generated == 2 == backend.n_generated
    assert solution.pick.example_passed and solution.pick.parent == 0


@pytest.mark.parametrize("strategy", list(Strategy))
@pytest.mark.parametrize(("budget", "rounds"), [(1, 0), (1, 3), (3, 1), (5, 2), (4, 9)])
def test_budget_is_never_exceeded_and_every_generation_counts(executor, tmp_path, strategy, budget, rounds):
    backend = ScriptedBackend(lambda prompt, j: WRONG)  # never passes: every chain runs to the end
    critic = FakeCritic({"a - b": 0.5}, line_scores=[0.1, 0.2, 0.9])
    tasks = [add_task("t/1"), add_task("t/2")]
    with LongTermMemory(tmp_path / "mem.db", HashingEmbedder()) as memory:
        solutions = run_strategy(
            strategy,
            backend,
            PROMPTER,
            tasks,
            executor,
            settings(budget, rounds),
            scorer=critic,
            memory=memory,
        )
    assert all(s.n_generated == len(s.ranked) <= budget for s in solutions)
    assert sum(s.n_generated for s in solutions) == backend.n_generated
    first = budget if strategy in (Strategy.SAMPLE, Strategy.BEST_OF_N) else max(1, budget // (rounds + 1))
    expected = min(budget, first * (rounds + 1)) if first < budget else budget
    assert [s.n_generated for s in solutions] == [expected, expected]
    # every candidate of a task has its own sample index: no two share a seed
    assert all(sorted(c.index for c in s.ranked) == list(range(s.n_generated)) for s in solutions)


def test_critic_sampling_picks_the_program_the_critic_scores_highest(executor):
    # Both samples pass the example add(2, 3) == 5; only the critic tells them apart.
    bodies = [OVERFIT, RIGHT]
    tasks = [add_task()]
    critic = FakeCritic({"a + b": 0.9, "return 5": 0.2})
    backend = ScriptedBackend(lambda prompt, j: bodies[j])
    (picked,) = critic_sampling(backend, PROMPTER, tasks, executor, settings(2, rounds=0), critic)
    assert [c.score for c in picked.ranked] == [0.9, 0.2]
    assert picked.pick.program == PREFIX + RIGHT
    assert hidden_passed([picked], tasks, executor) == [[True, False]]

    backend = ScriptedBackend(lambda prompt, j: bodies[j])
    (unranked,) = critic_sampling(backend, PROMPTER, tasks, executor, settings(2, rounds=0))
    assert unranked.pick.program == PREFIX + OVERFIT  # example tests alone: first passing sample
    assert any("no critic" in note for note in unranked.notes)


def test_critic_sampling_refines_after_the_best_prefix_and_repairs_failures(executor):
    # Sample 0 passes the example by luck; its best prefix (line 3, "x = a + b") is kept and
    # the rest resampled. Sample 1 crashes and is repaired.
    body0 = "    x = a + b\n    return 5\n"
    critic = FakeCritic({"return x": 0.8}, line_scores=[0.1, 0.2, 0.9, 0.3])

    def script(prompt: str, j: int) -> str:
        if prompt.endswith("    x = a + b\n"):
            return "    return x\n"
        if "ZeroDivisionError" in prompt:
            return RIGHT
        return [body0, CRASH][j]

    backend = ScriptedBackend(script)
    tasks = [add_task()]
    (solution,) = critic_sampling(backend, PROMPTER, tasks, executor, settings(4, rounds=1), critic)
    by_index = {c.index: c for c in solution.ranked}
    refined = next(c for c in solution.ranked if c.origin is Origin.REFINE)
    assert refined.parent == 0 and refined.completion == "    x = a + b\n    return x\n"
    assert refined.program == PREFIX + "    x = a + b\n    return x\n"
    assert backend.prompts[2] == PREFIX + "    x = a + b\n"  # the refine prompt: prefix + kept lines
    repaired = next(c for c in solution.ranked if c.origin is Origin.REPAIR)
    assert repaired.parent == 1 and by_index[1].example_verdict is Verdict.RUNTIME_ERROR
    assert solution.pick is refined  # passes the examples, highest critic score
    assert hidden_passed([solution], tasks, executor)[0][0]


def test_falcon_puts_a_retrieved_solution_in_the_prompt(executor, tmp_path):
    with LongTermMemory(tmp_path / "mem.db", HashingEmbedder()) as memory:
        train = add_task("train/plus", split="train")
        memory.add([Attempt("train/plus", "Add two numbers.", "train", "", "def plus(x, y):\n    return x + y\n",
                            "passed", ["passed"])])  # fmt: skip
        backend = ScriptedBackend(lambda prompt, j: RIGHT if "def plus(x, y)" in prompt else WRONG)
        tasks = [add_task()]
        (solution,) = falcon(backend, PROMPTER, tasks, executor, settings(1, rounds=0), memory)
        assert train.task_id not in {c.task_id for c in solution.ranked}
    first_prompt = backend.prompts[0]
    assert "# Solved examples of similar tasks:" in first_prompt and first_prompt.endswith(PREFIX)
    assert hidden_passed([solution], tasks, executor) == [[True]]
    plain = repair(ScriptedBackend(backend.script), PROMPTER, tasks, executor, settings(1, rounds=0))
    assert hidden_passed(plain, tasks, executor) == [[False]]


def test_example_tests_select_and_hidden_tests_score(executor):
    # The overfit program passes the visible example, so best-of-n picks it; the hidden tests
    # fail it. The strategy itself never ran a hidden test.
    tasks = [add_task()]
    spy = SpyRunner(executor)
    backend = ScriptedBackend(lambda prompt, j: [WRONG, OVERFIT, RIGHT][j])
    (solution,) = best_of_n(backend, PROMPTER, tasks, spy, settings(3))
    assert spy.suites and all(suite == tasks[0].example_tests for suite in spy.suites)
    assert solution.pick.program == PREFIX + OVERFIT and solution.pick.example_passed
    results = score_solutions([solution], tasks, executor)
    assert [r.n_tests for r in results[0]] == [3, 3, 3]  # the full hidden suite
    summary = summarize_solutions([solution], results, budget=3)
    assert summary["pass@1"] == 0.0  # the pick fails the hidden tests
    assert summary["n_at_k"]["3@3"]["value"] == 1.0 == summary["solved_any"]
    assert summary["sample_pass@1"] == pytest.approx(1 / 3)


def test_unspent_budget_counts_as_empty_slots_in_n_at_k(executor):
    backend = ScriptedBackend(lambda prompt, j: RIGHT)
    tasks = [add_task()]
    (solution,) = repair(backend, PROMPTER, tasks, executor, settings(4, rounds=1))
    assert solution.n_generated == 2  # two samples pass the examples: nothing to repair
    summary = summarize_solutions([solution], score_solutions([solution], tasks, executor), budget=4)
    assert summary["pass@1"] == 1.0 and summary["generations"] == 2
    assert set(summary["n_at_k"]) == {"1@4", "4@4"}
