"""C++, Java and JavaScript programs: the files, compile and run commands the worker executes.

A ``program``-style test (HumanEval-X) is a test program appended to the candidate program and run
as one process, so the exit status alone cannot tell whether the tests ran: a candidate that
calls ``exit(0)``, ``_exit``, ``quick_exit``, ``System.exit(0)`` or ``process.exit(0)`` before
them would exit 0. So each language gets a small *harness* in its own compilation unit (or module)
that reads a random nonce from stdin before any candidate code runs, runs the tests, and prints
the nonce only after they returned. The worker writes the nonce and checks it; the nonce never
appears in any source file, and the harness keeps it where candidate code cannot name it (a
static of another translation unit, a local of ``Main.main``, a local of another module).

The harness also takes the test's comparison tools out of the candidate's reach: C++ asserts go
through a function of the harness unit (a candidate defining ``__assert_fail`` or a macro cannot
silence them); the Java test lives in its own file with single-type imports, so a candidate's own
``Arrays`` or ``Boolean`` class cannot shadow ``java.util``/``java.lang``; JavaScript runs with
``--frozen-intrinsics`` and the test sees the original ``JSON``, ``Math``, ``Object``... even if
the candidate replaced the globals, and a frozen ``assert`` module through its own ``require``.

What this cannot stop: a candidate written to read its own process's memory for the nonce.
Candidate and test share one process, as in HumanEval-X's own harness.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from typing import Any

TOOLS = {"cpp": ("g++",), "java": ("javac", "java"), "js": ("node",)}

# The JVM reserves far more address space than it uses; these keep it within RLIMIT_AS (1 GiB)
# and fast to start for one short test.
JVM_FLAGS = (
    "-Xmx256m",
    "-Xss4m",
    "-XX:CompressedClassSpaceSize=64m",
    "-XX:ReservedCodeCacheSize=32m",
    "-XX:MaxMetaspaceSize=128m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:CICompilerCount=1",
    "-XX:-UsePerfData",
)


NODE_PATH = "/usr/lib/node_modules:/usr/local/lib/node_modules"
"""Where `npm install -g` puts packages a test may require (HumanEval-X/162 needs js-md5)."""


def find_tools() -> dict[str, str]:
    """Real paths of the compilers and runtimes found under /usr (the sandbox sees only /usr)."""
    found = {}
    for names in TOOLS.values():
        for name in names:
            path = shutil.which(name, path="/usr/bin:/bin")
            real = os.path.realpath(path) if path else ""
            if real.startswith("/usr/"):
                found[name] = real
    return found


def missing_tools(language: str, tools: dict[str, str]) -> list[str]:
    return [t for t in TOOLS.get(language, ()) if t not in tools]


@dataclass(frozen=True)
class ProgramJob:
    """What the worker does for one test: write ``files``, run ``compile``, run ``run``.

    ``artifacts``: files the compile step makes (cached by content in the worker).
    ``program_file``: where the candidate's own lines are, for compile-error line numbers.
    """

    files: dict[str, str]
    compile: tuple[str, ...] | None
    artifacts: tuple[str, ...]
    run: tuple[str, ...]
    program_file: str
    env: tuple[tuple[str, str], ...] = ()

    def message(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "compile": list(self.compile) if self.compile else None,
            "artifacts": list(self.artifacts),
            "run": list(self.run),
            "program_file": self.program_file,
            "env": dict(self.env),
        }


def build_job(language: str, program: str, test: str, tools: dict[str, str]) -> ProgramJob:
    """The job that runs ``test`` against ``program`` in ``language`` (cpp, java or js)."""
    if language == "cpp":
        return _cpp(program, test, tools)
    if language == "java":
        return _java(program, test, tools)
    if language == "js":
        return _js(program, test, tools)
    raise ValueError(f"no program harness for language {language!r}")


# --------------------------------------------------------------------------- C++

_CPP_HARNESS = r"""
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
static char cf_nonce[128];
static long cf_nonce_len = 0;
// Priority 0 and first on the link line: before any constructor of the candidate's unit, so
// the candidate never sees stdin (a pipe: once read, gone).
__attribute__((constructor(0))) static void cf_read_nonce() {
    long got;
    while (cf_nonce_len < (long)sizeof cf_nonce &&
           (got = read(0, cf_nonce + cf_nonce_len, sizeof cf_nonce - cf_nonce_len)) > 0)
        cf_nonce_len += got;
}
extern "C" void cf_assert_fail(const char* expr, int line) {
    fprintf(stderr, "Assertion failed: %s (test line %d)\n", expr, line);
    fflush(stderr);
    _exit(134);
}
int cf_test_main();
int main() {
    cf_test_main();
    fflush(stdout);
    if (write(1, "\n", 1) != 1 || write(1, cf_nonce, cf_nonce_len) != cf_nonce_len) return 3;
    return 0;
}
"""

_CPP_BRIDGE = """
#undef CF_ASSERT
#undef cf_assert_fail
#undef cf_test_main
extern "C" void cf_assert_fail(const char*, int);
#define CF_ASSERT(e) ((e) ? (void)0 : cf_assert_fail(#e, __LINE__))
"""


def _cpp(program: str, test: str, tools: dict[str, str]) -> ProgramJob:
    test = re.sub(r"\bassert\s*\(", "CF_ASSERT(", test)
    test = re.sub(r"\bint\s+main\s*\(\s*(void)?\s*\)", "int cf_test_main()", test, count=1)
    # The test's main may fall off its end; the renamed function must return.
    end = test.rfind("}")
    if end >= 0:
        test = test[:end] + "return 0;\n" + test[end:]
    source = f"{program}\n{_CPP_BRIDGE}\n{test}\n"
    compile_argv = (
        tools.get("g++", "g++"),
        "-std=c++17",
        "-O1",
        "-w",
        "-o",
        "prog",
        "cf_harness.cpp",  # first: its constructor runs before the candidate's of equal priority
        "prog.cpp",
    )
    if "openssl/" in program:  # HumanEval-X's string_to_md5 uses OpenSSL's MD5
        compile_argv += ("-lcrypto",)
    return ProgramJob(
        {"prog.cpp": source, "cf_harness.cpp": _CPP_HARNESS}, compile_argv, ("prog",), ("./prog",), "prog.cpp"
    )


# --------------------------------------------------------------------------- Java

_JAVA_HARNESS = """
public class Main {
    public static void main(String[] args) throws Exception {
        // Read before any candidate class is loaded; kept in this frame only.
        byte[] nonce = java.lang.System.in.readAllBytes();
        CfTestMain.main(args);
        java.lang.System.out.flush();
        java.lang.System.out.write('\\n');
        java.lang.System.out.write(nonce);
        java.lang.System.out.flush();
    }
}
"""

# Simple names a HumanEval-X test uses from the JDK. Single-type imports shadow a class of the
# same name in the candidate's file (same package), which on-demand imports would not.
_JAVA_NAMES = {
    "java.lang": (
        "AssertionError Boolean Byte Character Double Exception Float Integer Long Math Object "
        "RuntimeException Short String StringBuilder System"
    ),
    "java.util": (
        "ArrayDeque ArrayList Arrays Collections Deque HashMap HashSet Iterator LinkedList List Map "
        "Objects Optional PriorityQueue Set Stack TreeMap TreeSet"
    ),
}


def _java(program: str, test: str, tools: dict[str, str]) -> ProgramJob:
    test = re.sub(r"\bpublic\s+class\s+Main\b", "class CfTestMain", test, count=1)
    used = set(re.findall(r"\b[A-Z][A-Za-z]+\b", test))
    ours = [(pkg, name) for pkg, names in _JAVA_NAMES.items() for name in names.split() if name in used]
    imports = [f"import {pkg}.{name};" for pkg, name in ours]
    # The test was written beside the program's imports (e.g. java.security for an exception it
    # declares): keep its on-demand ones, and single-type ones that do not clash with ours.
    for target in re.findall(r"^\s*import\s+(?!static\b)([\w.]+(?:\.\*)?)\s*;", program, flags=re.M):
        if target.endswith(".*") or target.rsplit(".", 1)[-1] not in {name for _pkg, name in ours}:
            imports.append(f"import {target};")
    header = "import java.util.*;\nimport java.util.stream.*;\n" + "\n".join(dict.fromkeys(imports))
    javac, java = tools.get("javac", "javac"), tools.get("java", "java")
    compile_argv = (
        javac,
        *(f"-J{f}" for f in JVM_FLAGS),
        "-nowarn",
        "-d",
        ".",
        "Prog.java",
        "CfTest.java",
        "Main.java",
    )
    return ProgramJob(
        {"Prog.java": program, "CfTest.java": f"{header}\n{test}\n", "Main.java": _JAVA_HARNESS},
        compile_argv,
        ("*.class",),
        (java, *JVM_FLAGS, "-cp", ".", "Main"),
        "Prog.java",
    )


# --------------------------------------------------------------------------- JavaScript

_JS_HARNESS = """'use strict';
const fs = require('fs');
// Read before the candidate's module runs, kept in this module's scope only.
const nonce = fs.readFileSync(0);
const pristine = {};
for (const name of ['JSON', 'Math', 'Object', 'Array', 'Number', 'String', 'Boolean', 'Set', 'Map',
                    'isNaN', 'isFinite', 'parseInt', 'parseFloat', 'Error']) {
  pristine[name] = globalThis[name];
}
// Node's assert module is no intrinsic, so --frozen-intrinsics leaves it writable: a candidate
// could replace assert.strictEqual, or swap `require` (a variable of its module, which the test
// shares) or Module.prototype.require. Frozen here, and handed to the test by its own require.
const judge = require('assert');
Object.freeze(judge);
Object.freeze(judge.strict);
const judges = {assert: judge, 'node:assert': judge, 'assert/strict': judge.strict,
                'node:assert/strict': judge.strict};
pristine.require = (id) => (Object.hasOwn(judges, id) ? judges[id] : require(id));
Object.defineProperty(globalThis, '__cfPristine', {value: Object.freeze(pristine)});
require('./prog.js');
process.stdout.write('\\n');
process.stdout.write(nonce);
"""

# Shadows, inside the test's own block, any global the candidate replaced.
_JS_TEST_PRELUDE = (
    "const {JSON, Math, Object, Array, Number, String, Boolean, Set, Map, isNaN, isFinite, parseInt,"
    " parseFloat, Error, require} = __cfPristine;\n"
    "const __cfAssert = (ok, ...what) => { if (!ok) throw new Error('Assertion failed' +"
    " (what.length ? ': ' + what.join(' ') : '')); };\n"
)


def _js(program: str, test: str, tools: dict[str, str]) -> ProgramJob:
    test = re.sub(r"\bconsole\s*\.\s*assert\s*\(", "__cfAssert(", test)
    source = f"{program}\n{{\n{_JS_TEST_PRELUDE}{test}\n}}\n"
    node = tools.get("node", "node")
    return ProgramJob(
        {"prog.js": source, "cf_main.js": _JS_HARNESS},
        (node, "--check", "prog.js"),
        (),
        (node, "--frozen-intrinsics", "--no-warnings", "--stack-size=4000", "cf_main.js"),
        "prog.js",
        (("NODE_PATH", NODE_PATH),),
    )
