"""AST and data-flow match (CodeBLEU's definitions) and static metrics, on hand-made programs."""

from __future__ import annotations

import doctest
import gzip
import json
import statistics
from pathlib import Path

import pytest

from codefalcon.feedback import ast_match, code_match, dataflow_edges, dataflow_match, static_metrics
from feedback.programs import BROKEN, LANGUAGES, REFERENCE, RENAMED, UNRELATED


@pytest.mark.parametrize("language", LANGUAGES)
def test_reference_matches_itself(language: str) -> None:
    ref = REFERENCE[language]
    assert ast_match(ref, ref, language) == 1.0
    assert dataflow_match(ref, ref, language) == 1.0


@pytest.mark.parametrize("language", LANGUAGES)
def test_renaming_variables_keeps_both_matches(language: str) -> None:
    # Names are leaf text (dropped from AST shapes) and data flow numbers them var_0, var_1, ...
    assert dataflow_match(RENAMED[language], REFERENCE[language], language) == 1.0
    assert ast_match(RENAMED[language], REFERENCE[language], language) == 1.0
    assert dataflow_edges(RENAMED[language], language) == dataflow_edges(REFERENCE[language], language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_unrelated_program_scores_low(language: str) -> None:
    ref = REFERENCE[language]
    assert ast_match(UNRELATED[language], ref, language) < 0.5
    assert dataflow_match(UNRELATED[language], ref, language) < 0.5


def test_ast_match_hand_computed() -> None:
    # Reference "x = 1": subtrees with children are module, expression_statement, assignment (3;
    # the identifier and integer leaves are not counted). The candidate's module has two
    # statements, so its shape differs; expression_statement(assignment(identifier, integer)) and
    # assignment(identifier, integer) are found: 2 / 3.
    assert ast_match("y = 2\nprint(y)\n", "x = 1\n", "python") == pytest.approx(2 / 3)
    # Clipping: the reference has 5 subtrees (module, 2 x expression_statement, 2 x assignment);
    # the candidate has each statement shape once, so 1 + 1 of them count: 2 / 5.
    assert ast_match("z = 3\n", "x = 1\ny = 2\n", "python") == pytest.approx(2 / 5)
    # Comments are not part of the tree; operators are anonymous nodes, so a + b ~ a - b.
    assert (
        ast_match(
            "int f(int a, int b) { return a - b; }", "int f(int a, int b) { return a + b; /* sum */ }", "cpp"
        )
        == 1.0
    )


def test_dataflow_match_hand_computed() -> None:
    # a = 1; b = a + 2; c = b. Edges in source order: b computedFrom a, a comesFrom a,
    # c computedFrom b, b comesFrom b; numbering a=var_0, b=var_1, c=var_2.
    ref = "a = 1\nb = a + 2\nc = b\n"
    assert dataflow_edges(ref, "python") == [
        ("var_1", "computedFrom", ("var_0",)),
        ("var_0", "comesFrom", ("var_0",)),
        ("var_2", "computedFrom", ("var_1",)),
        ("var_1", "comesFrom", ("var_1",)),
    ]
    # The candidate keeps the first two edges and drops the last two (c = 5): 2 / 4.
    assert dataflow_match("a = 1\nb = a + 2\nc = 5\n", ref, "python") == 0.5
    # Clipped: one reference edge "var_0 comesFrom var_0" matched once, however often it occurs.
    assert dataflow_match("a = 1\nb = a\nc = a\nd = a\n", "a = 1\nb = a\n", "python") == 1.0


@pytest.mark.parametrize(
    ("language", "program", "edge"),
    [
        ("python", "def f(a):\n    b = a\n    b += 1\n", ("var_1", "computedFrom", ("var_1",))),
        ("cpp", "void f(int a) { int b = a; b++; }", ("var_1", "computedFrom", ("var_1",))),
        ("java", "class C { void f(int a) { int b = a; b++; } }", ("var_1", "computedFrom", ("var_1",))),
        ("js", "function f(a) { let b = a; b++; }", ("var_1", "computedFrom", ("var_1",))),
    ],
)
def test_parameters_declarations_and_updates_define_names(language: str, program: str, edge) -> None:
    # a is a parameter (defined), b = a gives b computedFrom a and a comesFrom a, b++ / b += 1
    # makes b from its old self.
    edges = dataflow_edges(program, language)
    assert edges[:2] == [("var_1", "computedFrom", ("var_0",)), ("var_0", "comesFrom", ("var_0",))]
    assert edges[-1] == edge


def test_member_names_and_undefined_names_are_not_data_flow() -> None:
    # print and append are never assigned: no edges; obj.append is a member, not a variable.
    assert dataflow_edges("print(1)\nobj.append(2)\n", "python") == []
    assert dataflow_match("x = 1\n", "print(1)\n", "python") is None  # nothing to match: missing
    # a[i] = v: a is (re)defined from v, i and v are uses. In source order: a (sources first:
    # v = var_0, a = var_1), then i = var_2, then v.
    assert dataflow_edges("i = 0\nv = 1\na = []\na[i] = v\n", "python") == [
        ("var_1", "computedFrom", ("var_0",)),
        ("var_2", "comesFrom", ("var_2",)),
        ("var_0", "comesFrom", ("var_0",)),
    ]


@pytest.mark.parametrize("language", LANGUAGES)
def test_broken_programs_still_score_and_count_errors(language: str) -> None:
    # tree-sitter recovers from syntax errors: the matchers score what parsed, the metrics say so.
    assert static_metrics(BROKEN[language], language)["syntax_errors"] >= 1
    assert 0.0 <= ast_match(BROKEN[language], REFERENCE[language], language) < 1.0
    assert static_metrics(REFERENCE[language], language)["syntax_errors"] == 0


def test_static_metrics_hand_computed() -> None:
    # module > function_definition > block > for_statement > block > pass_statement:
    # named nodes: module, function_definition, identifier f, parameters, identifier x, block,
    # for_statement, identifier i, identifier x, block, pass_statement = 11; depth 6
    # (module .. pass_statement); blocks nested 2 deep.
    program = "def f(x):\n    for i in x:\n        pass\n"
    assert static_metrics(program, "python") == {
        "lines": 3,
        "ast_nodes": 11,
        "ast_depth": 6,
        "max_nesting": 2,
        "syntax_errors": 0,
    }
    assert static_metrics("int f() { if (1) { while (1) { } } return 0; }", "cpp")["max_nesting"] == 3


def test_languages_and_aliases() -> None:
    assert code_match.language_name("JavaScript") == "js" and code_match.language_name("c++") == "cpp"
    assert ast_match("const a = 1;", "const a = 1;", "javascript") == 1.0
    with pytest.raises(ValueError, match="no grammar for 'rust'"):
        ast_match("", "", "rust")


def test_deep_nesting_does_not_overflow_the_stack() -> None:
    deep = "a = 1\nx = " + " + ".join(["a"] * 5000) + "\n"
    assert ast_match(deep, deep, "python") == 1.0
    assert len(dataflow_edges(deep, "python")) == 5001  # x from a, and 5000 uses of a


def test_docstring_examples() -> None:
    assert doctest.testmod(code_match, verbose=False).failed == 0


@pytest.mark.parametrize("language", LANGUAGES)
def test_humanevalx_references(shared_data: Path, language: str) -> None:
    """Real programs: 40 HumanEval-X references match themselves; other problems' score low."""
    with gzip.open(shared_data / f"humanevalx_{language}.jsonl.gz", "rt") as f:
        programs = [(row := json.loads(line))["prompt"] + row["canonical_solution"] for line in f][:40]
    for program in programs:
        assert ast_match(program, program, language) == 1.0
        assert dataflow_match(program, program, language) in (1.0, None)
    others = [ast_match(p, programs[i - 1], language) for i, p in enumerate(programs)]
    assert statistics.mean(others) < 0.5
