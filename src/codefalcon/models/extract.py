"""Turning a model's raw output into the whole program to run.

What a model returns is rarely a program: a base model continues a function body and then keeps
going; a chat model wraps code in markdown fences between prose, often repeats the whole
function (signature included), adds ``print`` demos and ``assert`` checks, or forgets to close
its fence. `extract_program` undoes all of that the same way for every sample, so the executor
always receives one complete program.

It never invents code to make a program pass. When the output is broken (a truncated body, a
syntax error inside the fence) the broken program is returned as is, so execution reports the
compile error instead of a repaired program earning a better reward than the model did.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterable

from codefalcon.models.decoding import truncate_at_stop
from codefalcon.models.prompts import COMPLETION_STOPS, ExtractMode, completion_stops, function_name
from codefalcon.tasks.reading import parse_python
from codefalcon.tasks.record import Task, TestStyle

END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "</s>", "[DONE]")
"""Chat and few-shot end markers: nothing after one belongs to the answer."""

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n`]*\n(.*?)(?:```|\Z)", re.S)
_PYTHON_TAGS = frozenset({"", "python", "python3", "py", "py3", "pycon"})
_LANGUAGE_TAGS = {
    "python": _PYTHON_TAGS,
    "cpp": frozenset({"", "cpp", "c++", "cc", "cxx", "hpp", "c"}),
    "java": frozenset({"", "java"}),
    "js": frozenset({"", "javascript", "js", "node", "nodejs", "jsx", "mjs"}),
}
# The test program brings its own entry point, so a model's would not compile beside it.
_TEST_ENTRY = {
    "cpp": re.compile(r"^[ \t]*(?:int|void|signed)\s+main\s*\(", re.M),
    "java": re.compile(r"^[ \t]*(?:public\s+)?(?:final\s+)?class\s+Main\b", re.M),
}
_CODE_START = re.compile(r"^(?:def |async def |class |import |from \S+ import |@\w)")
_USAGE_CALLS = frozenset({"print", "input", "exit", "quit"})
_USAGE_ATTRS = frozenset({("sys", "exit"), ("unittest", "main"), ("doctest", "testmod")})
_INDENT = "    "


def extract_program(task: Task, completion: str, mode: ExtractMode | str) -> str:
    """The complete program for ``completion``, a model's output for ``task``.

    ``mode`` says how the output was prompted (`ExtractMode`). For tasks with a
    ``completion_prefix`` (HumanEval), a function body is appended to the prefix, and a repeated
    whole function replaces the prefix's stub: the program is then the prefix's imports and
    helpers followed by the model's code (never prefix + body twice). For function tasks
    (assert or call tests), top-level demo code (``print(f(1))``, ``assert``, ``if __name__``
    blocks, ``input()``) is removed; stdin programs are kept whole.

    >>> from codefalcon.tasks.record import TestSuite, TestStyle
    >>> task = Task("t/0", "", TestSuite(TestStyle.ASSERT, ()), entry_point="inc",
    ...             completion_prefix="def inc(x):\\n")
    >>> extract_program(task, "    return x + 1\\n\\nprint(inc(1))", "completion")
    'def inc(x):\\n    return x + 1\\n'
    >>> extract_program(task, "Sure!\\n```python\\ndef inc(x):\\n    return x+1\\n```", "chat")
    'def inc(x):\\n    return x+1\\n'
    """
    mode = ExtractMode(mode)
    text = cut_at_end_marker(completion)
    if task.tests.language != "python":
        return extract_braced_program(task, text, mode)
    name = function_name(task)
    if mode is ExtractMode.COMPLETION and task.completion_prefix:
        code = truncate_at_stop(text, COMPLETION_STOPS)[0]
        if code.lstrip(" \t").startswith("```"):
            code = ""  # closes a markdown fence at once: the "\n```" stop across the prompt edge
    elif mode is ExtractMode.CHAT:
        code = code_from_chat(text, name)
    else:
        blocks = fenced_blocks(text)
        code = _dedent_block(select_code_block(blocks, name)) if blocks else _without_fence_lines(text)
    program = assemble_program(task, code, name, keep_indent=mode is ExtractMode.COMPLETION)
    if task.tests.style is not TestStyle.STDIO:
        program = remove_top_level_usage(program)
    return program.rstrip() + "\n"


def cut_at_end_marker(text: str) -> str:
    """``text`` before the first chat end marker, without a leading ``[BEGIN]``."""
    text = truncate_at_stop(text, END_MARKERS)[0]
    return text.removeprefix("[BEGIN]").lstrip("\n") if text.startswith("[BEGIN]") else text


def code_from_chat(text: str, name: str | None) -> str:
    """The code in a chat answer: the best fenced block, else the code-looking span of lines."""
    blocks = fenced_blocks(text)
    if blocks:
        return _dedent_block(select_code_block(blocks, name))
    lines = _without_fence_lines(text).splitlines()
    start = next((i for i, line in enumerate(lines) if _looks_like_code(line)), None)
    if start is None:
        return text
    return trim_trailing_prose("\n".join(lines[start:]))


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, contents) of each markdown code fence; an unterminated one runs to the end."""
    return [(tag.lower(), body) for tag, body in _FENCE.findall(text)]


def select_code_block(blocks: list[tuple[str, str]], name: str | None, language: str = "python") -> str:
    """The block to run among ``fenced_blocks``.

    Preference: a Python (or untagged) block defining ``name``; else the first Python block
    that parses; else the first Python block; else the first block of any language. For another
    ``language`` (cpp, java, js): a block of that language (or untagged) that names ``name``,
    else the first block of that language, else the first block.
    """
    if language != "python":
        ours = [body for tag, body in blocks if tag in _LANGUAGE_TAGS[language]]
        naming = [body for body in ours if name and re.search(rf"\b{re.escape(name)}\b", body)]
        return (naming or ours or [body for _, body in blocks])[0]
    python = [body for tag, body in blocks if tag in _PYTHON_TAGS]
    if name:
        defining = [body for body in python if defines_function(_dedent_block(body), name)]
        if defining:
            return defining[0]
    parsing = [body for body in python if _parses(_dedent_block(body))]
    return (parsing or python or [body for _, body in blocks])[0]


def assemble_program(task: Task, code: str, name: str | None, keep_indent: bool = False) -> str:
    """Join the model's code with the task's ``completion_prefix`` (if any).

    - The code defines the entry point: the prefix's context (imports, helpers; see
      `prefix_context`) followed by the code.
    - The code is module-level definitions without the entry point (the model wrote some other
      function): the whole prefix, stub included, followed by the code.
    - Otherwise the code is a function body, appended to the prefix (see `repair_body`).

    ``keep_indent``: the code continues the prefix (completion mode), so a body arrives
    indented and is kept as is when it parses.
    """
    prefix = task.completion_prefix
    if not prefix:
        return code
    if keep_indent and _first_line_indented(code) and _parses(prefix + code):
        return prefix + code  # an indented continuation that parses is the body, whatever it holds
    dedented = textwrap.dedent(code).strip("\n") + "\n"
    if name and defines_function(dedented, name):
        context = prefix_context(prefix, name, _top_level_names(dedented)).strip("\n")
        return f"{context}\n\n\n{dedented}" if context else dedented
    if _is_module_code(dedented):
        return prefix.rstrip("\n") + "\n\n\n" + dedented
    return prefix + repair_body(prefix, code, keep_indent)


def prefix_context(prefix: str, name: str, redefined: frozenset[str] = frozenset()) -> str:
    """The part of ``prefix`` before the ``def name`` stub: imports, constants, helper functions.

    Helpers named in ``redefined`` (the model wrote its own) are left out, so the program does
    not define them twice; the model's version is the one that would run anyway.
    """
    try:
        tree = _parse(prefix)
    except SyntaxError:
        match = re.search(rf"^(?:async\s+)?def\s+{re.escape(name)}\s*\(", prefix, re.M)
        return prefix[: match.start()] if match else ""
    lines = prefix.splitlines(keepends=True)
    stub = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name),
        None,
    )
    if stub is None:
        return ""
    before = [n for n in tree.body if n.lineno < stub.lineno]
    dropped = {
        line
        for node in before
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name in redefined
        for line in _node_lines(node)
    }
    end = _node_lines(stub).start - 1
    return "".join(line for number, line in enumerate(lines[:end], start=1) if number not in dropped)


def repair_body(prefix: str, body: str, keep_indent: bool) -> str:
    """A function body indented so that ``prefix + body`` parses, if some indentation does.

    Tried in order: the body as is (when it continues the prefix), the whole body dedented and
    re-indented one level, and only its first line indented (a chat answer that stripped the
    first line's indentation). If none parses the body is returned unchanged.
    """
    stripped = body.strip("\n")
    if not stripped.strip():
        return body
    reindented = textwrap.indent(textwrap.dedent(stripped), _INDENT) + "\n"
    first, _, rest = stripped.partition("\n")
    first_fixed = _INDENT + first.lstrip() + ("\n" + rest if rest else "") + "\n"
    candidates = [body, reindented, first_fixed] if keep_indent else [reindented, first_fixed, body]
    for candidate in candidates:
        if _parses(prefix + candidate):
            return candidate
    return body


def defines_function(code: str, name: str) -> bool:
    """Whether ``code`` defines ``name`` at top level (by regex when it does not parse)."""
    try:
        tree = _parse(code)
    except SyntaxError:
        return re.search(rf"^(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.M) is not None
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name for node in tree.body
    )


def remove_top_level_usage(program: str) -> str:
    """``program`` without top-level statements that exercise it rather than define it.

    Removed: ``assert`` statements, ``if __name__ == "__main__"`` blocks, and any other
    non-definition statement that calls ``print``, ``input``, ``exit``, ``sys.exit``,
    ``unittest.main``, ``doctest.testmod`` or a function or class the program defines
    (``result = f(3)``, ``for x in xs: print(f(x))``). Kept: imports, definitions, and other
    setup (``sys.setrecursionlimit(...)``, constants). A program that does not parse is
    returned unchanged.
    """
    try:
        tree = _parse(program)
    except SyntaxError:
        return program
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    drop = [node for node in tree.body if _is_usage(node, defined)]
    if not drop:
        return program
    keep_lines = {line for node in tree.body if node not in drop for line in _node_lines(node)}
    drop_lines = {line for node in drop for line in _node_lines(node)} - keep_lines
    lines = program.splitlines(keepends=True)
    kept = [line for number, line in enumerate(lines, start=1) if number not in drop_lines]
    return "".join(kept)


def trim_trailing_prose(code: str) -> str:
    """Drop unindented trailing prose lines while ``code`` fails to parse.

    Stops at the first indented or code-looking line, so a truncated or broken function is
    left broken rather than cut until it happens to parse.
    """
    lines = code.rstrip().splitlines()
    while lines and not _parses("\n".join(lines)):
        last = lines[-1]
        if last.strip() and (last[0].isspace() or _looks_like_code(last)):
            break
        lines.pop()
    return "\n".join(lines) if lines else code


def extract_braced_program(task: Task, text: str, mode: ExtractMode) -> str:
    """`extract_program` for a C++, Java or JavaScript task (``task.tests.language``).

    The code is read as for Python (a continuation cut at the stops, or the best fenced block of
    the language); `assemble_braced_program` joins it with the prefix.
    """
    name = function_name(task)
    if mode is ExtractMode.COMPLETION and task.completion_prefix:
        code = truncate_at_stop(text, completion_stops(task))[0]
        if code.lstrip(" \t").startswith("```"):
            code = ""
    else:
        blocks = fenced_blocks(text)
        block = select_code_block(blocks, name, task.tests.language) if blocks else None
        code = _without_fence_lines(text) if block is None else _dedent_block(block)
    return assemble_braced_program(task, code, name).rstrip() + "\n"


def assemble_braced_program(task: Task, code: str, name: str | None) -> str:
    """Join brace-language code with the task's ``completion_prefix`` and drop its test driver.

    - The code defines the entry point and never closes a brace it did not open (a body does,
      even one with a local named like the function, ``let f = 1`` in JavaScript/106): a whole
      program. C++ keeps the prefix's ``#include`` and
      ``using`` lines it lacks; Java keeps the prefix's imports, and when the code is the method
      alone (no ``class Solution``), the prefix's head up to the signature goes first and the
      class is closed after it (only if the method itself is balanced).
    - Otherwise it is the body: appended to the prefix and cut at the brace that closes what
      the prefix opened (`cut_at_closing_brace`), so what a base model writes after the
      function is not part of the program.

    Then a C++ ``main`` or a Java ``class Main`` of the model's is removed: the test program
    defines its own.
    """
    prefix, language = task.completion_prefix, task.tests.language
    if not prefix:
        program = code
    elif name and defines_braced_function(code, name, language) and not _closes_unopened(code, language):
        program = _whole_braced_program(prefix, code, name, language)
    else:
        program = prefix + cut_at_closing_brace(code, brace_depth(prefix, language), language)
    return remove_test_entry(program, language)


def defines_braced_function(code: str, name: str, language: str) -> bool:
    """Whether ``code`` declares ``name`` with a body (``f(...) {``, ``const f = ``, ``function f(``)."""
    word = re.escape(name)
    if language == "js":
        pattern = rf"(?:\b(?:const|let|var)\s+{word}\s*=|\bfunction\s+{word}\s*\()"
    else:
        pattern = rf"\b{word}\s*\([^;{{}}]*\)[^;{{}}]*\{{"
    return re.search(pattern, code) is not None


def brace_depth(code: str, language: str) -> int:
    """Braces opened and not closed in ``code``, outside comments, strings and char literals."""
    return sum(1 if brace == "{" else -1 for _, brace in _braces(code, language))


def cut_at_closing_brace(code: str, depth: int, language: str) -> str:
    """``code`` up to the brace that brings ``depth`` open braces to zero (all of it if none does).

    >>> cut_at_closing_brace("  return x;\n}\nint main() {}\n", 1, "cpp")
    '  return x;\n}\n'
    """
    if depth <= 0:
        return code
    for index, brace in _braces(code, language):
        depth += 1 if brace == "{" else -1
        if depth == 0:
            return code[: index + 1] + "\n"
    return code


def remove_test_entry(program: str, language: str) -> str:
    """``program`` without a C++ ``main`` function or a Java ``class Main`` (others unchanged)."""
    pattern = _TEST_ENTRY.get(language)
    match = pattern.search(program) if pattern else None
    if match is None:
        return program
    opening = program.find("{", match.end())
    if opening < 0:
        return program
    rest = cut_at_closing_brace(program[opening + 1 :], 1, language)
    if not rest.endswith("}\n"):
        return program  # unterminated: left to fail as the model wrote it
    return program[: match.start()] + program[opening + 1 + len(rest) :]


def _closes_unopened(code: str, language: str) -> bool:
    depth = 0
    for _, brace in _braces(code, language):
        depth += 1 if brace == "{" else -1
        if depth < 0:
            return True
    return False


def _whole_braced_program(prefix: str, code: str, name: str, language: str) -> str:
    if language == "cpp":
        kept = [line for line in prefix.splitlines() if line.startswith(("#include", "using namespace"))]
        missing = [line + "\n" for line in kept if line not in code]
        return "".join(missing) + code
    if language == "java":
        if re.search(r"\bclass\s+Solution\b", code):
            imports = [line for line in prefix.splitlines() if line.startswith("import ")]
            return "".join(line + "\n" for line in imports if line not in code) + code
        signature = list(re.finditer(rf"^.*\b{re.escape(name)}\s*\(", prefix, re.M))
        if signature and brace_depth(code, language) == 0:
            head = prefix[: signature[-1].start()]
            return head + code.rstrip() + "\n" + "}\n" * brace_depth(head, language)
    return code


def _braces(code: str, language: str) -> Iterable[tuple[int, str]]:
    """(index, brace) of each ``{`` and ``}`` outside comments and string or char literals.

    JavaScript template literals are skipped whole (a ``${}`` inside one is not counted).
    """
    quotes = "\"'`" if language == "js" else "\"'"
    index, size = 0, len(code)
    while index < size:
        char = code[index]
        if code.startswith("//", index):
            end = code.find("\n", index)
            index = size if end < 0 else end
        elif code.startswith("/*", index):
            end = code.find("*/", index + 2)
            index = size if end < 0 else end + 2
        elif char in quotes:
            index = _string_end(code, index, char)
        else:
            if char in "{}":
                yield index, char
            index += 1


def _string_end(code: str, start: int, quote: str) -> int:
    """Index after the literal opened at ``start``; ``'`` and ``"`` literals end at a line's end."""
    index = start + 1
    while index < len(code):
        char = code[index]
        if char == "\\":
            index += 2
            continue
        if char == quote:
            return index + 1
        if char == "\n" and quote != "`":
            return index
        index += 1
    return index


def _looks_like_code(line: str) -> bool:
    """Whether one line reads as Python: a definition or import, a complete statement, or a
    block header (``for x in xs:``). Prose such as "Here is the code:" does not parse."""
    stripped = line.strip()
    if not stripped:
        return False
    if _CODE_START.match(stripped) or _parses(stripped):
        return True
    return stripped.endswith(":") and _parses(stripped + "\n    pass")


def _top_level_names(code: str) -> frozenset[str]:
    """Functions and classes ``code`` defines at top level (by regex when it does not parse)."""
    try:
        tree = _parse(code)
    except SyntaxError:
        return frozenset(re.findall(r"^(?:async\s+def|def|class)\s+(\w+)", code, re.M))
    kinds = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    return frozenset(node.name for node in tree.body if isinstance(node, kinds))


def _is_module_code(code: str) -> bool:
    """Top-level definitions rather than a function body: it parses, defines a function or
    class at top level, and has no top-level ``return`` (which only a body can have)."""
    try:
        tree = _parse(code)
    except SyntaxError:
        return False
    kinds = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    has_definition = any(isinstance(node, kinds) for node in tree.body)
    returns = any(isinstance(node, ast.Return) for node in tree.body)
    return has_definition and not returns


def _is_usage(node: ast.stmt, defined: set[str]) -> bool:
    """A top-level statement that runs the program's code instead of defining it."""
    definitions = (
        ast.Import,
        ast.ImportFrom,
        ast.FunctionDef,
        ast.AsyncFunctionDef,
        ast.ClassDef,
    )
    if isinstance(node, definitions):
        return False
    if isinstance(node, ast.Assert) or _is_main_guard(node):
        return True
    return any(_is_usage_call(call, defined) for call in _calls(ast.walk(node)))


def _is_usage_call(call: ast.Call, defined: set[str]) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in _USAGE_CALLS or func.id in defined
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return (func.value.id, func.attr) in _USAGE_ATTRS
    return False


def _is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    names = [n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)]
    return "__name__" in names


def _calls(nodes: Iterable[ast.AST]) -> Iterable[ast.Call]:
    return (node for node in nodes if isinstance(node, ast.Call))


def _node_lines(node: ast.stmt) -> range:
    """1-based source lines of a top-level statement, decorators included."""
    decorators = getattr(node, "decorator_list", [])
    first = min([node.lineno] + [d.lineno for d in decorators])
    return range(first, (node.end_lineno or node.lineno) + 1)


def _first_line_indented(code: str) -> bool:
    first = next((line for line in code.splitlines() if line.strip()), "")
    return first[:1] in (" ", "\t")


def _without_fence_lines(text: str) -> str:
    """``text`` without stray fence lines (a lone ```` ``` ```` that opens or closes nothing)."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("```"))


def _dedent_block(code: str) -> str:
    """A fenced block's code without common indentation (blocks inside list items are indented)."""
    return textwrap.dedent(code).strip("\n") + "\n"


def _parse(code: str) -> ast.Module:
    """``ast.parse`` without the invalid-escape warnings (``"\\w"``) model code is full of
    (a DeprecationWarning up to Python 3.11, a SyntaxWarning from 3.12).

    Raises SyntaxError (also for null bytes, which ast reports as ValueError).
    """
    try:
        return parse_python(code)
    except ValueError as error:
        raise SyntaxError(str(error)) from None


def _parses(code: str) -> bool:
    try:
        _parse(code)
    except SyntaxError:
        return False
    return True
