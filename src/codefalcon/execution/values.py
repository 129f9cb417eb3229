"""Typed JSON encoding of Python values crossing a process boundary.

Return values travel from the program's process to the process that judges them as *data*, never
as objects: a decoder builds only exact built-in types, so nothing the program defined (an
``__eq__`` that always says True, an ``int`` subclass, a patched ``Counter``) can reach the
comparison. Subclasses of built-in value types are laundered to their base value with the base
type's own C methods, so overridden ``__iter__``/``__eq__`` never run during encoding either.

This module is stdlib-only: it is also sent, as source, into the sandbox worker.

Encoding: JSON scalars and lists stand for themselves; everything else is an object with a ``$``
tag: ``{"$": "tuple", "v": [...]}``, ``dict`` (list of pairs), ``set``, ``frozenset``, ``float``
(non-finite, as a string), ``bytes`` (hex), ``complex``, ``deque``, ``decimal``, ``fraction``,
``ref`` (an object that is not a value: an id into the sender's handle table, its type name and
repr), ``cut`` (too large or too deep to send).

>>> decode(encode((1, [2.5, "x"], {"a": None})))
(1, [2.5, 'x'], {'a': None})
"""

from __future__ import annotations

import collections
import decimal
import fractions
import math
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 64
MAX_ITEMS = 1_000_000
MAX_NUMBER_CHARS = 4300
"""Longest decimal or fraction text decoded (Python's own limit on int digits)."""
MAX_EXPONENT = 4300
"""Largest exponent of a decoded decimal or fraction: 10**(10**7) would stall the judge."""
ERROR_CHARS = 2000


_BUILTIN_TYPES = {
    t.__name__: t
    for t in (int, float, str, bool, bytes, list, tuple, dict, set, frozenset, complex, type(None))
}


class Opaque:
    """A value the sender could not send as data (its own object, a generator, a cycle).

    It equals nothing, not even another Opaque, so it can never pass a comparison.
    """

    __slots__ = ("ref", "repr", "type_name")

    def __init__(self, type_name: str, text: str, ref: int | None = None) -> None:
        self.type_name, self.repr, self.ref = type_name, text, ref

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return self.repr


class _Budget:
    """Counts encoded items so a huge return value is cut instead of exhausting memory."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.on_object: Callable[[Any], Any] | None = None


def encode(
    value: Any,
    refs: dict[int, Any] | None = None,
    max_items: int = MAX_ITEMS,
    on_object: Callable[[Any], Any] | None = None,
) -> Any:
    """JSON-ready form of ``value``.

    Objects that are not values become ``ref`` tags and are kept in ``refs`` (id -> object), or
    are handed to ``on_object``, which returns their encoding or raises.
    """
    budget = _Budget(max_items)
    budget.on_object = on_object
    return _enc(value, refs, 0, set(), budget)


def _enc(x: Any, refs: dict[int, Any] | None, depth: int, seen: set[int], budget: _Budget) -> Any:
    budget.left -= 1
    if budget.left < 0 or depth > MAX_DEPTH:
        return {"$": "cut"}
    t = type(x)
    if x is None or t is bool or t is str or t is int:
        return x
    if t is float:
        return x if math.isfinite(x) else {"$": "float", "v": repr(x)}
    if t is complex:
        return {"$": "complex", "v": [x.real, x.imag]}
    if t is bytes or t is bytearray:
        return {"$": "bytes", "v": bytes(x).hex()}
    if isinstance(x, (int, float, str, bytes, bytearray, complex)):
        return _enc_scalar_subclass(x)
    if isinstance(x, (decimal.Decimal, fractions.Fraction)) and t in (
        decimal.Decimal,
        fractions.Fraction,
    ):
        return {"$": "decimal" if t is decimal.Decimal else "fraction", "v": str(x)}
    if t is type and _BUILTIN_TYPES.get(getattr(x, "__name__", None)) is x:
        return {"$": "type", "v": x.__name__}  # e.g. MBPP passes `int` to filter by type
    if isinstance(x, (list, tuple, dict, set, frozenset, collections.deque)):
        if id(x) in seen:
            return {"$": "cut"}
        seen.add(id(x))
        try:
            return _enc_container(x, refs, depth, seen, budget)
        finally:
            seen.discard(id(x))
    if budget.on_object is not None:
        return budget.on_object(x)
    return _enc_ref(x, refs)


def _enc_scalar_subclass(x: Any) -> Any:
    # A subclass of a value type is sent as its base value, read with the base type's own method.
    for base, read in ((int, int.__int__), (float, float.__float__), (str, str.__str__)):
        if isinstance(x, base):
            v = read(x)
            return v if base is not float or math.isfinite(v) else {"$": "float", "v": repr(v)}
    if isinstance(x, (bytes, bytearray)):
        return {"$": "bytes", "v": bytes(memoryview(x)).hex()}
    return {"$": "complex", "v": [complex.__complex__(x).real, complex.__complex__(x).imag]}


def _enc_container(x: Any, refs: Any, depth: int, seen: set[int], budget: _Budget) -> Any:
    def sub(items: Any) -> list[Any]:
        return [_enc(i, refs, depth + 1, seen, budget) for i in items]

    # Base-class iterators ignore any __iter__/items override of a subclass.
    if isinstance(x, list):
        return sub(list.__iter__(x))
    if isinstance(x, tuple):
        return {"$": "tuple", "v": sub(tuple.__iter__(x))}
    if isinstance(x, dict):
        return {"$": "dict", "v": [sub(kv) for kv in dict.items(x)]}
    if isinstance(x, collections.deque):
        return {"$": "deque", "v": sub(collections.deque.__iter__(x))}
    tag = "frozenset" if isinstance(x, frozenset) else "set"
    it = frozenset.__iter__(x) if tag == "frozenset" else set.__iter__(x)
    return {"$": tag, "v": sub(it)}


def _enc_ref(x: Any, refs: dict[int, Any] | None) -> dict[str, Any]:
    try:
        text = repr(x)[:200]
    except BaseException:  # a hostile __repr__ must not break the encoder
        text = "<unrepresentable>"
    type_name = getattr(type(x), "__name__", "object")
    out: dict[str, Any] = {"$": "ref", "type": str(type_name)[:100], "repr": text}
    if refs is not None:
        refs[id(x)] = x
        out["id"] = id(x)
    return out


def decode(data: Any, resolve_ref: Any = None) -> Any:
    """Rebuild a value from ``encode``'s output using exact built-in types only.

    ``resolve_ref(tag_dict)`` turns a ``ref`` into an object; by default it becomes an `Opaque`.
    """
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [decode(i, resolve_ref) for i in data]
    if not isinstance(data, dict):
        raise ValueError(f"not an encoded value: {type(data).__name__}")
    tag, v = data.get("$"), data.get("v")
    if tag == "tuple":
        return tuple(decode(i, resolve_ref) for i in v)
    if tag == "dict":
        return {_hashable(decode(k, resolve_ref)): decode(val, resolve_ref) for k, val in v}
    if tag in ("set", "frozenset"):
        items = [_hashable(decode(i, resolve_ref)) for i in v]
        return set(items) if tag == "set" else frozenset(items)
    if tag == "deque":
        return collections.deque(decode(i, resolve_ref) for i in v)
    if tag == "float":
        return float(v)
    if tag == "bytes":
        return bytes.fromhex(v)
    if tag == "complex":
        return complex(v[0], v[1])
    if tag == "decimal":
        d = decimal.Decimal(_number_text(v))
        if d.is_snan():  # it raises in every comparison
            raise ValueError("signalling NaN")
        return d
    if tag == "fraction":
        try:
            return fractions.Fraction(_number_text(v))
        except ZeroDivisionError:
            raise ValueError("fraction with a zero denominator") from None
    if tag == "type":
        if v not in _BUILTIN_TYPES:
            raise ValueError(f"unknown type {str(v)[:50]!r}")
        return _BUILTIN_TYPES[v]
    if tag == "ref":
        if resolve_ref is not None:
            return resolve_ref(data)
        return Opaque(str(data.get("type")), str(data.get("repr")), data.get("id"))
    if tag == "cut":
        return Opaque("cut", "<value too large or too deep to compare>")
    raise ValueError(f"unknown value tag {tag!r}")


def _number_text(v: Any) -> str:
    """``v`` if it is a number's text of bounded size and exponent, else ValueError."""
    if not isinstance(v, str) or len(v) > MAX_NUMBER_CHARS:
        raise ValueError("number text too long or not a string")
    low = v.strip().lower()
    exp = low.rpartition("e")[2] if "e" in low and "inf" not in low else ""
    if exp:
        try:
            too_big = abs(int(exp)) > MAX_EXPONENT
        except ValueError:
            raise ValueError(f"malformed number {v[:50]!r}") from None
        if too_big:
            raise ValueError(f"exponent beyond {MAX_EXPONENT}")
    return v


def shape_problem(
    data: Any, max_depth: int = MAX_DEPTH + 4, max_nodes: int = 2 * MAX_ITEMS + 16
) -> str | None:
    """Why decoded JSON ``data`` is too deep or too large to judge, or None. No recursion."""
    stack, nodes = [(data, 0)], 0
    while stack:
        x, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            return f"more than {max_nodes} items"
        if depth > max_depth:
            return f"nested deeper than {max_depth}"
        if isinstance(x, list):
            stack += [(i, depth + 1) for i in x]
        elif isinstance(x, dict):
            stack += [(i, depth + 1) for i in x.values()]
    return None


def clean_error(error: Any) -> dict[str, Any] | None:
    """An error report another process sent, reduced to bounded text and numbers.

    Programs control their exceptions' type names and messages (and can write these reports
    themselves), so nothing here may be unhashable, huge or of an unexpected type.
    """
    if not isinstance(error, dict):
        return None if error is None else {"type": "InvalidReport", "message": _text(error)}
    out: dict[str, Any] = {}
    for key in ("type", "message", "test_line"):
        if error.get(key) is not None:
            out[key] = _text(error[key], 200 if key == "type" else ERROR_CHARS)
    line = error.get("line")
    if type(line) is int and 0 <= line < 10**9:
        out["line"] = line
    return out


def clean_observation(obs: Any) -> dict[str, Any]:
    """The fields of a worker observation that anything downstream reads, type-checked and cut.

    The same function runs in the worker (before sending) and in the parent (after receiving).
    Unknown fields are dropped; the value is kept as JSON data (checked by `shape_problem`).
    """
    if not isinstance(obs, dict):
        return {"status": "invalid", "error": {"type": "InvalidReport", "message": "not an object"}}
    out: dict[str, Any] = {}
    for key in ("status", "kind", "signal"):
        if isinstance(obs.get(key), str):
            out[key] = obs[key][:40]
    for key in ("ok",):
        if type(obs.get(key)) is bool:
            out[key] = obs[key]
    code = obs.get("exit_code")
    if type(code) is int and -(2**31) <= code < 2**31:
        out["exit_code"] = code
    elif "exit_code" in obs:
        out["exit_code"] = None
    for key in ("seconds", "compile_seconds"):
        seconds = obs.get(key)
        if type(seconds) in (int, float) and 0 <= seconds < 1e6:
            out[key] = float(seconds)
    for key in ("error",):
        if obs.get(key) is not None:
            out[key] = clean_error(obs[key])
    last = obs.get("last_call")
    if isinstance(last, dict):
        out["last_call"] = {
            k: _text(last[k], ERROR_CHARS) for k in ("call", "result") if last.get(k) is not None
        }
    for key in ("stdout", "stderr"):
        if key in obs:
            out[key] = obs[key] if isinstance(obs[key], str) else _text(obs[key])
    if type(obs.get("completed")) is bool:
        out["completed"] = obs["completed"]
    if "value" in obs:
        out["value"] = obs["value"]
    for key in ("ready", "uid", "pid", "python"):  # the worker's greeting
        if key in obs and isinstance(obs[key], (bool, int, str)):
            out[key] = obs[key]
    return out


def _text(x: Any, limit: int = ERROR_CHARS) -> str:
    s = x if isinstance(x, str) else f"<{type(x).__name__}>"
    return s if len(s) <= limit else s[:limit] + "..."


def _hashable(x: Any) -> Any:
    # Decoded lists inside dict keys or sets can only have come from tuples the encoder cut.
    return x if not isinstance(x, list) else Opaque("list", repr(x))
