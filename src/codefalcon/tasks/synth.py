"""Procedural Python function tasks for offline training and the quick demo.

A task is a chain of one to three primitive ops from `codefalcon.tasks.synth_ops` ("keep only the
even numbers, then add 3 to every number, then add up the numbers"), rendered HumanEval style: a
signature, a one-sentence docstring with one or two doctest examples, and a reference body of one
line per op. Hidden tests are 8-12 calls whose expected values come from running that reference
(in this process: it is our own generated code), always including the empty / zero / negative
edge inputs of the argument type.

The vocabulary is small and regular on purpose: a 5M-parameter model fine-tuned for minutes on
two CPU cores must be able to learn it. Variety comes from the ~16k op chains and their
parameters, so memorising does not work, and difficulty is the chain length (easy 1, medium 2,
hard 3 ops).

Words used throughout: a *template* is an op chain (``"filter_even|add_k|sum"``); an *instance* is
a template with its parameters fixed (``k=3``); the test split never shares an instance with train
(``holdout="instance"``) or, stricter, never shares a template (``holdout="template"``).

>>> task = generate_tasks(1, seed=0, difficulty="easy")[0]
>>> task.task_id, task.difficulty, len(task.tests) >= 8
('synth/train/0', 'easy', True)
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import json
import keyword
import math
import random
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from codefalcon.tasks.record import Task, TestCase, TestStyle, TestSuite
from codefalcon.tasks.synth_ops import (
    BOOL,
    EDGE_INPUTS,
    FAMILY,
    OPS_BY_ID,
    RESULT,
    VAR,
    Op,
    draw_input,
    draw_params,
    template_id,
    templates,
)

Difficulty = Literal["easy", "medium", "hard"]
Holdout = Literal["instance", "template"]

LEVELS: dict[str, int] = {"easy": 1, "medium": 2, "hard": 3}
"""Number of ops in a task of each difficulty."""

N_CHECK_INPUTS = 24  # random inputs (besides edge cases) an instance is checked on
N_TASK_INPUTS = 16  # further random inputs drawn per task, to pick hidden tests from
MAX_DRAWS = 400  # draws per task before giving up; the first half insists on a new instance
EXAMPLE_MAX_CHARS = 48  # longest input + output repr shown as a doctest example


@dataclass(frozen=True)
class Instance:
    """A template with its parameters chosen: the unit the train/test split keeps apart."""

    ops: tuple[Op, ...]
    params: tuple[dict[str, Any], ...]

    @property
    def template(self) -> str:
        return template_id(self.ops)

    @property
    def key(self) -> str:
        """Stable text naming this instance (template and parameters), e.g. ``sum#[{}]``."""
        return f"{self.template}#{json.dumps(list(self.params), sort_keys=True)}"

    @classmethod
    def from_key(cls, key: str) -> Instance:
        template, params = key.split("#", 1)
        ops = tuple(OPS_BY_ID[op_id] for op_id in template.split("|"))
        return cls(ops, tuple(json.loads(params)))

    @property
    def arg_type(self) -> str:
        return self.ops[0].in_type

    @property
    def out_type(self) -> str:
        return self.ops[-1].out_type

    def rendered(self) -> list[tuple[str, str, str]]:
        """(phrase, code, name fragment) of every step."""
        return [op.render(p) for op, p in zip(self.ops, self.params, strict=True)]

    def base_name(self) -> str:
        """Function name from the ops (``even_add_3_sum``), never a builtin that it may call."""
        name = "_".join(slug for _, _, slug in self.rendered())
        if keyword.iskeyword(name) or hasattr(builtins, name):
            name = f"{name}_of_{VAR[self.arg_type]}"
        return name

    def description(self) -> str:
        """The docstring sentence: steps joined by ``then``, and what is returned."""
        text = ", then ".join(phrase for phrase, _, _ in self.rendered())
        return f"{text[0].upper()}{text[1:]}. {RESULT[self.out_type]}"

    def body(self) -> str:
        """Reference body: one line per op, each step overwriting the variable of its type."""
        codes = [code for _, code, _ in self.rendered()]
        names = [VAR[op.out_type] for op in self.ops[:-1]]
        lines = [f"    {var} = {code}\n" for var, code in zip(names, codes, strict=False)]
        return "".join(lines) + f"    return {codes[-1]}\n"

    def without(self, i: int) -> Instance:
        """The same chain with step ``i`` left out (to test that the step matters)."""
        return Instance(self.ops[:i] + self.ops[i + 1 :], self.params[:i] + self.params[i + 1 :])

    def signature(self, name: str) -> str:
        return f"def {name}({VAR[self.arg_type]}: {self.arg_type}) -> {self.out_type}:\n"

    def function(self) -> Callable[[Any], Any]:
        """The reference as a callable, compiled in-process (our own generated code only)."""
        namespace: dict[str, Any] = {}
        exec(compile(self.signature("f") + self.body(), "<synth>", "exec"), namespace)
        return namespace["f"]


def _copy(value: Any) -> Any:
    """A fresh copy of an input (inputs are flat lists and dicts of scalars) for one run."""
    return value.copy() if isinstance(value, list | dict) else value


def _key(value: Any) -> str:
    """Canonical JSON text of a value, to compare and deduplicate outputs (dict order ignored)."""
    return json.dumps(value, sort_keys=True)


def _run(fn: Callable[[Any], Any], inputs: list[Any]) -> list[Any]:
    return [fn(_copy(value)) for value in inputs]


def _unique(values: list[Any]) -> list[Any]:
    """``values`` without repeats, first occurrences kept in order."""
    first: dict[str, Any] = {}
    for value in values:
        first.setdefault(repr(value), value)
    return list(first.values())


def _check_inputs(arg_type: str, rng: random.Random, n: int) -> list[Any]:
    """Edge inputs, then ``n`` random ones, duplicates removed."""
    return _unique([*EDGE_INPUTS[arg_type], *(draw_input(arg_type, rng) for _ in range(n))])


@functools.cache
def _instance_inputs(key: str) -> tuple[Any, ...]:
    """The inputs an instance is checked on, from a generator seeded by its key (callers copy)."""
    return tuple(_check_inputs(Instance.from_key(key).arg_type, random.Random(key), N_CHECK_INPUTS))


@functools.cache
def instance_ok(key: str) -> bool:
    """Whether an instance makes a fair task: it runs, varies, and every step matters.

    Checked on inputs drawn from a generator seeded by the key, so the answer depends on the
    instance alone. Rejected: outputs that do not JSON round-trip, fewer than 3 distinct outputs
    (2 for ``bool``), steps that can be dropped without changing any output, and parameters
    whose value changes no output.
    """
    inst = Instance.from_key(key)
    inputs = list(_instance_inputs(key))
    try:
        outputs = _run(inst.function(), inputs)
        texts = [_key(out) for out in outputs]
        if any(json.loads(text) != out for text, out in zip(texts, outputs, strict=True)):
            return False
        if len(set(texts)) < (2 if inst.out_type == BOOL else 3):
            return False
        for i, op in enumerate(inst.ops):
            droppable = len(inst.ops) > 1 and op.in_type == op.out_type
            if droppable and _run(inst.without(i).function(), inputs) == outputs:
                return False
        return all(_params_matter(inst, i, inputs, outputs) for i in range(len(inst.ops)))
    except Exception:  # a chain that crashes on some input is not a task
        return False


def _params_matter(inst: Instance, i: int, inputs: list[Any], outputs: list[Any]) -> bool:
    """Whether each parameter of step ``i`` changes some output when given another value.

    Catches steps that are needed for their type but not for their meaning, such as joining
    words with '-' before counting vowels (any separator gives the same count).
    """
    for name, values in inst.ops[i].params:
        others = [v for v in values if v != inst.params[i][name]][:2]
        variants = [{**inst.params[i], name: v} for v in others]
        rest = [(*inst.params[:i], p, *inst.params[i + 1 :]) for p in variants]
        if all(_run(Instance(inst.ops, ps).function(), inputs) == outputs for ps in rest):
            return False
    return True


def _pools(
    levels: Sequence[str], only: Collection[str] | None, exclude: Collection[str]
) -> dict[str, dict[str, list[tuple[Op, ...]]]]:
    """Templates allowed at each level, grouped by argument type (so families are balanced)."""
    pools: dict[str, dict[str, list[tuple[Op, ...]]]] = {}
    for level in levels:
        by_type: dict[str, list[tuple[Op, ...]]] = {}
        for ops in templates(LEVELS[level]):
            name = template_id(ops)
            if name not in exclude and (only is None or name in only):
                by_type.setdefault(ops[0].in_type, []).append(ops)
        if not by_type:
            raise ValueError(f"no {level} templates left after the template filters")
        pools[level] = by_type
    return pools


def _draw_instance(
    rng: random.Random,
    pool: dict[str, list[tuple[Op, ...]]],
    seen: set[str],
    keep: Callable[[str], bool],
) -> Instance:
    """A valid instance that ``keep`` accepts and, while the pool allows, new to this split."""
    arg_types = sorted(pool)
    for attempt in range(MAX_DRAWS):
        ops = rng.choice(pool[rng.choice(arg_types)])
        inst = Instance(ops, tuple(draw_params(op, rng) for op in ops))
        key = inst.key
        if (key in seen and attempt < MAX_DRAWS // 2) or not keep(key):
            continue
        if instance_ok(key):
            return inst
    n_ops = len(next(iter(pool.values()))[0])
    raise RuntimeError(
        f"no valid {n_ops}-op instance in {MAX_DRAWS} draws: the template or instance filters "
        "leave too little (raise the held-out share, or use fewer difficulty levels)"
    )


def held_out_instance(key: str, seed: int, share: float = 0.2) -> bool:
    """Whether instance ``key`` is on the test side of the instance holdout for ``seed``.

    A stable hash of seed and key (SHA-256, not Python's salted `hash`) compared with ``share``,
    so about ``share`` of the instances of every template are test-only whatever the split sizes,
    and train can never run out of instances because test took them.
    """
    digest = hashlib.sha256(f"{seed}/{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


def _hidden_cases(fn: Callable[[Any], Any], inputs: list[Any], n_edge: int, n: int) -> list[Any]:
    """Edge inputs first, then inputs with outputs not yet covered, then any: ``n`` in all."""
    chosen, outputs = list(inputs[:n_edge]), {_key(out) for out in _run(fn, inputs[:n_edge])}
    rest = inputs[n_edge:]
    for value, out in zip(rest, map(_key, _run(fn, rest)), strict=True):
        if len(chosen) < n and out not in outputs:
            chosen.append(value)
            outputs.add(out)
    chosen += [v for v in rest if v not in chosen][: n - len(chosen)]
    return chosen


def _teaches(value: Any, out: Any) -> int:
    """How much an example shows (0-3): the output differs from the input, is not empty, and
    the input has at least two items (one-element lists hide order and filtering)."""
    sized = not isinstance(value, list | dict | str) or len(value) >= 2
    return (out != value) + (out not in ([], "", {})) + sized


def _examples(fn: Callable[[Any], Any], candidates: list[Any], n: int) -> list[Any]:
    """Up to ``n`` short inputs with distinct outputs for the doctest, the most telling first."""
    runs = [(value, fn(_copy(value))) for value in candidates]
    runs = [(v, out) for v, out in runs if len(repr(v)) + len(repr(out)) <= EXAMPLE_MAX_CHARS]
    runs.sort(key=lambda run: -_teaches(*run))  # stable: ties keep the random order
    picked: list[Any] = []
    outs: set[str] = set()
    for value, out in runs:
        if _key(out) not in outs and len(picked) < n:
            picked.append(value)
            outs.add(_key(out))
    return picked or candidates[:1]


def _suite(fn: Callable[[Any], Any], name: str, inputs: list[Any]) -> TestSuite:
    cases = tuple(TestCase(input=[_copy(v)], expected=fn(_copy(v))) for v in inputs)
    return TestSuite(style=TestStyle.CALL, cases=cases, fn_name=name)


def build_task(inst: Instance, rng: random.Random, task_id: str, name: str, split: str) -> Task:
    """Render one instance as a `Task` whose tests are computed by running its reference."""
    fn = inst.function()
    edges = len(EDGE_INPUTS[inst.arg_type])
    # the instance check's inputs come last: they are known to give varied outputs
    checked = [_copy(value) for value in _instance_inputs(inst.key)[edges:]]
    inputs = _unique(_check_inputs(inst.arg_type, rng, N_TASK_INPUTS) + checked)
    hidden = _hidden_cases(fn, inputs, edges, rng.randint(8, 12))
    fresh = [draw_input(inst.arg_type, rng) for _ in range(12)]
    unseen = [v for v in fresh if v not in hidden] or fresh
    examples = _examples(fn, unseen, rng.randint(1, 2))
    doctest = "".join(f"    >>> {name}({v!r})\n    {fn(_copy(v))!r}\n" for v in examples)
    prompt = f'{inst.signature(name)}    """{inst.description()}\n{doctest}    """\n'
    params = {op.op_id: p for op, p in zip(inst.ops, inst.params, strict=True) if p}
    return Task(
        task_id=task_id,
        prompt=prompt,
        tests=_suite(fn, name, hidden),
        source="synth",
        entry_point=name,
        completion_prefix=prompt,
        solutions=(prompt + inst.body(),),
        example_tests=_suite(fn, name, examples),
        split=split,
        difficulty=next(level for level, n in LEVELS.items() if n == len(inst.ops)),
        metadata={
            "template": inst.template,
            "params": params,
            "family": FAMILY[inst.arg_type],
            "instance": inst.key,
        },
    )


def print_answer(task: Task) -> Task:
    """``task`` with its reference ending in ``print(answer)`` instead of ``return answer``.

    The beginner's bug: the program shows the right value and returns None, so every test
    fails. A warm-up corpus with this bug in part of its references (`with_print_bug`) gives
    a model that is unsure whether to print or return; only execution feedback tells it which
    is right, which is what `codefalcon run`'s RL stage is then there to teach (docs/rl.md).
    """
    if not task.solutions:
        raise ValueError(f"{task.task_id}: no reference solution to rewrite")
    head, found, answer = task.solutions[0].rstrip("\n").rpartition("\n    return ")
    if not found or "\n" in answer:
        raise ValueError(f"{task.task_id}: the reference does not end in a one-line return")
    return replace(task, solutions=(f"{head}\n    print({answer})\n", *task.solutions[1:]))


def with_print_bug(tasks: Sequence[Task], share: float, seed: int) -> list[Task]:
    """``tasks`` with the references of ``share`` of them (drawn with ``seed``) `print_answer`-ed."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], got {share}")
    chosen = set(random.Random(seed).sample(range(len(tasks)), round(share * len(tasks))))
    return [print_answer(task) if i in chosen else task for i, task in enumerate(tasks)]


# How the MBPP form names the argument, by the family of its type.
_ARGUMENT_PHRASE = {
    "list": "a list of integers",
    "words": "a list of words",
    "string": "a string",
    "arithmetic": "an integer",
    "dict": "a dictionary from names to numbers",
}


def mbpp_form(task: Task) -> Task:
    """The same task written as MBPP writes its problems: an English request and assert tests.

    MBPP states a problem in one sentence and shows one ``assert f(...) == ...`` line; the
    HumanEval form gives a signature and a docstring to complete. A chat model prompted on MBPP
    sees the first form (`codefalcon.models.prompts.chat_messages`), so generated tasks meant to
    be mixed with MBPP's train split are rewritten into it: the docstring's sentence becomes the
    request, every hidden call becomes an assert line, the first doctest the shown example. The
    reference solution is unchanged, so the task is still verified by it.
    """
    name = task.entry_point
    if task.source != "synth" or not name or task.tests.style is not TestStyle.CALL:
        raise ValueError(f"{task.task_id}: mbpp_form takes a generated (synth) task")
    sentence = task.prompt.split('"""')[1].split("\n")[0].strip()
    phrase = _ARGUMENT_PHRASE[task.metadata["family"]]
    request = f"Write a function that takes {phrase}. {sentence}"

    def asserts(suite: TestSuite) -> TestSuite:
        lines = tuple(TestCase(code=case.call_assert(name)) for case in suite.cases)
        return TestSuite(style=TestStyle.ASSERT, cases=lines, fn_name=name)

    return replace(
        task,
        prompt=request,
        tests=asserts(task.tests),
        completion_prefix="",
        example_tests=asserts(task.example_tests) if task.example_tests else None,
    )


def _levels(difficulty: Difficulty | Sequence[Difficulty] | None) -> list[str]:
    if difficulty is None:
        return list(LEVELS)
    levels = [difficulty] if isinstance(difficulty, str) else list(difficulty)
    if not levels or any(d not in LEVELS for d in levels):
        raise ValueError(f"difficulty must be in {list(LEVELS)} or None (all), got {difficulty!r}")
    return levels


def generate_tasks(
    n: int,
    seed: int,
    split: str = "train",
    difficulty: Difficulty | Sequence[Difficulty] | None = None,
    *,
    only_templates: Collection[str] | None = None,
    exclude_templates: Collection[str] = (),
    keep_instance: Callable[[str], bool] | None = None,
) -> list[Task]:
    """``n`` tasks, deterministic in (``seed``, ``split``), difficulties taken in turn.

    ``difficulty``: one level, several (cycled, so counts differ by at most one) or None for
    easy, medium and hard. ``only_templates`` / ``exclude_templates`` filter op chains by
    template id; only instances whose key (``task.metadata["instance"]``) ``keep_instance``
    accepts are drawn. An instance repeats within a split only once the pool is used up, and
    then gets a ``_v2``, ``_v3``... function name. Task ids are ``synth/<split>/<index>``.
    """
    levels = _levels(difficulty)
    pools = _pools(levels, only_templates, set(exclude_templates))
    rng = random.Random(f"codefalcon.synth/{seed}/{split}")  # str seeds hash stably (SHA-512)
    seen: set[str] = set()
    names: Counter[str] = Counter()
    tasks = []
    for index in range(n):
        level = levels[index % len(levels)]
        inst = _draw_instance(rng, pools[level], seen, keep_instance or (lambda _key: True))
        seen.add(inst.key)
        base = inst.base_name()
        names[base] += 1
        name = base if names[base] == 1 else f"{base}_v{names[base]}"
        tasks.append(build_task(inst, rng, f"synth/{split}/{index}", name, split))
    return tasks


@functools.cache
def hold_out_templates(seed: int, share: float = 0.2) -> frozenset[str]:
    """About ``share`` of the templates of each level, for ``holdout="template"``.

    A template is held out only if each of its ops still occurs in some kept template, so the
    test split asks for new *compositions* of known ops, never for an op the model never saw.
    """
    rng = random.Random(f"codefalcon.synth/{seed}/holdout")
    every = [ops for length in LEVELS.values() for ops in templates(length)]
    kept = Counter(op.op_id for ops in every for op in ops)
    held: set[str] = set()
    for length in LEVELS.values():
        chains = list(templates(length))
        rng.shuffle(chains)
        quota = math.ceil(share * len(chains))
        for ops in chains:
            if quota == 0:
                break
            uses = Counter(op.op_id for op in ops)
            if all(kept[op_id] > count for op_id, count in uses.items()):
                kept.subtract(uses)
                held.add(template_id(ops))
                quota -= 1
    return frozenset(held)


def generate_splits(
    n_train: int,
    n_test: int,
    seed: int,
    holdout: Holdout = "instance",
    difficulty: Difficulty | Sequence[Difficulty] | None = None,
    share: float = 0.2,
) -> tuple[list[Task], list[Task]]:
    """Train and test tasks that share no instance (``"instance"``) or no template (``"template"``).

    ``share`` of the instances (`held_out_instance`) or of each level's templates
    (`hold_out_templates`) are test-only; the rest are train-only. The partition depends on
    ``seed`` alone, so each split is the same whatever the size of the other.
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be in (0, 1), got {share}")
    if holdout == "instance":
        on_test_side = functools.partial(held_out_instance, seed=seed, share=share)
        test = generate_tasks(n_test, seed, "test", difficulty, keep_instance=on_test_side)
        train = generate_tasks(
            n_train, seed, "train", difficulty, keep_instance=lambda key: not on_test_side(key)
        )
        return train, test
    if holdout == "template":
        held_templates = hold_out_templates(seed, share)
        test = generate_tasks(n_test, seed, "test", difficulty, only_templates=held_templates)
        train = generate_tasks(n_train, seed, "train", difficulty, exclude_templates=held_templates)
        return train, test
    raise ValueError(f"holdout must be 'instance' or 'template', got {holdout!r}")


def _write_jsonl(tasks: Sequence[Task], path: Path) -> None:
    """Fallback writer (one `dataclasses.asdict` row per task) until `tasks.jsonl` exists."""
    from dataclasses import asdict

    with path.open("w", encoding="utf-8") as f:
        for task in tasks:
            f.write(json.dumps(asdict(task)) + "\n")


def synth_main(
    n: int,
    seed: int,
    out: Path,
    test_fraction: float = 0.2,
    holdout: str = "instance",
    form: str = "humaneval",
) -> dict[str, Any]:
    """Generate ``n`` tasks (``test_fraction`` of them held out) and write them to ``out``.

    Both splits go into one JSONL file; each task carries its ``split``. The held-out share of
    the task space (instances or templates, see `generate_splits`) is ``test_fraction``, at
    least 0.1. ``form="mbpp"`` writes every task as MBPP writes its problems (`mbpp_form`).
    Uses `codefalcon.tasks.jsonl.save_tasks_jsonl` when it exists. Returns a summary
    for the CLI to print: path, seed, holdout mode, counts per split and per difficulty.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    if holdout not in ("instance", "template"):
        raise ValueError(f"holdout must be 'instance' or 'template', got {holdout!r}")
    if form not in ("humaneval", "mbpp"):
        raise ValueError(f"form must be 'humaneval' or 'mbpp', got {form!r}")
    mode: Holdout = "instance" if holdout == "instance" else "template"
    n_test = round(n * test_fraction)
    share = max(test_fraction, 0.1)  # as large a part of the task space as of the tasks, but
    # never so small that a level has no held-out instance (there are only ~250 one-op ones)
    train, test = generate_splits(n - n_test, n_test, seed, mode, share=share)
    if form == "mbpp":
        train, test = [mbpp_form(t) for t in train], [mbpp_form(t) for t in test]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        from codefalcon.tasks.jsonl import save_tasks_jsonl
    except ImportError:
        save_tasks_jsonl = _write_jsonl
    save_tasks_jsonl(train + test, out)
    return {
        "out": str(out),
        "seed": seed,
        "holdout": holdout,
        "form": form,
        "n_train": len(train),
        "n_test": len(test),
        "difficulty": {
            "train": dict(Counter(t.difficulty for t in train)),
            "test": dict(Counter(t.difficulty for t in test)),
        },
    }
