"""Reward hacking must not pay, and hostile programs must not hurt the host or each other.

Each program below tries to pass tests it does not solve, or to damage its surroundings. The
task they attack: ``add(a, b)`` must return ``a + b``.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from codefalcon.execution import Executor, ExecutorConfig, Verdict
from support import ADD_ASSERTS, ADD_CALLS, ADD_STDIO, assert_suite

ADD = "def add(a, b):\n    return a + b\n"

CHEATS = {
    "exit_at_import": "exit(0)\ndef add(a, b):\n    return 0\n",
    "sys_exit_in_call": "import sys\ndef add(a, b):\n    sys.exit(0)\n",
    "os_exit_in_call": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "raise_systemexit": "def add(a, b):\n    raise SystemExit\n",
    "keyboard_interrupt": "def add(a, b):\n    raise KeyboardInterrupt\n",
    "always_equal": (
        "class Yes:\n    def __eq__(self, other):\n        return True\n"
        "    __ne__ = lambda self, other: False\n    __hash__ = lambda self: 0\n"
        "def add(a, b):\n    return Yes()\n"
    ),
    "int_subclass_eq": (
        "class I(int):\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return I(0)\n"
    ),
    "list_subclass_eq": (
        "class L(list):\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return L()\n"
    ),
    "patch_builtins": (
        "import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.isinstance = lambda *a: True\n"
        "builtins.AssertionError = type('Nope', (Exception,), {})\n"
        "def add(a, b):\n    return 0\n"
    ),
    "patch_operator_module": (
        "import operator\noperator.eq = lambda a, b: True\ndef add(a, b):\n    return 0\n"
    ),
    "swallow_assertions": (
        "import sys\nsys.excepthook = lambda *a: None\n"
        "def add(a, b):\n    try:\n        raise AssertionError\n    except AssertionError:\n"
        "        return None\n"
    ),
    "read_caller_frames": (
        "import sys, inspect\n"
        "def add(a, b):\n"
        "    for f in inspect.stack():\n"
        "        for v in list(f.frame.f_locals.values()) + list(f.frame.f_globals.values()):\n"
        "            if isinstance(v, str) and '==' in v:\n"
        "                return int(v.split('==')[1].split()[0])\n"
        "    return -999\n"
    ),
    "read_gc_objects": (
        "import gc, re\n"
        "def add(a, b):\n"
        "    for o in gc.get_objects():\n"
        "        for v in (o.values() if isinstance(o, dict) else o if isinstance(o, list) else []):\n"
        "            if isinstance(v, str) and 'assert' in v and f'({a}, {b})' in v:\n"
        "                return int(re.findall(r'== (-?\\d+)', v)[0])\n"
        "    return -999\n"
    ),
    "settrace_skip": ("import sys\nsys.settrace(lambda *a: None)\ndef add(a, b):\n    return 0\n"),
    "write_fake_results_to_fds": (
        "import os, json, struct\n"
        "def add(a, b):\n"
        "    msg = json.dumps({'status': 'passed', 'ok': True, 'value': a + 1}).encode()\n"
        "    for fd in range(0, 20):\n"
        "        try:\n            os.write(fd, struct.pack('>I', len(msg)) + msg)\n"
        "        except OSError:\n            pass\n"
        "    return 0\n"
    ),
    "kill_parent": "import os, signal\ndef add(a, b):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return 0\n",
    "kill_everyone": "import os, signal\ndef add(a, b):\n    os.kill(-1, signal.SIGKILL)\n    return 0\n",
    "corrupt_json_module": (
        "import json\n_orig = json.dumps\n"
        "json.dumps = lambda o, **k: _orig({**o, 'value': 5} if isinstance(o, dict) else o, **k)\n"
        "def add(a, b):\n    return 0\n"
    ),
}


@pytest.mark.parametrize("name", sorted(CHEATS))
@pytest.mark.parametrize("suite", [ADD_ASSERTS, ADD_CALLS], ids=["assert", "call"])
def test_cheat_never_passes(executor, name, suite):
    result = executor.run(CHEATS[name], suite)
    assert not result.passed, (name, result)
    assert result.n_passed < 2, (name, result)
    assert result.verdict is not Verdict.INFRASTRUCTURE_ERROR, (name, result)


def test_corrupt_json_cannot_forge_a_correct_value_for_every_test(executor):
    # It may forge 5 (right for the first test) but that is just returning 5: the second fails.
    result = executor.run(CHEATS["corrupt_json_module"], ADD_CALLS)
    assert [t.verdict for t in result.tests][1] is not Verdict.PASSED


def test_executor_still_works_after_cheats(executor):
    assert executor.run(ADD, ADD_ASSERTS).passed
    assert executor.run(ADD, ADD_CALLS).passed


def test_stdio_exit_after_correct_output_is_a_pass_but_fixed_output_is_not(executor):
    # Scripts may end with exit(); what counts is what they printed.
    honest = "import sys\na, b = map(int, input().split())\nprint(a + b)\nsys.stdout.flush()\nsys.exit(0)\n"
    assert executor.run(honest, ADD_STDIO).passed
    fixed = "print(5)\n"
    assert executor.run(fixed, ADD_STDIO).verdict is Verdict.WRONG_ANSWER
    early = "import os\nos._exit(0)\n"
    assert executor.run(early, ADD_STDIO).verdict is Verdict.WRONG_ANSWER


def test_reading_tests_from_disk_finds_nothing(executor, tmp_path):
    secret = tmp_path / "tests.txt"
    secret.write_text("5\n")
    program = f"print(open({str(secret)!r}).read(), end='')\n"
    result = executor.run(program, ADD_STDIO)
    assert result.tests[0].verdict is Verdict.RUNTIME_ERROR
    assert result.tests[0].error_type in ("FileNotFoundError", "PermissionError")


def test_writes_outside_scratch_do_not_reach_the_host(executor, tmp_path):
    target = tmp_path / "pwned.txt"
    program = (
        "import os\n"
        f"for p in ({str(target)!r}, '/tmp/codefalcon-pwned', '/usr/pwned', os.path.expanduser('~/pwned')):\n"
        "    try:\n        open(p, 'w').write('x')\n    except OSError:\n        pass\n"
        "open('local.txt', 'w').write('scratch is writable')\n"
        "print(open('local.txt').read())\n"
    )
    result = executor.run(program, assert_suite("assert True"))
    assert result.verdict is not Verdict.INFRASTRUCTURE_ERROR
    assert not target.exists()
    assert not os.path.exists("/tmp/codefalcon-pwned")
    stdio = executor.run(program, ADD_STDIO.head(1))
    assert stdio.tests[0].actual == "scratch is writable\n"


def test_network_is_unreachable_even_on_loopback(executor):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    program = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'x')\nprint('connected')\n"
    result = executor.run(program, ADD_STDIO.head(1))
    t.join()
    server.close()
    assert result.tests[0].verdict is Verdict.RUNTIME_ERROR
    assert result.tests[0].error_type in (
        "ConnectionRefusedError",
        "OSError",
        "PermissionError",
        "TimeoutError",
    )
    assert not accepted


def _processes_matching(needle: bytes) -> int:
    found = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                found += needle in f.read()
        except OSError:
            pass
    return found


def _count_processes() -> int:
    # Processes that run the sandbox's own python (bombs fork copies of it).
    return _processes_matching(b"cf_values")


def test_fork_bomb_is_contained_and_cleaned_up(executor):
    before = _count_processes()
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    started = time.monotonic()
    result = executor.run(bomb, ADD_STDIO.head(1))
    assert result.verdict in (
        Verdict.TIMEOUT,
        Verdict.RUNTIME_ERROR,
        Verdict.WRONG_ANSWER,
        Verdict.MEMORY_EXCEEDED,
    )
    assert time.monotonic() - started < 15
    time.sleep(0.5)
    assert _count_processes() <= before + 2  # no leftover bomb processes on the host
    assert executor.run(ADD, ADD_CALLS).passed


def test_background_process_does_not_outlive_its_program(executor):
    program = (
        "import subprocess, sys\n"
        "subprocess.Popen(['/bin/sleep', '31.4159'], start_new_session=True)\n"
        "def add(a, b):\n    return a + b\n"
    )
    assert executor.run(program, ADD_CALLS).passed
    time.sleep(0.2)
    assert _processes_matching(b"31.4159") == 0


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("CODEFALCON_TEST_SECRET_KEY", "hunter2")
    program = "import os\nprint(sorted(k for k in os.environ if 'SECRET' in k or 'KEY' in k))\n"
    with Executor(ExecutorConfig(workers=1, cache_size=0)) as ex:
        result = ex.run(program, ADD_STDIO.head(1))
    assert result.tests[0].actual == "[]\n"
