"""Prompts and program extraction for C++, Java and JavaScript tasks, on hand-made answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from codefalcon.models.extract import brace_depth, cut_at_closing_brace, extract_program, select_code_block
from codefalcon.models.prompts import BRACED_STOPS, ExtractMode, PromptFormat, build_prompt, chat_messages
from codefalcon.tasks import Task, load_benchmark, load_humanevalx
from codefalcon.tasks.translate import reference_body


@pytest.fixture(scope="module")
def first(shared_data: Path) -> dict[str, Task]:
    files = {"cpp": "humanevalx_cpp", "java": "humanevalx_java", "js": "humanevalx_js"}
    return {lang: load_humanevalx(shared_data / f"{name}.jsonl.gz")[0] for lang, name in files.items()}


def test_every_reference_body_extracts_to_the_reference(shared_data: Path) -> None:
    # A base model continuing the prompt with the reference body, then a test driver of its own.
    for language in ("cpp", "java", "js"):
        for task in load_benchmark("humanevalx", shared_data, language=language):
            if task.task_id == "CPP/94":  # its reference ends with `#undef NDEBUG`, cut as prose
                continue
            answer = reference_body(task) + "\n\nint main() { return 1; }\npublic class Main {}\n"
            assert extract_program(task, answer, "completion") == task.solutions[0].rstrip() + "\n"


def test_cpp_completion_is_cut_where_the_function_closes(first) -> None:
    task = first["cpp"]
    body = "    string s = \"}{\"; char c = '}'; // }\n    return false;\n}\nint main() {\n  return 0;\n}\n"
    program = extract_program(task, body, "completion")
    assert program == task.prompt + "    string s = \"}{\"; char c = '}'; // }\n    return false;\n}\n"


def test_java_completion_closes_method_then_class(first) -> None:
    task = first["java"]
    assert brace_depth(task.prompt, "java") == 2  # class Solution { ... method {
    body = "        return true;\n    }\n}\n\npublic class Main { public static void main(String[] a) {} }\n"
    assert extract_program(task, body, "completion") == task.prompt + "        return true;\n    }\n}\n"


def test_chat_answer_in_a_cpp_block_gets_the_prompts_includes_and_loses_its_main(first) -> None:
    task = first["cpp"]
    answer = (
        "Here is a solution:\n```python\nprint('not this')\n```\n```cpp\n"
        "bool has_close_elements(vector<float> numbers, float threshold){\n"
        "    for (int i = 0; i < numbers.size(); i++)\n"
        "        for (int j = i + 1; j < numbers.size(); j++)\n"
        "            if (abs(numbers[i] - numbers[j]) < threshold) return true;\n"
        '    return false;\n}\n\nint main() {\n    printf("%d", has_close_elements({1.0}, 0.5));\n}\n```\n'
        "It loops over all pairs."
    )
    program = extract_program(task, answer, "chat")
    assert program.startswith("#include<stdio.h>\n#include<vector>\n#include<math.h>\nusing namespace std;\n")
    assert "bool has_close_elements(vector<float> numbers, float threshold){" in program
    assert "main" not in program and "print(" not in program
    assert program.rstrip().endswith("return false;\n}")


def test_chat_java_method_alone_goes_inside_the_prompts_class(first) -> None:
    task = first["java"]
    method = (
        "public boolean hasCloseElements(List<Double> numbers, double threshold) {\n    return false;\n}\n"
    )
    program = extract_program(task, f"```java\n{method}```", "chat")
    assert program.startswith("import java.util.*;\nimport java.lang.*;\n\nclass Solution {\n")
    assert program.endswith("    return false;\n}\n}\n") and brace_depth(program, "java") == 0


def test_chat_java_whole_class_keeps_imports_and_drops_its_main_class(first) -> None:
    task = first["java"]
    answer = (
        "```java\nclass Solution {\n    public boolean hasCloseElements(List<Double> n, double t) {\n"
        "        return false;\n    }\n}\npublic class Main {\n    public static void main(String[] args) {\n"
        "        System.out.println(1);\n    }\n}\n```"
    )
    program = extract_program(task, answer, "chat")
    assert program.startswith("import java.util.*;\nimport java.lang.*;\nclass Solution {")
    assert "class Main" not in program and program.rstrip().endswith("return false;\n    }\n}")


def test_chat_javascript_block_is_the_program(first) -> None:
    task = first["js"]
    code = "const hasCloseElements = (numbers, threshold) => {\n  return false\n}\n"
    answer = (
        f"```js\nfunction helper() {{}}\n```\n```javascript\n{code}console.log(hasCloseElements([], 1))\n```"
    )
    program = extract_program(task, answer, ExtractMode.CHAT)
    assert program == code + "console.log(hasCloseElements([], 1))\n"  # top-level demo calls are harmless


def test_a_body_with_a_local_named_like_the_function_is_still_a_body(shared_data: Path) -> None:
    task = load_humanevalx(shared_data / "humanevalx_js.jsonl.gz")[106]  # const f = (n) => { let f = 1
    assert task.entry_point == "f"
    assert extract_program(task, reference_body(task), "completion") == task.solutions[0].rstrip() + "\n"


def test_translation_prefix_braces_in_comments_do_not_count(shared_data: Path) -> None:
    task = load_benchmark("translate", shared_data, source="java", target="cpp")[0]
    assert brace_depth(task.completion_prefix, "cpp") == 1  # the Java source's braces are comments
    body = "    return false;\n}\n\n// and a test\n"
    assert extract_program(task, body, "completion") == task.completion_prefix + "    return false;\n}\n"


def test_block_choice_and_cut_helpers() -> None:
    blocks = [("python", "def f(): pass\n"), ("c++", "int g() {}\n"), ("cpp", "int f() { return 1; }\n")]
    assert select_code_block(blocks, "f", "cpp") == "int f() { return 1; }\n"
    assert select_code_block(blocks, "h", "cpp") == "int g() {}\n"
    assert select_code_block([("rust", "fn f() {}\n")], "f", "java") == "fn f() {}\n"
    assert cut_at_closing_brace("x = `}${y}`;\n}\nrest", 1, "js") == "x = `}${y}`;\n}\n"
    assert cut_at_closing_brace("  return 1;\n", 1, "cpp") == "  return 1;\n"  # truncated: kept as is


def test_prompts_name_the_language(first) -> None:
    task = first["cpp"]
    prompt = build_prompt(task, PromptFormat.COMPLETION)
    assert prompt.text == task.prompt and prompt.stop == BRACED_STOPS["cpp"]
    assert prompt.mode is ExtractMode.COMPLETION
    message = chat_messages(first["js"])[0]["content"]
    assert message.startswith("Complete the following JavaScript code.")
    assert "```javascript\n/* Check if in given list" in message
    assert "```java\n" in chat_messages(first["java"])[0]["content"]
