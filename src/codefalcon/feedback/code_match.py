"""PPOCoder's syntactic and data-flow match against a reference program, and static metrics.

Python, C++, Java and JavaScript, parsed with tree-sitter grammars from PyPI wheels. Both
matchers follow CodeBLEU's definitions (Ren et al. 2020, section 3.2-3.3), which PPOCoder
(Shojaee et al. 2023) uses as its rewards ``R_ast`` and ``R_dfg``:

- ``ast_match = Count_clip(T_cand) / Count(T_ref)``: every subtree of the reference (every node
  with children, the root included) is reduced to its shape, the node types of it and its named
  descendants with all leaf text (identifiers, literals) and comments dropped. The score is the
  number of reference shapes also found in the candidate, counted with multiplicity and clipped
  (a shape seen twice in the reference and once in the candidate counts once), over the number
  of reference subtrees.
- ``dataflow_match = Count_clip(DF_cand) / Count(DF_ref)``: each program's data-flow edges
  ``(variable, relation, sources)`` ("x computedFrom a, b" for ``x = a + b``; "a comesFrom a" for
  a use of an assigned name), with variables renamed ``var_0, var_1, ...`` in order of first
  appearance, so renaming variables changes nothing. None (missing) when the reference has no
  data flow: CodeBLEU scores that 0, which would penalise every candidate for the reference's
  shape, and a missing component is left out of `compose` instead.

Why not the ``codebleu`` package: 0.7.0 pins ``tree-sitter<0.23``, which cannot load the current
grammar wheels (ABI 14-15), its syntax match does not clip counts, and its C++ data flow runs the
C# extractor. This module keeps CodeBLEU's definitions; differences in the data-flow extraction
(see `_Flow`) are documented there and in docs/feedback.md.
"""

from __future__ import annotations

import functools
import importlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# language name (as in codefalcon.tasks.record.LANGUAGES) -> grammar module of its PyPI wheel
GRAMMARS = {
    "python": "tree_sitter_python",
    "cpp": "tree_sitter_cpp",
    "java": "tree_sitter_java",
    "js": "tree_sitter_javascript",
}
ALIASES = {"py": "python", "python3": "python", "c++": "cpp", "javascript": "js"}
COMMENTS = frozenset({"comment", "line_comment", "block_comment"})


@dataclass(frozen=True)
class FlowRules:
    """Which node types define variables in one grammar (see `dataflow_edges`).

    ``assign``: type -> (target field, value field); the value is optional (``int t;``).
    ``declare``: type -> field whose identifiers are defined without a source (parameters);
    None means every named child. ``update``: ``i++``-style nodes. ``clauses_first``: nodes whose
    clause children bind names used by earlier children (Python comprehensions). ``blocks``: the
    block node types `static_metrics` counts for nesting.
    """

    identifiers: frozenset[str]
    assign: dict[str, tuple[str, str]]
    declare: dict[str, str | None] = field(default_factory=dict)
    update: frozenset[str] = frozenset({"update_expression"})
    blocks: frozenset[str] = frozenset({"block"})
    clauses_first: frozenset[str] = frozenset()


FLOW_RULES = {
    "python": FlowRules(
        identifiers=frozenset({"identifier"}),
        assign={
            "assignment": ("left", "right"),
            "augmented_assignment": ("left", "right"),
            "named_expression": ("name", "value"),
            "for_statement": ("left", "right"),
            "for_in_clause": ("left", "right"),
            "default_parameter": ("name", "value"),
            "typed_default_parameter": ("name", "value"),
        },
        declare={"parameters": None, "lambda_parameters": None},
        update=frozenset(),
        clauses_first=frozenset(
            {"list_comprehension", "set_comprehension", "dictionary_comprehension", "generator_expression"}
        ),
    ),
    "cpp": FlowRules(
        identifiers=frozenset({"identifier"}),
        assign={
            "init_declarator": ("declarator", "value"),
            "assignment_expression": ("left", "right"),
            "for_range_loop": ("declarator", "right"),
        },
        declare={"declaration": "declarator", "parameter_declaration": "declarator"},
        blocks=frozenset({"compound_statement"}),
    ),
    "java": FlowRules(
        identifiers=frozenset({"identifier"}),
        assign={
            "variable_declarator": ("name", "value"),
            "assignment_expression": ("left", "right"),
            "enhanced_for_statement": ("name", "value"),
        },
        declare={
            "formal_parameter": "name",
            "catch_formal_parameter": "name",
            "lambda_expression": "parameters",
        },
    ),
    "js": FlowRules(
        identifiers=frozenset(
            {"identifier", "shorthand_property_identifier", "shorthand_property_identifier_pattern"}
        ),
        assign={
            "variable_declarator": ("name", "value"),
            "assignment_expression": ("left", "right"),
            "augmented_assignment_expression": ("left", "right"),
            "for_in_statement": ("left", "right"),
            "assignment_pattern": ("left", "right"),
        },
        declare={"formal_parameters": None, "arrow_function": "parameter"},
        blocks=frozenset({"statement_block"}),
    ),
}
# Member names (``o.attr``, ``f(key=1)``, a method's name) are not variables; index expressions
# inside an assignment target (``a[i] = v``) are uses, not definitions; types are not values.
MEMBER_FIELDS = frozenset({"attribute", "property", "field", "name"})
INDEX_FIELDS = frozenset({"subscript", "index", "indices"})
TYPE_FIELDS = frozenset({"type"})

Edge = tuple[str, str, tuple[str, ...]]
"""A normalised data-flow edge: (variable, ``computedFrom`` or ``comesFrom``, source variables)."""


def language_name(language: str) -> str:
    """The canonical name (``python``, ``cpp``, ``java``, ``js``) of a language or alias."""
    name = ALIASES.get(language.lower(), language.lower())
    if name not in GRAMMARS:
        raise ValueError(f"no grammar for {language!r}; languages: {', '.join(GRAMMARS)}")
    return name


@functools.cache
def _language(name: str) -> Any:
    import tree_sitter  # imported here so the rest of feedback works without the grammars

    return tree_sitter.Language(importlib.import_module(GRAMMARS[name]).language())


def parse(program: str, language: str) -> Any:
    """The tree-sitter root node of ``program`` (error-tolerant: bad syntax gives ERROR nodes)."""
    import tree_sitter

    # A Parser per call: they are cheap, and one shared parser is not safe across threads.
    parser = tree_sitter.Parser(_language(language_name(language)))
    return parser.parse(program.encode("utf-8", errors="replace")).root_node


def _named_children(node: Any) -> list[Any]:
    return [c for c in node.named_children if c.type not in COMMENTS]


def _subtree_shapes(root: Any, ids: dict[tuple, int]) -> Counter[int]:
    """The shape id of every subtree with children (and of the root), counted.

    A shape is (type, shapes of named children): leaf text never enters, so ``x = 1`` and
    ``y = 2`` share all their shapes. ``ids`` interns shapes so both programs share numbering.
    Iterative, because long expression chains nest deeper than Python's recursion limit.
    """
    shape: dict[int, int] = {}
    counts: Counter[int] = Counter()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        children = _named_children(node)
        if not done:
            stack.append((node, True))
            stack.extend((child, False) for child in children)
            continue
        key = (node.type, tuple(shape[c.id] for c in children))
        shape[node.id] = ids.setdefault(key, len(ids))
        if node.child_count > 0 or node.id == root.id:  # CodeBLEU leaves leaves out
            counts[shape[node.id]] += 1
    return counts


def ast_match(candidate: str, reference: str, language: str) -> float:
    """CodeBLEU's syntactic match: clipped share of the reference's subtree shapes in the candidate.

    >>> ast_match("y = 2\\nprint(y)\\n", "x = 1\\n", "python")  # 2 of the reference's 3 subtrees
    0.6666666666666666
    """
    ids: dict[tuple, int] = {}
    ref = _subtree_shapes(parse(reference, language), ids)
    cand = _subtree_shapes(parse(candidate, language), ids)
    return sum((ref & cand).values()) / sum(ref.values())


class _Flow:
    """One left-to-right pass over a tree, recording which names each value comes from.

    A name is *defined* by an assignment, declaration, parameter or loop target; a later use of
    a defined name gets a ``comesFrom`` edge, an assignment target a ``computedFrom`` edge to
    every identifier in the value. Uses of never-defined names (builtins, globals) get no edge.
    Control flow is not followed, unlike CodeBLEU: after normalisation an edge keeps only names,
    not which definition reached the use, so branches and loops would change no scored edge.

    The pass runs on an explicit stack of nodes and deferred steps (a long ``a + a + ...``
    nests deeper than Python's recursion limit): `visit` says what to do next, in order.
    """

    def __init__(self, rules: FlowRules) -> None:
        self.rules = rules
        self.defined: set[str] = set()
        self.edges: dict[int, tuple[str, str, tuple[str, ...]]] = {}  # keyed by token offset

    def run(self, root: Any) -> None:
        stack: list[Any] = [root]
        while stack:
            item = stack.pop()
            if callable(item):
                item()
            else:
                stack.extend(reversed(self.visit(item)))

    def visit(self, node: Any) -> list[Any]:
        """The nodes to walk and the steps to run for ``node``, in evaluation order."""
        rules = self.rules
        if node.type in rules.identifiers:
            name = node.text.decode()
            if name in self.defined:
                self.edge(node, "comesFrom", [name])
            return []
        if node.type in rules.assign:
            return self.assign(node, *rules.assign[node.type])
        if node.type in rules.declare:
            return self.declare(node, rules.declare[node.type])
        if node.type in rules.update:
            return [functools.partial(self.bind, node, [], augmented=True)]
        children = [child for name, child in _fields(node) if name not in MEMBER_FIELDS]
        if node.type in rules.clauses_first:
            children.sort(key=lambda c: not c.type.endswith("_clause"))  # stable: keeps order
        return children

    def assign(self, node: Any, target_field: str, value_field: str) -> list[Any]:
        target = node.child_by_field_name(target_field)
        value = node.child_by_field_name(value_field)
        sources = (
            []
            if value is None
            else [t.text.decode() for t in self.identifiers(value, TYPE_FIELDS | MEMBER_FIELDS)]
        )
        steps: list[Any] = [] if value is None else [value]  # evaluated before the target is bound
        if target is not None:
            steps += self.index_parts(target)  # ``a[i] = v`` uses i
            augmented = _operator(node) not in ("=", ":=", None)
            steps.append(functools.partial(self.bind, target, sources, augmented=augmented))
        # loop bodies, types, conditions: after the target is bound
        return steps + [c for c in node.named_children if c not in (target, value)]

    def bind(self, target: Any, sources: list[str], *, augmented: bool) -> None:
        for token in self.identifiers(target, TYPE_FIELDS | INDEX_FIELDS | MEMBER_FIELDS):
            name = token.text.decode()
            from_ = [name, *sources] if augmented else sources  # ``x += y``: x from x and y
            if from_:
                self.edge(token, "computedFrom", from_)
            self.defined.add(name)

    def declare(self, node: Any, field_name: str | None) -> list[Any]:
        steps: list[Any] = []
        for name, child in _fields(node):
            chosen = name == field_name if field_name else child.is_named
            if chosen and child.type not in self.rules.assign and child.type not in COMMENTS:
                steps.append(functools.partial(self.define, child))
            else:
                steps.append(child)
        return steps

    def define(self, node: Any) -> None:
        self.defined.update(t.text.decode() for t in self.identifiers(node))

    def edge(self, token: Any, relation: str, sources: list[str]) -> None:
        self.edges[token.start_byte] = (token.text.decode(), relation, tuple(dict.fromkeys(sources)))

    def identifiers(self, node: Any, skip: frozenset[str] = TYPE_FIELDS) -> list[Any]:
        """Identifier leaves under ``node`` in source order, not descending into ``skip`` fields."""
        out, stack = [], [node]
        while stack:
            current = stack.pop()
            if current.type in self.rules.identifiers:
                out.append(current)
            else:
                stack.extend(reversed([c for name, c in _fields(current) if name not in skip]))
        return out

    def index_parts(self, node: Any) -> list[Any]:
        """Subtrees of an assignment target in index fields (``i`` in ``a[i]``)."""
        out, stack = [], [node]
        while stack:
            current = stack.pop()
            for name, child in reversed(_fields(current)):
                (out if name in INDEX_FIELDS else stack).append(child)
        return out[::-1]


def _fields(node: Any) -> list[tuple[str | None, Any]]:
    """``(field name, child)`` for every child: one cursor pass, where asking the field of each
    child by index would rescan the children every time."""
    out = []
    cursor = node.walk()
    if cursor.goto_first_child():
        out.append((cursor.field_name, cursor.node))
        while cursor.goto_next_sibling():
            out.append((cursor.field_name, cursor.node))
    return out


def _operator(node: Any) -> str | None:
    """The assignment operator (``=``, ``+=``, ...) of an assignment node, None if it has none."""
    ops = [c.type for c in node.children if not c.is_named and c.type.endswith("=")]
    return ops[0] if ops else None


def dataflow_edges(program: str, language: str) -> list[Edge]:
    """The program's data-flow edges in source order, variables normalised to ``var_i``.

    Names are numbered in order of first appearance, sources before the variable of each edge
    (CodeBLEU's ``normalize_dataflow``). Below, ``b`` (at ``b =``) comes before the use of ``a``:

    >>> dataflow_edges("a = 1\\nb = a + 2\\n", "python")
    [('var_1', 'computedFrom', ('var_0',)), ('var_0', 'comesFrom', ('var_0',))]
    """
    name = language_name(language)
    flow = _Flow(FLOW_RULES[name])
    flow.run(parse(program, name))
    numbers: dict[str, str] = {}
    edges = []
    for _, (var, relation, sources) in sorted(flow.edges.items()):
        for source in (*sources, var):
            numbers.setdefault(source, f"var_{len(numbers)}")
        edges.append((numbers[var], relation, tuple(numbers[s] for s in sources)))
    return edges


def dataflow_match(candidate: str, reference: str, language: str) -> float | None:
    """CodeBLEU's data-flow match: clipped share of the reference's edges found in the candidate.

    None when the reference has no data flow (nothing to match; left out of compositions).

    >>> dataflow_match("p = 1\\nq = p + 2\\n", "a = 1\\nb = a * 3\\n", "python")  # renamed: same flow
    1.0
    >>> dataflow_match("a = 1\\nb = 2\\n", "a = 1\\nb = a\\n", "python")
    0.0
    >>> dataflow_match("x = 1\\n", "print(1)\\n", "python") is None
    True
    """
    ref = Counter(dataflow_edges(reference, language))
    if not ref:
        return None
    cand = Counter(dataflow_edges(candidate, language))
    return sum((ref & cand).values()) / sum(ref.values())


def static_metrics(program: str, language: str) -> dict[str, int]:
    """Sizes to log per language: non-blank ``lines``, named ``ast_nodes``, ``ast_depth``,
    ``max_nesting`` (deepest stack of blocks: a function body is 1, a loop in it 2) and
    ``syntax_errors`` (tree-sitter ERROR and missing nodes; 0 does not prove it compiles).

    >>> static_metrics("def f(x):\\n    for i in x:\\n        pass\\n", "python")
    {'lines': 3, 'ast_nodes': 11, 'ast_depth': 6, 'max_nesting': 2, 'syntax_errors': 0}
    """
    name = language_name(language)
    blocks = FLOW_RULES[name].blocks
    nodes = depth = nesting = errors = 0
    stack = [(parse(program, name), 1, 0)]
    while stack:
        node, level, nest = stack.pop()
        errors += node.type == "ERROR" or node.is_missing  # a missing token may be anonymous
        if node.is_named:
            nest += node.type in blocks
            nodes += 1
            depth, nesting = max(depth, level), max(nesting, nest)
        stack.extend((child, level + node.is_named, nest) for child in node.children)
    lines = sum(1 for line in program.splitlines() if line.strip())
    return {
        "lines": lines,
        "ast_nodes": nodes,
        "ast_depth": depth,
        "max_nesting": nesting,
        "syntax_errors": errors,
    }
