"""More red team, by class of attack, beyond test_redteam.py and test_adversarial.py.

Classes covered (each test groups the variants of one class, run as one batch where it can):

- residue in memory: a program's processes must not inherit the worker's freed heap, where the
  previous program's tests (a HumanEval ``check``, with its expected values) and sources lay;
- kernel objects that outlive a program (SysV IPC, POSIX message queues) or hold memory that no
  process maps (memfd): a later program must not see them, the memory limit must not miss them;
- values that lie: ``__eq__``/``__hash__``/``__class__`` overrides, subclasses of float and str,
  NaN, objects whose ``__repr__``/``__len__``/``__iter__``/``__bool__`` raise or never end,
  generators, cycles, huge ints;
- patching the harness from inside: builtins, ``sys.settrace``/``setprofile``, ``atexit``,
  ``gc.callbacks``, signal handlers, threads and forked children that outlive the call, fds 0-2
  closed or redirected, BaseException subclasses, exceptions whose ``__str__`` raises, a program
  that defines ``check``/``candidate``/``AssertionError`` itself;
- stdio tricks: output written after a forged status, carriage returns, partial lines, output from
  an orphan after the program exits;
- exhaustion: C-level loops (regex backtracking, ``pow``, ``math.factorial``), SIGSTOP to itself,
  SIGTERM ignored, thread and fd bombs, a full /tmp; each within its limit, and the next program
  still passes;
- escape: the evaluator's files and data, /proc of the harness, abstract unix sockets;
- other languages: C++ static initializers, destructors and ``#define main``; Java static blocks
  and shutdown hooks; JavaScript ``process.stdout.write``, ``Object.defineProperty`` on
  ``process``, prototype pollution and child processes.

A cheat never passes, never earns an unscored ``infrastructure_error``, and an honest program
beside it still passes.
"""

from __future__ import annotations

import time

import pytest

from codefalcon import tasks
from codefalcon.execution import Executor, ExecutorConfig, Verdict
from codefalcon.execution.languages import find_tools
from support import ADD_ASSERTS, ADD_CALLS, ADD_STDIO, assert_suite, call_suite, stdio_suite

ADD = "def add(a, b):\n    return a + b\n"
STDIO_ADD = "a, b = map(int, input().split())\nprint(a + b)\n"


def _charged(result, name="") -> None:
    """Not passed, no credit, and scored (never an unscored infrastructure error)."""
    assert not result.passed, (name, result)
    assert result.n_passed == 0, (name, result)
    assert result.verdict is not Verdict.INFRASTRUCTURE_ERROR, (name, result)
    assert all(t.verdict is not Verdict.INFRASTRUCTURE_ERROR for t in result.tests), (name, result)


# --------------------------------------------------------------------------- residue in memory

# Reads every readable mapping of its own process and keeps what looks like a HumanEval check
# line; the pattern never matches this source itself (no digits follow the parentheses here).
MEMORY_THIEF = r"""
import ctypes, re
def _heap():
    for line in open('/proc/self/maps').read().splitlines():
        parts = line.split()
        lo, hi = (int(x, 16) for x in parts[0].split('-'))
        if 'r' in parts[1] and hi - lo < 1 << 28 and not (len(parts) > 5 and parts[5].startswith('[v')):
            yield ctypes.string_at(lo, hi - lo)
TABLE, SOURCES = {}, 0
for block in _heap():
    for m in re.finditer(rb'candidate\((\d+), 0\) == (\d+)', block):
        TABLE[int(m.group(1))] = int(m.group(2))
    SOURCES += len(re.findall(rb'SIBLING_MARK' + rb'_\d{6}', block))
def add(a, b):
    return TABLE.get(a, -1)
"""


def _humaneval_like(n: int) -> tasks.TestSuite:
    doc = "    " + "words " * 300  # a realistic prompt: kilobytes, so it lives outside pymalloc
    setup = f'def add(a, b):\n    """Add.\n{doc}\n    """\n\n\ndef check(candidate):\n'
    setup += "".join(f"    assert candidate({i}, 0) == {918273645 + 7 * i}\n" for i in range(n))
    return assert_suite("check(candidate)", setup=setup)


def test_a_program_cannot_read_earlier_tests_or_programs_from_its_own_memory(one_worker):
    suite = _humaneval_like(12)
    honest = "def add(a, b):\n    return 918273645 + 7 * a  # SIBLING_MARK_123456\n" + "#" * 4000 + "\n"
    assert one_worker.run(honest, suite).passed
    for _ in range(3):  # the first thief's own run may leave the next one more to find
        _charged(one_worker.run(MEMORY_THIEF, suite))
    # The same thief in every style: neither tests nor the sibling's source are in its memory.
    report = MEMORY_THIEF + "print(len(TABLE), SOURCES)\n"
    assert one_worker.run(report, stdio_suite(("", "0 0\n"))).passed
    calls = MEMORY_THIEF.replace("return TABLE.get(a, -1)", "return [len(TABLE), SOURCES]")
    assert one_worker.run(calls, call_suite(([0, 0], [0, 0]))).passed


# --------------------------------------------------------------------------- kernel objects

IPC_PROBE = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
calls = {
    'shmget': lambda: libc.shmget(0x5eed, 1 << 20, 0o1666),
    'semget': lambda: libc.semget(0x5eed, 1, 0o1666),
    'msgget': lambda: libc.msgget(0x5eed, 0o1666),
    'mq_open': lambda: libc.syscall(240 if os.uname().machine == 'x86_64' else 180, b'q', 0o100 | 2, 0o666, None),
    'memfd': lambda: libc.syscall(319 if os.uname().machine == 'x86_64' else 279, b'm', 0),
}
got = {name: call() for name, call in calls.items()}
shm = got['shmget']
if shm >= 0:
    addr = libc.shmat(shm, None, 0)
    ctypes.memmove(addr, b'left-for-later', 14)
print(sorted(name for name, r in got.items() if r >= 0))
"""


def test_no_kernel_object_outlives_a_program_or_hides_memory(one_worker):
    # SysV IPC and message queues would live as long as the worker's IPC namespace; a memfd
    # holds memory no process maps. All are refused, so nothing is left and nothing is missed.
    for _ in range(2):
        result = one_worker.run(IPC_PROBE, stdio_suite(("", "[]\n")))
        assert result.passed, result.tests[0]
    # The memory limit sees what a program holds, whichever way it holds it.
    tmpfs = "data = b'x' * (8 << 20)\nfor i in range(40):\n    open(f'/tmp/f{i}', 'wb').write(data)\n"
    assert not one_worker.run(tmpfs, stdio_suite(("", ""))).passed  # /tmp is a small tmpfs
    assert one_worker.run(STDIO_ADD, ADD_STDIO).passed


# --------------------------------------------------------------------------- values that lie

LIARS = {
    "float_subclass_eq": "class F(float):\n    def __eq__(s, o):\n        return True\n"
    "    __hash__ = float.__hash__\ndef add(a, b):\n    return F(0.5)\n",
    "str_subclass_lies": "class S(str):\n    def __eq__(s, o):\n        return True\n"
    "    def __str__(s):\n        return '5'\n    __hash__ = str.__hash__\ndef add(a, b):\n    return S('x')\n",
    "claims_to_be_int": "class C:\n    __class__ = int\n    def __eq__(s, o):\n        return True\n"
    "    __hash__ = object.__hash__\ndef add(a, b):\n    return C()\n",
    "nan": "def add(a, b):\n    return float('nan')\n",
    "nan_in_list": "def add(a, b):\n    return [float('nan')]\n",
    "repr_raises": "class R:\n    def __repr__(s):\n        raise RuntimeError('no')\n"
    "    def __eq__(s, o):\n        return True\ndef add(a, b):\n    return R()\n",
    "repr_never_ends": "class R:\n    def __repr__(s):\n        while True:\n            pass\n"
    "def add(a, b):\n    return R()\n",
    "iter_never_ends": "class L(list):\n    def __iter__(s):\n        while True:\n            yield 5\n"
    "def add(a, b):\n    return L()\n",
    "len_and_bool_lie": "class B:\n    def __len__(s):\n        return 1\n    def __bool__(s):\n        return True\n"
    "    def __eq__(s, o):\n        return True\ndef add(a, b):\n    return B()\n",
    "generator": "def add(a, b):\n    yield a + b\n",
    "cycle": "def add(a, b):\n    x = []\n    x.append(x)\n    return x\n",
    "huge_int": "def add(a, b):\n    return 10 ** 100000\n",
    "huge_list": "def add(a, b):\n    return [a + b] * 5_000_000\n",
    "dict_subclass_items_lie": "class D(dict):\n    def items(s):\n        return [(0, 5)]\n"
    "    def __eq__(s, o):\n        return True\ndef add(a, b):\n    return D()\n",
    "bool_for_int": "def add(a, b):\n    return a + b == a + b\n",
}


@pytest.mark.parametrize("suite", [ADD_CALLS, ADD_ASSERTS], ids=["call", "assert"])
def test_values_that_lie_never_pass(executor, suite):
    jobs = [(program, suite) for program in LIARS.values()] + [(ADD, suite)]
    started = time.monotonic()
    results = executor.run_batch(jobs)
    assert time.monotonic() - started < 40
    for name, result in zip(LIARS, results, strict=False):
        if name == "bool_for_int":  # True == 1 is Python's (and APPS') equality, no more
            assert result.tests[0].verdict is not Verdict.PASSED
            continue
        _charged(result, name)
    assert results[-1].passed


def test_nan_and_tolerance_pass_nothing():
    with Executor(ExecutorConfig(workers=1, cache_size=0, float_tol=1e-6)) as ex:
        suite = call_suite(([1, 2], 0.5), ([1, 2], [0.5, 1.5]), fn_name="f")
        for value in ("float('nan')", "[float('nan')] * 2", "float('inf')"):
            _charged(ex.run(f"def f(a, b):\n    return {value}\n", suite), value)
        stdio = stdio_suite(("", "0.5\n"))
        for out in ("nan", "inf", "0.5e", "0.500001x"):
            _charged(ex.run(f"print({out!r})\n", stdio), out)


# --------------------------------------------------------------------------- patching the harness

PATCHERS = {
    "settrace_and_setprofile": "import sys, threading\nsys.settrace(lambda *a: None)\n"
    "sys.setprofile(lambda *a: None)\nthreading.settrace(lambda *a: None)\ndef add(a, b):\n    return 7\n",
    "atexit_forges": "import atexit, os\natexit.register(lambda: os.write(4, b'\\x00\\x00\\x00\\x02{}'))\n"
    "def add(a, b):\n    raise SystemExit(0)\n",
    "gc_callbacks": "import gc\ngc.callbacks.append(lambda *a: None)\ngc.set_threshold(1)\n"
    "def add(a, b):\n    return 7\n",
    "signal_handlers": "import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM, signal.SIGHUP):\n"
    "    signal.signal(s, signal.SIG_IGN)\nsignal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)\n"
    "def add(a, b):\n    return 7\n",
    "thread_outlives_call": "import os, threading, time, json, struct\n"
    "def spam():\n    body = json.dumps({'ok': True, 'value': 6, 'seq': 1}).encode()\n"
    "    while True:\n        for fd in range(20):\n            try:\n"
    "                os.write(fd, struct.pack('>I', len(body)) + body)\n            except OSError:\n"
    "                pass\n        time.sleep(0.001)\n"
    "threading.Thread(target=spam, daemon=True).start()\ndef add(a, b):\n    return 7\n",
    "forked_child_outlives_call": "import os, time\ndef add(a, b):\n    if os.fork() == 0:\n"
    "        os.setsid()\n        for fd in range(3, 20):\n            try:\n"
    '                os.write(fd, b\'\\x00\\x00\\x00\\x10{"ok": true, "v"}\')\n            except OSError:\n'
    "                pass\n        time.sleep(30)\n    return 7\n",
    "close_and_dup_std_fds": "import os\ndef add(a, b):\n    os.dup2(4, 1)\n    os.dup2(4, 2)\n"
    '    print(\'{"ok": true, "value": 5}\')\n    os.close(0)\n    return 7\n',
    "base_exception_subclass": "class Out(BaseException):\n    pass\ndef add(a, b):\n    raise Out()\n",
    "generator_exit": "def add(a, b):\n    raise GeneratorExit\n",
    "exception_str_raises": "class E(Exception):\n    def __str__(s):\n        raise E()\n"
    "    def __repr__(s):\n        raise E()\ndef add(a, b):\n    raise E()\n",
    "exception_named_assertion": "class AssertionError(Exception):\n    pass\n"
    "def add(a, b):\n    raise AssertionError('fine')\n",
    "defines_check_and_candidate": "def check(c):\n    return True\ncandidate = lambda a, b: a + b + 1\n"
    "def add(a, b):\n    return 7\n",
    "patches_builtins_module": "import builtins\nbuiltins.__dict__['AssertionError'] = KeyError\n"
    "builtins.isinstance = lambda *a: True\nbuiltins.print = lambda *a, **k: None\n"
    "import sys\nsys.exit = lambda *a: None\ndef add(a, b):\n    return 7\n",
    "stops_itself": "import os, signal\ndef add(a, b):\n    os.kill(os.getpid(), signal.SIGSTOP)\n    return a + b\n",
    "keyboard_interrupt_in_repr": "class K:\n    def __repr__(s):\n        raise KeyboardInterrupt\n"
    "def add(a, b):\n    return K()\n",
}


def test_patching_the_harness_from_inside_never_passes(executor):
    suites = {"assert": ADD_ASSERTS, "call": ADD_CALLS, "humaneval": _check_suite()}
    jobs = [(p, s) for p in PATCHERS.values() for s in suites.values()]
    started = time.monotonic()
    results = executor.run_batch([*jobs, (ADD, ADD_ASSERTS), (ADD, ADD_CALLS)])
    assert time.monotonic() - started < 90
    names = [(n, s) for n in PATCHERS for s in suites]
    for name, result in zip(names, results, strict=False):
        _charged(result, name)
    assert results[-1].passed and results[-2].passed


def _check_suite() -> tasks.TestSuite:
    setup = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
    return assert_suite("check(candidate)", setup=setup)


def test_assert_style_gives_no_credit_for_a_program_that_exits_before_the_asserts(executor):
    for program in (
        "import os\nos._exit(0)\n",
        "import sys\nsys.exit(0)\n",
        "import os\ndef add(a, b):\n    os.kill(os.getpid(), 9)\n",
        "import os, signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "def add(a, b):\n    os.kill(os.getppid(), signal.SIGTERM)\n    return 0\n",
    ):
        _charged(executor.run(program, _check_suite()), program)


# --------------------------------------------------------------------------- stdio tricks

STDIO_CHEATS = {
    "forged_status_then_exit": "import os, json, struct\nb = json.dumps({'status': 'ok'}).encode()\n"
    "os.write(3, struct.pack('>I', len(b)) + b)\nos._exit(0)\n",
    "carriage_return_overwrite": "print('4\\r5')\n",
    "partial_line_then_kill": "import os, sys\nsys.stdout.write('5')\nsys.stdout.flush()\n"
    "os.kill(os.getpid(), 9)\n",
    "stdout_closed": "import os\nos.close(1)\nprint(5)\n",
    "dup_status_to_stdout": "import os\nos.dup2(3, 1)\nprint(5)\n",
    "exit_nonzero_after_output": "import sys\nprint(5)\nsys.stdout.flush()\nsys.exit(3)\n",
    "unicode_digit": "print('\\uff15')\n",
    "huge_stderr": "import sys\nsys.stderr.write('x' * (50 << 20))\n",
    "huge_stdout": "import sys\nsys.stdout.write('5\\n' * (4 << 20))\n",
}


def test_stdio_tricks_never_pass(executor):
    suite = stdio_suite(("2 3\n", "5\n"), ("-1 1\n", "0\n"))
    jobs = [(p, suite) for p in STDIO_CHEATS.values()] + [(STDIO_ADD, suite)]
    results = executor.run_batch(jobs)
    for name, result in zip(STDIO_CHEATS, results, strict=False):
        _charged(result, name)
    assert results[-1].passed


# --------------------------------------------------------------------------- exhaustion

EXHAUSTERS = {
    "regex_backtracking": "import re\ndef add(a, b):\n    re.match(r'(a+)+$', 'a' * 40 + 'b')\n",
    "huge_pow": "def add(a, b):\n    return pow(3, 10 ** 12, 10 ** 4000 + 1) if False else 7 ** (10 ** 9)\n",
    "factorial": "import math\ndef add(a, b):\n    return math.factorial(10 ** 8)\n",
    "sleep": "import time\ndef add(a, b):\n    time.sleep(60)\n",
    "sigterm_ignored_loop": "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "def add(a, b):\n    while True:\n        pass\n",
    "thread_bomb": "import threading, time\ndef add(a, b):\n    n = 0\n    while True:\n        try:\n"
    "            threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
    "            n += 1\n        except RuntimeError:\n            time.sleep(0.01)\n",
    "fd_bomb": "import os\ndef add(a, b):\n    fds = []\n    while True:\n        try:\n"
    "            fds.append(os.pipe())\n        except OSError:\n            return len(fds)\n",
    "fill_tmp": "import os\ndef add(a, b):\n    i = 0\n    while True:\n        try:\n"
    "            with open(f'/tmp/fill{i}', 'wb') as f:\n                f.write(b'x' * (8 << 20))\n"
    "        except OSError:\n            return 0\n        i += 1\n",
    "mmap_bomb": "import mmap\ndef add(a, b):\n    m = mmap.mmap(-1, 900 << 20)\n"
    "    for i in range(0, 900 << 20, 4096):\n        m[i] = 1\n    return 0\n",
}


def test_exhaustion_is_bounded_and_the_next_program_passes(executor):
    # Each exhauster is followed by honest programs, which run on the same two workers after it.
    jobs = []
    for program in EXHAUSTERS.values():
        jobs += [(program, ADD_CALLS.head(1)), (ADD, ADD_CALLS), (STDIO_ADD, ADD_STDIO)]
    started = time.monotonic()
    results = executor.run_batch(jobs)
    # One test each within its limit (1.5 s), two workers: far below the limits plus grace.
    assert time.monotonic() - started < len(EXHAUSTERS) * (1.5 + 3.0) / 2 + 10
    for i, name in enumerate(EXHAUSTERS):
        _charged(results[3 * i], name)
        assert results[3 * i + 1].passed and results[3 * i + 2].passed, name


# --------------------------------------------------------------------------- escape


def test_the_evaluators_files_and_harness_are_out_of_reach(one_worker):
    if one_worker.isolation != "bwrap":
        pytest.skip("file-system isolation needs bubblewrap")
    program = (
        "import glob, os, socket\nfound = []\n"
        "for p in ['/etc/passwd', '/etc/shadow', '/root', '/home', '/work', '/proc/1/environ',"
        " '/proc/1/fd/0', '/proc/1/mem', '/proc/self/../1/fd/1', '/sys/fs/cgroup/cgroup.procs']:\n"
        "    try:\n        open(p, 'rb').read(1)\n        found.append(p)\n"
        "    except OSError:\n        pass\n"
        "top = set(os.listdir('/')) - {'bin', 'dev', 'etc', 'lib', 'lib32', 'lib64', 'libx32', 'proc',"
        " 'sbin', 'tmp', 'usr'}\n"
        "found += sorted(top) + glob.glob('/tmp/*')\n"
        "found += [p for p in glob.glob('/etc/*') if p != '/etc/localtime' and not p.startswith('/etc/java-')]\n"
        "env = open('/proc/1/environ', 'rb').read() if os.access('/proc/1/environ', os.R_OK) else b''\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "try:\n    s.connect('\\0codefalcon')\n    found.append('abstract')\nexcept OSError:\n    pass\n"
        "for fam in (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK, socket.AF_PACKET):\n"
        "    try:\n        socket.socket(fam, socket.SOCK_DGRAM if fam != socket.AF_PACKET else socket.SOCK_RAW)\n"
        "        found.append(str(fam))\n    except OSError:\n        pass\n"
        "print(found, len(env))\n"
    )
    result = one_worker.run(program, stdio_suite(("", "[] 0\n")))
    assert result.passed, result.tests[0]


# --------------------------------------------------------------------------- other languages


def _program_suite(language: str, test: str) -> tasks.TestSuite:
    return tasks.TestSuite(tasks.TestStyle.PROGRAM, (tasks.TestCase(code=test),), language=language)


CPP_TEST = "#include <cassert>\nint main() {\n    assert(add(2, 3) == 5);\n    assert(add(-1, 1) == 0);\n}\n"
JAVA_TEST = (
    "public class Main {\n    public static void main(String[] args) {\n"
    "        if (new Solution().add(2, 3) != 5) throw new AssertionError();\n"
    "        if (new Solution().add(-1, 1) != 0) throw new AssertionError();\n    }\n}\n"
)
JS_TEST = "const assert = require('assert');\nassert.strictEqual(add(2, 3), 5);\nassert.strictEqual(add(-1, 1), 0);\n"

LANGUAGE_CHEATS = {
    "cpp": {
        "static_initializer_exit": "#include <cstdlib>\nstruct X { X() { std::exit(0); } } x;\n"
        "int add(int a, int b) { return 0; }\n",
        "destructor_attribute": "#include <unistd.h>\n__attribute__((destructor)) static void d() { _exit(0); }\n"
        "int add(int a, int b) { return 0; }\n",
        "define_main_away": "#define main not_main\nint add(int a, int b) { return 0; }\n",
        "abort": "#include <cstdlib>\nint add(int a, int b) { std::abort(); }\n",
        "atexit_prints_nonce_like": "#include <cstdlib>\n#include <cstdio>\n"
        'static void f() { printf("\\n0123456789abcdef0123456789abcdef"); }\n'
        "struct X { X() { std::atexit(f); } } x;\nint add(int a, int b) { std::exit(0); }\n",
        "constructor_priority_steals_stdin": "#include <unistd.h>\n#include <cstdio>\n"
        "static char b[64]; static int n;\n__attribute__((constructor(101))) static void s() { n = read(0, b, 64); }\n"
        'int add(int a, int b) { printf("\\n%.*s", n > 0 ? n : 0, b); fflush(stdout); _exit(0); }\n',
    },
    "java": {
        "static_block_exit": "class Solution {\n    static { System.exit(0); }\n"
        "    int add(int a, int b) { return 0; }\n}\n",
        "shutdown_hook": "class Solution {\n    static { Runtime.getRuntime().addShutdownHook(new Thread(() ->"
        ' System.out.print("\\n0123456789abcdef0123456789abcdef"))); }\n'
        "    int add(int a, int b) { System.exit(0); return 0; }\n}\n",
        "reflection_on_harness": "class Solution {\n    int add(int a, int b) {\n        try {\n"
        '            java.lang.reflect.Method m = Class.forName("Main").getMethod("main", String[].class);\n'
        "            m.invoke(null, (Object) new String[0]);\n        } catch (Throwable t) {}\n"
        "        System.exit(0); return 0;\n    }\n}\n",
    },
    "js": {
        "stdout_write_override": "process.stdout.write = () => true;\nfunction add(a, b) { process.exit(0); }\n",
        "define_property_exit": "Object.defineProperty(process, 'exitCode', {get: () => 0, set: () => {}});\n"
        "function add(a, b) { throw new Error('x'); }\n",
        "prototype_pollution": "Object.prototype.strictEqual = () => {};\n"
        "try { require('assert').strictEqual = () => {}; } catch (e) {}\nfunction add(a, b) { return 0; }\n",
        "child_process": "const cp = require('child_process');\n"
        "function add(a, b) { try { cp.execSync('echo 5'); } catch (e) {} process.exit(0); }\n",
        "swap_require": "require = () => ({strictEqual() {}, deepStrictEqual() {}});\n"
        "function add(a, b) { return 0; }\n",
        "patch_module_require": "const M = require('module');\n"
        "M.prototype.require = () => ({strictEqual() {}});\nM._load = () => ({strictEqual() {}});\n"
        "function add(a, b) { return 0; }\n",
        "exit_handler_forges": "process.on('exit', () => { process.stdout.write('\\n' + '0'.repeat(32)); });\n"
        "function add(a, b) { return 0; }\n",
    },
}
HONEST = {
    "cpp": "int add(int a, int b) { return a + b; }\n",
    "java": "class Solution {\n    int add(int a, int b) { return a + b; }\n}\n",
    "js": "function add(a, b) { return a + b; }\n",
}
TESTS = {"cpp": CPP_TEST, "java": JAVA_TEST, "js": JS_TEST}


@pytest.mark.parametrize("language", sorted(LANGUAGE_CHEATS))
def test_other_languages_cheats_never_pass(executor, language):
    if len(find_tools()) < 4:
        pytest.skip("needs g++, javac, java and node under /usr")
    suite = _program_suite(language, TESTS[language])
    cheats = LANGUAGE_CHEATS[language]
    results = executor.run_batch([(p, suite) for p in cheats.values()] + [(HONEST[language], suite)])
    for name, result in zip(cheats, results, strict=False):
        _charged(result, name)
    assert results[-1].passed, results[-1]
