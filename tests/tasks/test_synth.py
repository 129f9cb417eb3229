"""Tests for the procedural task generator: determinism, splits, difficulty, and that every
reference solution passes its own hidden tests and doctest examples.

References are exec'd in this process: they are our own generated code, never a model's.
"""

from __future__ import annotations

import ast
import builtins
import doctest
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from codefalcon.tasks import record, synth
from codefalcon.tasks.record import Task
from codefalcon.tasks.synth import (
    generate_splits,
    generate_tasks,
    held_out_instance,
    hold_out_templates,
    instance_ok,
    mbpp_form,
    synth_main,
)
from codefalcon.tasks.synth_ops import EDGE_INPUTS, OPS, OPS_BY_ID, chain_ok, templates

PER_LEVEL = 300


@pytest.fixture(scope="module")
def many() -> list[Task]:
    """``PER_LEVEL`` tasks of each difficulty (difficulties alternate)."""
    return generate_tasks(3 * PER_LEVEL, seed=11)


def _load(task: Task) -> Any:
    """The task's reference solution, exec'd as a whole program, as a callable."""
    namespace: dict[str, Any] = {}
    exec(compile(task.solutions[0], task.task_id, "exec"), namespace)
    return namespace[task.entry_point]


def _is_json_data(value: Any) -> bool:
    """Only what survives JSON unchanged: no tuples, sets, floats or non-str dict keys."""
    if isinstance(value, bool | int | str):
        return True
    if isinstance(value, list):
        return all(_is_json_data(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_data(v) for k, v in value.items())
    return False


def test_same_seed_same_tasks() -> None:
    a, b = generate_tasks(40, seed=3), generate_tasks(40, seed=3)
    assert a == b
    assert [t.metadata for t in a] == [t.metadata for t in b]  # metadata is not part of ==


def test_different_seeds_differ() -> None:
    a, b = generate_tasks(40, seed=3), generate_tasks(40, seed=4)
    assert [t.prompt for t in a] != [t.prompt for t in b]
    assert {t.metadata["instance"] for t in a} != {t.metadata["instance"] for t in b}


def test_difficulty_distribution_and_filter(many: list[Task]) -> None:
    assert Counter(t.difficulty for t in many) == dict.fromkeys(synth.LEVELS, PER_LEVEL)
    for task in many:
        n_ops = len(task.metadata["template"].split("|"))
        assert n_ops == synth.LEVELS[task.difficulty]
        assert len(task.solutions[0].splitlines()) - len(task.prompt.splitlines()) == n_ops
    hard = generate_tasks(12, seed=0, difficulty="hard")
    assert {t.difficulty for t in hard} == {"hard"}
    mixed = generate_tasks(10, seed=0, difficulty=["easy", "hard"])
    assert Counter(t.difficulty for t in mixed) == {"easy": 5, "hard": 5}
    with pytest.raises(ValueError, match="difficulty"):
        generate_tasks(1, seed=0, difficulty="impossible")  # type: ignore[arg-type]


def test_every_family_is_generated(many: list[Task]) -> None:
    assert {t.metadata["family"] for t in many} == {"list", "words", "string", "arithmetic", "dict"}


def test_references_pass_hidden_tests_and_examples(many: list[Task]) -> None:
    for task in many:
        fn = _load(task)
        for suite in (task.tests, task.example_tests):
            assert suite is not None and suite.style is record.TestStyle.CALL
            assert suite.fn_name == task.entry_point
            for case in suite.cases:
                assert fn(*json.loads(json.dumps(case.input))) == case.expected, task.task_id


def test_doctest_examples_match_example_tests(many: list[Task]) -> None:
    parser = doctest.DocTestParser()
    for task in many[:150]:
        tree = ast.parse(task.prompt + "    pass\n")  # the prompt is a valid function header
        docstring = ast.get_docstring(tree.body[0])  # type: ignore[arg-type]
        assert docstring is not None
        examples = parser.get_examples(docstring)
        assert examples and task.example_tests is not None
        assert 1 <= len(examples) == len(task.example_tests) <= 2
        for example, case in zip(examples, task.example_tests.cases, strict=True):
            assert example.source.strip() == f"{task.entry_point}({case.input[0]!r})"
            assert eval(example.want) == case.expected  # our own repr of JSON data


def test_hidden_tests_count_edges_and_discriminate(many: list[Task]) -> None:
    for task in many:
        assert 8 <= len(task.tests) <= 12
        inputs = [case.input[0] for case in task.tests.cases]
        arg_type = OPS_BY_ID[task.metadata["template"].split("|")[0]].in_type
        assert all(edge in inputs for edge in EDGE_INPUTS[arg_type])
        # a program returning one constant can never pass
        assert len({json.dumps(c.expected, sort_keys=True) for c in task.tests.cases}) >= 2


def test_values_are_json_data_and_round_trip(many: list[Task]) -> None:
    for task in many:
        assert task.example_tests is not None
        for case in task.tests.cases + task.example_tests.cases:
            assert isinstance(case.input, list) and len(case.input) == 1
            for value in (case.input, case.expected):
                assert _is_json_data(value), (task.task_id, value)
                assert json.loads(json.dumps(value)) == value
        assert json.loads(json.dumps(task.metadata)) == task.metadata


def test_prompt_shape_and_names(many: list[Task]) -> None:
    for task in many:
        name = task.entry_point
        assert name is not None and name.isidentifier() and not hasattr(builtins, name)
        assert task.prompt.startswith(f"def {name}(")
        assert f"    >>> {name}(" in task.prompt and task.prompt.endswith('    """\n')
        assert task.completion_prefix == task.prompt
        assert task.solutions[0].startswith(task.prompt)
        body = task.solutions[0][len(task.prompt) :]
        assert task.program_from_completion(body) == task.solutions[0]
        assert task.source == "synth" and task.split == "train"
    assert len({t.entry_point for t in many}) == len(many)
    assert [t.task_id for t in many[:3]] == ["synth/train/0", "synth/train/1", "synth/train/2"]


def test_exhausted_pool_repeats_with_suffixed_names() -> None:
    tasks = generate_tasks(3, seed=0, difficulty="easy", only_templates={"sum"})
    assert [t.entry_point for t in tasks] == ["sum_of_xs", "sum_of_xs_v2", "sum_of_xs_v3"]
    assert all("return sum(xs)" in t.solutions[0] for t in tasks)
    with pytest.raises(ValueError, match="no medium templates"):
        generate_tasks(1, seed=0, only_templates={"sum"}, difficulty="medium")


def test_hard_task_looks_like_the_spec() -> None:
    task = generate_tasks(1, seed=2, difficulty="hard")[0]
    body = task.solutions[0][len(task.prompt) :].splitlines()
    assert len(body) == 3 and body[-1].startswith("    return ")
    assert task.prompt.count(", then ") == 2
    assert set(task.metadata) == {"template", "params", "family", "instance"}


def test_instance_holdout_shares_no_instance() -> None:
    train, test = generate_splits(150, 60, seed=5, holdout="instance")
    assert len(train) == 150 and len(test) == 60
    assert {t.split for t in train} == {"train"} and {t.split for t in test} == {"test"}
    assert all(t.task_id.startswith("synth/test/") for t in test)
    assert not {t.metadata["instance"] for t in train} & {t.metadata["instance"] for t in test}
    assert all(held_out_instance(t.metadata["instance"], seed=5) for t in test)
    # the partition does not depend on the split sizes
    assert generate_splits(3, 60, seed=5)[1] == test
    # templates are shared: the test split asks for new parameters of known compositions
    assert {t.metadata["template"] for t in train} & {t.metadata["template"] for t in test}


def test_template_holdout_shares_no_template() -> None:
    train, test = generate_splits(150, 60, seed=5, holdout="template")
    assert not {t.metadata["template"] for t in train} & {t.metadata["template"] for t in test}
    assert {t.metadata["template"] for t in test} <= hold_out_templates(5)
    assert Counter(t.difficulty for t in test) == {"easy": 20, "medium": 20, "hard": 20}
    with pytest.raises(ValueError, match="holdout"):
        generate_splits(1, 1, seed=0, holdout="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="share"):
        generate_splits(1, 1, seed=0, share=0.0)


def test_held_out_templates_use_only_ops_seen_in_train() -> None:
    held = hold_out_templates(seed=1, share=0.2)
    every = [ops for length in (1, 2, 3) for ops in templates(length)]
    kept_ops = {op.op_id for ops in every if synth.template_id(ops) not in held for op in ops}
    assert kept_ops == {op.op_id for op in OPS}
    for length in (1, 2, 3):
        ids = {synth.template_id(ops) for ops in templates(length)}
        assert abs(len(ids & held) / len(ids) - 0.2) < 0.02
    assert hold_out_templates(seed=1) == held and hold_out_templates(seed=2) != held


def test_chain_rules_and_instance_checks() -> None:
    by_id = OPS_BY_ID
    assert chain_ok((by_id["filter_even"], by_id["add_k"], by_id["sum"]))
    assert not chain_ok((by_id["sum"], by_id["add_k"]))  # int does not feed a list op
    assert not chain_ok((by_id["filter_even"], by_id["filter_odd"]))  # always empty
    assert not chain_ok((by_id["sort"], by_id["sum"]))  # sorting cannot change a sum
    assert not chain_ok((by_id["upper"], by_id["upper"]))
    assert not chain_ok((by_id["add_values"], by_id["invert"]))  # invert needs distinct values
    assert instance_ok('filter_even|add_k|sum#[{}, {"k": 3}, {}]')
    assert not instance_ok("sort|is_sorted#[{}, {}]")  # always True
    assert not instance_ok("negate|abs_n#[{}, {}]")  # abs undoes the negation
    # any separator gives the same count
    assert not instance_ok('join_words|count_vowels#[{"sep": "-"}, {}]')


def test_templates_per_difficulty() -> None:
    counts = [len(templates(length)) for length in (1, 2, 3)]
    assert counts[0] == len(OPS) and counts[0] < counts[1] < counts[2]
    assert counts[2] > 5000  # too many compositions to memorise


def test_synth_main_writes_both_splits(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "tasks.jsonl"
    summary = synth_main(50, seed=9, out=out, test_fraction=0.2, holdout="template")
    assert (summary["n_train"], summary["n_test"]) == (40, 10)
    assert summary["out"] == str(out)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 50
    assert {json.loads(line)["split"] for line in lines} == {"train", "test"}
    with pytest.raises(ValueError, match="test_fraction"):
        synth_main(10, seed=0, out=out, test_fraction=1.0)


def test_mbpp_form_asserts_pass_on_the_reference_and_discriminate(many: list[Task]) -> None:
    for task in many[::3]:
        mbpp = mbpp_form(task)
        assert mbpp.completion_prefix == "" and mbpp.solutions == task.solutions
        assert mbpp.tests.style is record.TestStyle.ASSERT and len(mbpp.tests) == len(task.tests)
        namespace: dict[str, Any] = {}
        exec(compile(mbpp.solutions[0], task.task_id, "exec"), namespace)
        for case in mbpp.tests.cases + mbpp.example_tests.cases:
            exec(case.code, dict(namespace))  # raises AssertionError if the reference fails
        wrong = {task.entry_point: lambda *args: None}
        failures = 0
        for case in mbpp.tests.cases:
            try:
                exec(case.code, dict(wrong))
            except AssertionError:
                failures += 1
        assert failures > 0, task.task_id


def test_mbpp_form_prompt_reads_like_mbpp(many: list[Task]) -> None:
    from codefalcon.models.prompts import chat_messages

    task = next(t for t in many if t.metadata["family"] == "list")
    content = chat_messages(mbpp_form(task))[0]["content"]
    sentence = task.prompt.split('"""')[1].splitlines()[0]
    assert f"Write a function that takes a list of integers. {sentence}" in content
    assert f"Your code should pass this test:\n\nassert {task.entry_point}(" in content
    assert f"The function must be named `{task.entry_point}`." in content
    assert "def " not in content  # no signature to complete: MBPP shows none
    with pytest.raises(ValueError, match="synth"):
        mbpp_form(mbpp_form(task))


def test_synth_main_mbpp_form_round_trips(tmp_path: Path) -> None:
    from codefalcon.tasks.registry import load_benchmark

    out = tmp_path / "tasks.jsonl"
    summary = synth_main(20, seed=4, out=out, test_fraction=0.0, form="mbpp")
    assert summary["form"] == "mbpp"
    loaded = load_benchmark("jsonl", out, "train")
    assert loaded == [mbpp_form(t) for t in generate_splits(20, 0, seed=4, share=0.1)[0]]
    with pytest.raises(ValueError, match="form"):
        synth_main(10, seed=0, out=tmp_path / "x.jsonl", form="apps")
    assert not (tmp_path / "x.jsonl").exists()


def test_module_docstring_example() -> None:
    assert doctest.testmod(synth).failed == 0


def test_print_answer_prints_the_right_value_and_fails_every_test(
    many: list[Task], capsys: pytest.CaptureFixture[str]
) -> None:
    for plain, task in [*((t, t) for t in many[:60]), (many[0], mbpp_form(many[0]))]:
        buggy = synth.print_answer(task)
        assert buggy.tests == task.tests and buggy.prompt == task.prompt
        assert buggy.solutions[0].endswith(")\n") and "return" not in buggy.solutions[0]
        case = plain.tests.cases[0]  # the MBPP form's asserts have no separate input
        assert _load(buggy)(*json.loads(json.dumps(case.input))) is None  # every test expects a value
        assert capsys.readouterr().out == f"{case.expected}\n"
    with pytest.raises(ValueError, match="one-line return"):
        synth.print_answer(replace(many[0], solutions=("def f():\n    pass\n",)))


def test_with_print_bug_rewrites_the_given_share_by_seed(many: list[Task]) -> None:
    tasks = many[:50]
    buggy = synth.with_print_bug(tasks, 0.6, seed=3)
    changed = [a.task_id for a, b in zip(tasks, buggy, strict=True) if a.solutions != b.solutions]
    assert len(changed) == 30
    assert changed == [
        a.task_id for a, b in zip(tasks, synth.with_print_bug(tasks, 0.6, seed=3), strict=True) if a != b
    ]
    other = synth.with_print_bug(tasks, 0.6, seed=4)
    assert changed != [a.task_id for a, b in zip(tasks, other, strict=True) if a != b]
    assert synth.with_print_bug(tasks, 0.0, seed=3) == tasks
    with pytest.raises(ValueError, match="share"):
        synth.with_print_bug(tasks, 1.5, seed=3)
