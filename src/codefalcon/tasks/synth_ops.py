"""The primitive operations that procedural tasks are composed of, and the inputs they run on.

Each `Op` is one step of a task: an English phrase ("add {k} to every number"), a one-line Python
expression, the value type it reads and the type it returns, a fragment of the function name,
and the ranges its parameters are drawn from. A task is a chain of one to three type-compatible
ops; its reference solution is one line per op, so a tiny model sees the same few shapes again
and again::

    xs = [x for x in xs if x % 2 == 0]
    xs = [x + 3 for x in xs]
    return sum(xs)

Every type has one variable name (``VAR``) that holds a value of that type, which is what lets
the code fragments be written with fixed names. ``bool`` and ``dict[str, str]`` are results
only: no op reads them. Everything an op returns is JSON data (no tuples, sets or int keys),
because tests travel as JSON.

This module holds data and pure helpers only; `codefalcon.tasks.synth` turns chains into tasks.
"""

from __future__ import annotations

import functools
import itertools
import random
from dataclasses import dataclass
from typing import Any

LIST = "list[int]"
WORDS = "list[str]"
STR = "str"
INT = "int"
BOOL = "bool"
DICT = "dict[str, int]"
SDICT = "dict[str, str]"

VAR: dict[str, str] = {LIST: "xs", WORDS: "words", STR: "s", INT: "n", DICT: "d"}
"""The variable that holds a value of each readable type, in signatures and in reference code."""

FAMILY: dict[str, str] = {
    LIST: "list",
    WORDS: "words",
    STR: "string",
    INT: "arithmetic",
    DICT: "dict",
}
"""A task's family is named after the type of its argument."""

RESULT: dict[str, str] = {
    LIST: "Return the list.",
    WORDS: "Return the list of words.",
    STR: "Return the string.",
    INT: "Return the number.",
    BOOL: "Return True or False.",
    DICT: "Return the dictionary.",
    SDICT: "Return the dictionary.",
}
"""The closing sentence of a docstring, by the type the function returns."""

_SLUG_CHARS = {"-": "dash", ",": "comma", " ": "space", "+": "plus", "_": "underscore"}


@dataclass(frozen=True)
class Op:
    """One primitive step.

    ``phrase`` and ``slug`` are `str.format` templates over the parameters; ``code`` is too, with
    string parameters written ``{c!r}`` so they become Python literals. ``params`` maps each
    parameter name to the values it may take. ``tags``: ``reorder`` (only changes the order),
    ``order_free`` (its result ignores order), ``distinct`` (its result has no repeats),
    ``needs_repeats`` (pointless without repeats), ``first_only`` (needs the distinct values that
    only generated inputs guarantee, so it may only be the first step).
    """

    op_id: str
    in_type: str
    out_type: str
    phrase: str
    code: str
    slug: str
    params: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    tags: frozenset[str] = frozenset()

    def render(self, params: dict[str, Any]) -> tuple[str, str, str]:
        """The (phrase, code, name fragment) of this op with ``params`` filled in."""
        slug_params = {k: _SLUG_CHARS.get(v, v) for k, v in params.items()}
        return (
            self.phrase.format(**params),
            self.code.format(**params),
            self.slug.format(**slug_params),
        )


def _op(op_id: str, sig: str, slug: str, phrase: str, code: str, *params, tags=()) -> Op:
    """Shorthand for the table below: ``sig`` is ``"in_type -> out_type"``."""
    in_type, out_type = (part.strip() for part in sig.split("->"))
    return Op(op_id, in_type, out_type, phrase, code, slug, tuple(params), frozenset(tags))


_K_ADD = ("k", tuple(range(1, 10)))
_K_MUL = ("k", tuple(range(2, 6)))
_K_CUT = ("k", tuple(range(0, 11)))
_K_TAKE = ("k", tuple(range(1, 5)))
_K_SMALL = ("k", tuple(range(0, 6)))
_K_MOD = ("k", tuple(range(2, 10)))
_K_LEN = ("k", tuple(range(1, 5)))
_K_CHARS = ("k", tuple(range(1, 7)))
_C = ("c", tuple("aeost"))
_SEP = ("sep", ("-", ",", " ", "+", "_"))
_VOWELS = "'aeiouAEIOU'"

# fmt: off
OPS: tuple[Op, ...] = (
    # lists of ints -> lists of ints
    _op("add_k", "list[int] -> list[int]", "add_{k}", "add {k} to every number",
        "[x + {k} for x in xs]", _K_ADD),
    _op("sub_k", "list[int] -> list[int]", "sub_{k}", "subtract {k} from every number",
        "[x - {k} for x in xs]", _K_ADD),
    _op("mul_k", "list[int] -> list[int]", "times_{k}", "multiply every number by {k}",
        "[x * {k} for x in xs]", _K_MUL),
    _op("square_each", "list[int] -> list[int]", "squares", "square every number",
        "[x * x for x in xs]"),
    _op("abs_each", "list[int] -> list[int]", "abs", "replace every number by its absolute value",
        "[abs(x) for x in xs]"),
    _op("filter_even", "list[int] -> list[int]", "even", "keep only the even numbers",
        "[x for x in xs if x % 2 == 0]"),
    _op("filter_odd", "list[int] -> list[int]", "odd", "keep only the odd numbers",
        "[x for x in xs if x % 2 == 1]"),
    _op("filter_gt_k", "list[int] -> list[int]", "above_{k}",
        "keep only the numbers greater than {k}",
        "[x for x in xs if x > {k}]", _K_CUT),
    _op("filter_lt_k", "list[int] -> list[int]", "below_{k}", "keep only the numbers less than {k}",
        "[x for x in xs if x < {k}]", _K_CUT),
    _op("drop_negative", "list[int] -> list[int]", "nonneg", "remove the negative numbers",
        "[x for x in xs if x >= 0]"),
    _op("reverse", "list[int] -> list[int]", "reversed", "reverse the list",
        "xs[::-1]", tags=("reorder",)),
    _op("sort", "list[int] -> list[int]", "sorted", "sort the list in increasing order",
        "sorted(xs)", tags=("reorder",)),
    _op("sort_desc", "list[int] -> list[int]", "sorted_desc", "sort the list in decreasing order",
        "sorted(xs, reverse=True)", tags=("reorder",)),
    _op("take_k", "list[int] -> list[int]", "first_{k}", "keep the first {k} numbers",
        "xs[:{k}]", _K_TAKE),
    _op("drop_k", "list[int] -> list[int]", "skip_{k}", "drop the first {k} numbers",
        "xs[{k}:]", _K_TAKE),
    _op("unique", "list[int] -> list[int]", "unique",
        "remove repeated numbers, keeping the first of each",
        "list(dict.fromkeys(xs))", tags=("distinct", "needs_repeats")),
    # lists of ints -> something else
    _op("sum", "list[int] -> int", "sum", "add up the numbers",
        "sum(xs)", tags=("order_free",)),
    _op("max", "list[int] -> int", "max", "take the largest number (0 if there are none)",
        "max(xs, default=0)", tags=("order_free",)),
    _op("min", "list[int] -> int", "min", "take the smallest number (0 if there are none)",
        "min(xs, default=0)", tags=("order_free",)),
    _op("length", "list[int] -> int", "count", "count the numbers",
        "len(xs)", tags=("order_free",)),
    _op("count_k", "list[int] -> int", "count_{k}", "count how many times {k} appears",
        "xs.count({k})", _K_SMALL, tags=("order_free",)),
    _op("first", "list[int] -> int", "head", "take the first number (0 if there are none)",
        "xs[0] if xs else 0"),
    _op("last", "list[int] -> int", "tail", "take the last number (0 if there are none)",
        "xs[-1] if xs else 0"),
    _op("contains_k", "list[int] -> bool", "has_{k}", "check whether {k} is in the list",
        "{k} in xs", _K_SMALL, tags=("order_free",)),
    _op("all_even", "list[int] -> bool", "all_even", "check whether every number is even",
        "all(x % 2 == 0 for x in xs)", tags=("order_free",)),
    _op("any_negative", "list[int] -> bool", "any_negative", "check whether any number is negative",
        "any(x < 0 for x in xs)", tags=("order_free",)),
    _op("is_sorted", "list[int] -> bool", "is_sorted",
        "check whether the list is in increasing order",
        "xs == sorted(xs)"),
    _op("join_nums", "list[int] -> str", "joined_{sep}", "join the numbers with '{sep}'",
        "{sep!r}.join(str(x) for x in xs)", _SEP),
    # strings
    _op("upper", "str -> str", "upper", "make the string upper case",
        "s.upper()"),
    _op("lower", "str -> str", "lower", "make the string lower case",
        "s.lower()"),
    _op("reverse_str", "str -> str", "reversed", "reverse the string",
        "s[::-1]"),
    _op("replace_char", "str -> str", "{c}_to_{d}", "replace every '{c}' with '{d}'",
        "s.replace({c!r}, {d!r})", _C, ("d", tuple("iuxz"))),
    _op("take_chars", "str -> str", "first_{k}", "keep the first {k} characters",
        "s[:{k}]", _K_CHARS),
    _op("drop_vowels", "str -> str", "no_vowels", "remove the vowels",
        f"''.join(c for c in s if c not in {_VOWELS})"),
    _op("keep_vowels", "str -> str", "vowels", "keep only the vowels",
        f"''.join(c for c in s if c in {_VOWELS})"),
    _op("drop_spaces", "str -> str", "no_spaces", "remove the spaces",
        "s.replace(' ', '')"),
    _op("str_len", "str -> int", "length", "count the characters",
        "len(s)"),
    _op("count_char", "str -> int", "count_{c}", "count how many times '{c}' appears",
        "s.count({c!r})", _C),
    _op("count_vowels", "str -> int", "count_vowels", "count the vowels",
        f"sum(1 for c in s if c in {_VOWELS})"),
    _op("is_palindrome", "str -> bool", "is_palindrome",
        "check whether the string reads the same backwards",
        "s == s[::-1]"),
    _op("starts_with", "str -> bool", "starts_{c}", "check whether the string starts with '{c}'",
        "s.startswith({c!r})", _C),
    _op("has_char", "str -> bool", "has_{c}", "check whether the string contains '{c}'",
        "{c!r} in s", _C),
    _op("split_words", "str -> list[str]", "words", "split the string into words",
        "s.split()"),
    _op("letter_counts", "str -> dict[str, int]", "letter_counts",
        "count how many times each letter appears",
        "{{c: s.count(c) for c in s if c != ' '}}"),
    # lists of words
    _op("join_words", "list[str] -> str", "joined_{sep}", "join the words with '{sep}'",
        "{sep!r}.join(words)", _SEP),
    _op("sort_words", "list[str] -> list[str]", "sorted", "sort the words",
        "sorted(words)", tags=("reorder",)),
    _op("reverse_words", "list[str] -> list[str]", "reversed", "reverse the order of the words",
        "words[::-1]", tags=("reorder",)),
    _op("long_words", "list[str] -> list[str]", "longer_{k}",
        "keep only the words longer than {k} letters",
        "[w for w in words if len(w) > {k}]", _K_LEN),
    _op("take_words", "list[str] -> list[str]", "first_{k}", "keep the first {k} words",
        "words[:{k}]", _K_TAKE),
    _op("upper_words", "list[str] -> list[str]", "upper", "make every word upper case",
        "[w.upper() for w in words]"),
    _op("unique_words", "list[str] -> list[str]", "unique",
        "remove repeated words, keeping the first of each",
        "list(dict.fromkeys(words))", tags=("distinct", "needs_repeats")),
    _op("words_starting", "list[str] -> list[str]", "starting_{c}",
        "keep only the words that start with '{c}'",
        "[w for w in words if w.startswith({c!r})]", _C),
    _op("count_words", "list[str] -> int", "count", "count the words",
        "len(words)", tags=("order_free",)),
    _op("word_lengths", "list[str] -> list[int]", "lengths", "replace every word by its length",
        "[len(w) for w in words]"),
    _op("word_counts", "list[str] -> dict[str, int]", "word_counts",
        "count how many times each word appears",
        "{{w: words.count(w) for w in words}}", tags=("order_free", "needs_repeats")),
    _op("word_length_map", "list[str] -> dict[str, int]", "length_map",
        "map every word to its length",
        "{{w: len(w) for w in words}}"),
    # dicts from str to int
    _op("keys_sorted", "dict[str, int] -> list[str]", "keys", "take the keys in sorted order",
        "sorted(d)", tags=("distinct",)),
    _op("values_sorted", "dict[str, int] -> list[int]", "values",
        "take the values in increasing order",
        "sorted(d.values())"),
    _op("values_sum", "dict[str, int] -> int", "total", "add up the values",
        "sum(d.values())"),
    _op("dict_size", "dict[str, int] -> int", "size", "count the keys",
        "len(d)"),
    _op("add_values", "dict[str, int] -> dict[str, int]", "add_{k}", "add {k} to every value",
        "{{w: v + {k} for w, v in d.items()}}", _K_ADD),
    _op("mul_values", "dict[str, int] -> dict[str, int]", "times_{k}",
        "multiply every value by {k}",
        "{{w: v * {k} for w, v in d.items()}}", _K_MUL),
    _op("filter_values", "dict[str, int] -> dict[str, int]", "above_{k}",
        "keep only the keys whose value is greater than {k}",
        "{{w: v for w, v in d.items() if v > {k}}}", _K_CUT),
    _op("invert", "dict[str, int] -> dict[str, str]", "inverted",
        "swap keys and values, writing each value as a string",
        "{{str(v): w for w, v in d.items()}}", tags=("first_only",)),
    # arithmetic on ints
    _op("add_n", "int -> int", "plus_{k}", "add {k} to the number",
        "n + {k}", _K_ADD),
    _op("sub_n", "int -> int", "minus_{k}", "subtract {k} from the number",
        "n - {k}", _K_ADD),
    _op("mul_n", "int -> int", "times_{k}", "multiply the number by {k}",
        "n * {k}", _K_MUL),
    _op("mod_n", "int -> int", "mod_{k}", "take the remainder of the number divided by {k}",
        "n % {k}", _K_MOD),
    _op("div_n", "int -> int", "div_{k}", "divide the number by {k}, rounding down",
        "n // {k}", _K_MOD),
    _op("square", "int -> int", "squared", "square the number",
        "n * n"),
    _op("abs_n", "int -> int", "abs", "take the absolute value of the number",
        "abs(n)"),
    _op("negate", "int -> int", "negated", "negate the number",
        "-n"),
    _op("digit_sum", "int -> int", "digit_sum", "add up the digits of the number (ignore the sign)",
        "sum(int(c) for c in str(abs(n)))"),
    _op("is_even", "int -> bool", "is_even", "check whether the number is even",
        "n % 2 == 0"),
    _op("divisible_k", "int -> bool", "divisible_{k}",
        "check whether the number is divisible by {k}",
        "n % {k} == 0", _K_MOD),
    _op("is_positive", "int -> bool", "is_positive", "check whether the number is greater than 0",
        "n > 0"),
    _op("digits", "int -> list[int]", "digits",
        "make the list of the digits of the number (ignore the sign)",
        "[int(c) for c in str(abs(n))]"),
    _op("to_str", "int -> str", "as_text", "write the number as a string",
        "str(n)"),
)
# fmt: on

OPS_BY_ID: dict[str, Op] = {op.op_id: op for op in OPS}

CONFLICTS: frozenset[tuple[str, str]] = frozenset(
    {
        ("filter_even", "filter_odd"),
        ("filter_odd", "filter_even"),
        ("add_k", "sub_k"),
        ("sub_k", "add_k"),
        ("add_n", "sub_n"),
        ("sub_n", "add_n"),
        ("upper", "lower"),
        ("lower", "upper"),
        ("sort", "sort_desc"),
        ("sort_desc", "sort"),
        ("reverse", "sort"),
        ("reverse", "sort_desc"),
        ("reverse_words", "sort_words"),
        ("keep_vowels", "drop_vowels"),
        ("drop_vowels", "keep_vowels"),
    }
)
"""Ordered pairs of ops that may not follow each other: the second undoes or erases the first."""


def chain_ok(ops: tuple[Op, ...]) -> bool:
    """Whether ``ops`` make a sensible task: types line up and no step is obviously wasted.

    The rules are static; `codefalcon.tasks.synth` also rejects instances whose steps turn out to
    change nothing on sample inputs.
    """
    if len({op.op_id for op in ops}) < len(ops):
        return False
    if any("first_only" in op.tags for op in ops[1:]):
        return False
    for a, b in itertools.pairwise(ops):
        if a.out_type != b.in_type or (a.op_id, b.op_id) in CONFLICTS:
            return False
        if "reorder" in a.tags and "order_free" in b.tags:
            return False
        if "distinct" in a.tags and "needs_repeats" in b.tags:
            return False
    return True


@functools.cache
def templates(length: int) -> tuple[tuple[Op, ...], ...]:
    """Every valid chain of ``length`` ops, in a fixed order (the library's order)."""
    chains: list[tuple[Op, ...]] = [(op,) for op in OPS if op.in_type in VAR]
    for _ in range(length - 1):
        chains = [(*c, op) for c in chains for op in OPS if op.in_type == c[-1].out_type]
    return tuple(c for c in chains if chain_ok(c))


def template_id(ops: tuple[Op, ...]) -> str:
    """The template's name: op ids joined by ``|`` (``"filter_even|add_k|sum"``)."""
    return "|".join(op.op_id for op in ops)


# ---------------------------------------------------------------------------------------------
# Inputs. Small values keep doctest examples short; edge cases are always among the hidden tests.

_WORD_POOL = (
    "cat", "dog", "sun", "tree", "apple", "red", "blue", "sky", "go", "a", "sea", "moon",
    "egg", "owl", "ice", "bat", "hat", "pie", "top", "toast", "east", "stone", "oasis", "tea",
)  # fmt: skip
_NAME_POOL = ("ann", "bob", "cat", "dan", "eve", "sam", "tom", "zoe", "ola", "ted")

EDGE_INPUTS: dict[str, tuple[Any, ...]] = {
    LIST: ([], [0], [-4, -1, -7]),
    WORDS: ([], ["a"], ["sea", "sea", "tea"]),
    STR: ("", "a", "Sea Tea"),
    INT: (0, -7, 1),
    DICT: ({}, {"ann": 0}, {"bob": -3, "eve": 5}),
}
"""Inputs every task of that argument type is tested on: empty, zero/one-element, negatives."""


def _draw_word(rng: random.Random) -> str:
    word = rng.choice(_WORD_POOL)
    return word.capitalize() if rng.random() < 0.15 else word


def draw_input(arg_type: str, rng: random.Random) -> Any:
    """A random small value of ``arg_type`` (JSON data, fresh object each call)."""
    if arg_type == LIST:
        return [rng.randint(-5, 12) for _ in range(rng.randint(1, 7))]
    if arg_type == WORDS:
        return [_draw_word(rng) for _ in range(rng.randint(1, 5))]
    if arg_type == STR:
        return " ".join(_draw_word(rng) for _ in range(rng.randint(1, 3)))
    if arg_type == INT:
        return rng.randint(-30, 30) if rng.random() < 0.5 else rng.randint(-999, 999)
    if arg_type == DICT:
        keys = rng.sample(_NAME_POOL, rng.randint(1, 4))
        values = rng.sample(range(-5, 21), len(keys))  # distinct, so `invert` is well defined
        return dict(zip(keys, values, strict=True))
    raise ValueError(f"no input generator for type {arg_type!r}; expected one of {sorted(VAR)}")


def draw_params(op: Op, rng: random.Random) -> dict[str, Any]:
    """Values for ``op``'s parameters, each uniform over its range."""
    return {name: rng.choice(values) for name, values in op.params}
