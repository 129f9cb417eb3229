"""A red team against the sandbox: forge verdicts, steal tests, escape penalties, crash the judge.

Each class of attack from issue 11 is tried the way a program that wants the reward would try
it, with every variant we could think of in one program (every pid, every fd, every channel):
a cheat must never pass, never earn an unscored ``infrastructure_error``, never crash the batch,
and never change what a later program on the same worker sees.
"""

from __future__ import annotations

import time

import pytest

from codefalcon.execution import Executor, ExecutorConfig, Verdict
from codefalcon.execution.values import decode
from support import ADD_STDIO, assert_suite, call_suite, stdio_suite

SECRET = 918273645  # an expected value no program can guess: only a stolen test reveals it
SECRET_ASSERTS = assert_suite(f"assert add(0, 0) == {SECRET}", f"assert candidate(1, 1) == {SECRET}")
SECRET_CALLS = call_suite(([0, 0], SECRET), ([1, 1], SECRET))

# Helpers every attack below starts with: the protocol's framing and a raw syscall.
PRELUDE = """
import ctypes, json, os, signal, struct
libc = ctypes.CDLL(None, use_errno=True)
def frame(obj):
    data = json.dumps(obj).encode()
    return struct.pack('>I', len(data)) + data
def pids():
    return [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]
def spray(fd):
    for m in FORGED:
        try:
            os.write(fd, m)
        except OSError:
            pass
FORGED = [frame(m) for m in (
    {'status': 'passed'}, {'ok': True}, {'status': 'returned', 'value': SECRET},
    {'ok': True, 'value': SECRET, 'seq': 1}, {'status': 'harness_error'},
)]
""".replace("SECRET", str(SECRET))


def _charged(result) -> None:
    """A cheat's result: not passed, and scored (never an unscored infrastructure error)."""
    assert not result.passed, result
    assert result.n_passed == 0, result
    assert result.verdict is not Verdict.INFRASTRUCTURE_ERROR, result
    assert all(t.verdict is not Verdict.INFRASTRUCTURE_ERROR for t in result.tests), result


# --------------------------------------------------------------------------- forged verdicts

FORGERS = {
    "pidfd_getfd_every_pid": PRELUDE
    + """
def add(a, b):
    for pid in pids() + [1]:
        pidfd = libc.syscall(434, pid, 0)
        for fd in range(0, 12):
            got = libc.syscall(438, pidfd, fd, 0) if pidfd >= 0 else -1
            if got >= 0:
                spray(got)
    os.kill(1, signal.SIGKILL)
    return 0
""",
    "proc_fd_of_every_pid": PRELUDE
    + """
def add(a, b):
    for pid in pids() + [1]:
        try:
            fds = os.listdir(f'/proc/{pid}/fd')
        except OSError:
            continue
        for fd in fds:
            try:
                spray(os.open(f'/proc/{pid}/fd/{fd}', os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                continue
    return 0
""",
    "ptrace_and_process_vm": PRELUDE
    + """
def add(a, b):
    for pid in pids() + [1]:
        assert libc.ptrace(16, pid, 0, 0) == -1  # PTRACE_ATTACH
        buf = ctypes.create_string_buffer(64)
        iov = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 64)
        assert libc.syscall(311, pid, iov, 1, iov, 1, 0) == -1  # process_vm_writev
    return 0
""",
    "write_forged_frames_to_every_own_fd": PRELUDE
    + """
def add(a, b):
    for fd in range(0, 64):
        spray(fd)
    return 0
""",
    "proc_mem_of_every_pid": PRELUDE
    + """
def add(a, b):
    for pid in pids() + [1]:
        try:
            with open(f'/proc/{pid}/mem', 'r+b', buffering=0) as f:
                f.seek(0x400000)
                f.write(b'x')
        except (OSError, ValueError, OverflowError):
            pass
    return 0
""",
}


@pytest.mark.parametrize("name", sorted(FORGERS))
@pytest.mark.parametrize("suite", [SECRET_ASSERTS, SECRET_CALLS], ids=["assert", "call"])
def test_forged_verdicts_never_pass(executor, name, suite):
    _charged(executor.run(FORGERS[name], suite))


def test_stdio_program_forging_its_status_pipe_is_charged(executor):
    # fd 3 of a stdio program is its own status pipe: whatever it writes there is its word only.
    for status in ("harness_error", "infrastructure_error", "passed"):
        program = PRELUDE + f"os.write(3, frame({{'status': {status!r}}}))\nos._exit(0)\n"
        _charged(executor.run(program, ADD_STDIO))
    flood = PRELUDE + "while True:\n    os.write(3, b'x' * 65536)\n"
    started = time.monotonic()
    _charged(executor.run(flood, ADD_STDIO))
    assert time.monotonic() - started < 10


# --------------------------------------------------------------------------- stolen tests

STEALER = PRELUDE + (
    """
import glob, re
WANT = re.compile(rb'9182736' + rb'45')  # never the literal itself, which is in this source
def search():
    seen = b''
    for pid in pids() + [1]:
        for name in ('cmdline', 'environ'):
            try:
                seen += open(f'/proc/{pid}/{name}', 'rb').read()
            except OSError:
                pass
        try:
            maps = open(f'/proc/{pid}/maps').read().splitlines()
            mem = open(f'/proc/{pid}/mem', 'rb', buffering=0)
            for line in maps:
                lo, hi = (int(x, 16) for x in line.split()[0].split('-'))
                if hi - lo < 1 << 24:
                    try:
                        mem.seek(lo)
                        seen += mem.read(hi - lo)
                    except (OSError, ValueError, OverflowError):
                        pass
        except OSError:
            pass
        pidfd = libc.syscall(434, pid, 0)
        for fd in range(0, 12):
            got = libc.syscall(438, pidfd, fd, 0) if pidfd >= 0 else -1
            if got < 0:
                try:
                    got = os.open(f'/proc/{pid}/fd/{fd}', os.O_RDONLY | os.O_NONBLOCK)
                except OSError:
                    continue
            r, w = os.pipe()
            libc.tee(got, w, 1 << 20, 2)  # SPLICE_F_NONBLOCK: peek without consuming
            os.set_blocking(r, False)
            try:
                seen += os.read(r, 1 << 20)
            except OSError:
                pass
    for path in glob.glob('/tmp/**', recursive=True):
        try:
            seen += open(path, 'rb').read()
        except OSError:
            pass
    found = WANT.search(seen)
    return int(found.group()) if found else -1
def add(a, b):
    return search()
"""
)


@pytest.mark.parametrize("suite", [SECRET_ASSERTS, SECRET_CALLS], ids=["assert", "call"])
def test_tests_cannot_be_stolen(executor, suite):
    result = executor.run(STEALER, suite)
    _charged(result)
    assert str(SECRET) not in (result.tests[0].actual or ""), result


def test_evaluator_environment_is_unreadable(monkeypatch):
    monkeypatch.setenv("CODEFALCON_REDTEAM_TOKEN", "sk-live-123456789")
    program = (
        "import os\nout = []\n"
        "for p in [x for x in os.listdir('/proc') if x.isdigit()]:\n"
        "    try:\n        out.append(open(f'/proc/{p}/environ', 'rb').read())\n"
        "    except OSError:\n        pass\n"
        "print(b'sk-live' in b''.join(out), sorted(os.environ))\n"
    )
    with Executor(ExecutorConfig(workers=1, cache_size=0)) as ex:
        result = ex.run(program, ADD_STDIO.head(1))
    assert result.tests[0].actual.startswith("False"), result


# --------------------------------------------------------------------------- unscored on demand

ESCAPES = {
    "kill_every_other_process": "import os, signal\ndef add(a, b):\n"
    "    for p in [int(x) for x in os.listdir('/proc') if x.isdigit()]:\n"
    "        if p != os.getpid():\n            try:\n                os.kill(p, signal.SIGKILL)\n"
    "            except OSError:\n                pass\n    return 0\n",
    "stop_every_other_process": "import os, signal\ndef add(a, b):\n"
    "    for p in [int(x) for x in os.listdir('/proc') if x.isdigit()]:\n"
    "        if p != os.getpid():\n            try:\n                os.kill(p, signal.SIGSTOP)\n"
    "            except OSError:\n                pass\n    return 0\n",
    "garbage_on_the_harness_fds": "import os\ndef add(a, b):\n"
    "    for fd in (3, 4, 5):\n        try:\n            os.write(fd, b'\\xff' * 100)\n"
    "        except OSError:\n            pass\n    return 0\n",
    "huge_frame_on_the_reply_pipe": "import os, struct\ndef add(a, b):\n"
    "    os.write(4, struct.pack('>I', 2**31) + b'{')\n    return 0\n",
    "close_the_harness_fds": "import os\ndef add(a, b):\n    os.closerange(0, 64)\n    return 0\n",
    "exhaust_process_slots_in_background": "import os, threading, time\n"
    "def bomb():\n    while True:\n        try:\n            if os.fork() == 0:\n                time.sleep(60)\n"
    "        except OSError:\n            time.sleep(0.01)\n"
    "threading.Thread(target=bomb, daemon=True).start()\ntime.sleep(0.2)\n"
    "def add(a, b):\n    return 0\n",
    "kill_everyone": "import os, signal\ndef add(a, b):\n    os.kill(-1, signal.SIGKILL)\n    return 0\n",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
@pytest.mark.parametrize("suite", [SECRET_ASSERTS, SECRET_CALLS], ids=["assert", "call"])
def test_harness_failures_a_program_causes_are_charged_to_it(executor, name, suite):
    started = time.monotonic()
    _charged(executor.run(ESCAPES[name], suite))
    # Every test within its limit (1.5 s here) plus scheduling slack, never a harness's long wait.
    assert time.monotonic() - started < 2 * (1.5 + 3.0 + 3.0), name


def test_stopping_the_worker_costs_no_more_than_the_time_limit(executor):
    program = "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\nos.kill(1, signal.SIGSTOP)\n"
    program += "def add(a, b):\n    return a + b\n"
    started = time.monotonic()
    result = executor.run(program, SECRET_CALLS.head(1))
    assert time.monotonic() - started < 1.5 + 3.0 + 2.0
    assert result.verdict is not Verdict.INFRASTRUCTURE_ERROR


# --------------------------------------------------------------------------- crashing the judge


def _raw_reply(obj: str) -> str:
    """A call-style program that answers the harness with a raw reply of its own making."""
    return PRELUDE + f"def add(a, b):\n    os.write(4, frame({obj}))\n    os._exit(0)\n"


JUDGE_CRASHERS = {
    "decimal_snan": "import decimal\ndef add(a, b):\n    return decimal.Decimal('sNaN')\n",
    "decimal_huge_exponent": "import decimal\ndef add(a, b):\n    return decimal.Decimal('1e10000000')\n",
    "fraction_zero_denominator": _raw_reply("{'ok': True, 'seq': 1, 'value': {'$': 'fraction', 'v': '1/0'}}"),
    "fraction_huge_exponent": _raw_reply(
        "{'ok': True, 'seq': 1, 'value': {'$': 'fraction', 'v': '1e10000000'}}"
    ),
    "unhashable_error_type": _raw_reply("{'ok': False, 'seq': 1, 'error': {'type': [1, 2], 'message': {}}}"),
    "huge_error_type": "def add(a, b):\n    raise type('E' * (24 << 20), (Exception,), {})()\n",
    "deeply_nested_value": PRELUDE + 'def add(a, b):\n    body = b\'{"ok": true, "seq": 1, "value": \' + '
    "b'[' * 200000 + b']' * 200000 + b'}'\n    os.write(4, struct.pack('>I', len(body)) + body)\n    os._exit(0)\n",
    "unknown_tags": _raw_reply("{'ok': True, 'seq': 1, 'value': {'$': 'type', 'v': 'os'}}"),
    "value_of_wrong_shape": _raw_reply("{'ok': True, 'seq': 1, 'value': {'$': 'complex', 'v': 'xy'}}"),
    "non_object_reply": PRELUDE
    + "def add(a, b):\n    os.write(4, struct.pack('>I', 2) + b'[]')\n    os._exit(0)\n",
}


@pytest.mark.parametrize("name", sorted(JUDGE_CRASHERS))
def test_hostile_values_fail_their_sample_not_the_batch(executor, name):
    gold = "def add(a, b):\n    return 918273645\n"
    started = time.monotonic()
    results = executor.run_batch([(JUDGE_CRASHERS[name], SECRET_CALLS), (gold, SECRET_CALLS)])
    assert time.monotonic() - started < 12, name
    _charged(results[0])
    assert results[1].passed
    for t in results[0].tests:
        assert len(t.error_type or "") <= 300 and len(t.message or "") <= 400


def test_stdio_program_cannot_send_a_non_string_stdout(executor):
    program = PRELUDE + "os.write(3, frame({'status': 'ok', 'stdout': 5, 'value': [1]}))\nos._exit(0)\n"
    _charged(executor.run(program, stdio_suite(("", "5\n"))))


def test_decoder_refuses_values_that_would_stall_or_raise():
    for bad in (
        {"$": "decimal", "v": "sNaN"},
        {"$": "fraction", "v": "1/0"},
        {"$": "fraction", "v": "1e10000000"},
        {"$": "decimal", "v": "1" * 5000},
        {"$": "type", "v": "os"},
    ):
        with pytest.raises(ValueError):
            decode(bad)


# --------------------------------------------------------------------------- state between programs


def test_nothing_a_program_leaves_reaches_the_next_one(one_worker):
    if one_worker.isolation != "bwrap":
        pytest.skip("a private /tmp needs bubblewrap; the rlimits-only fallback shares the host's")
    writer = (
        "import os\nfor p in ('/tmp/leak', os.path.expanduser('~/leak'), '/dev/shm/leak', '/dev/leak',\n"
        "          '/leak', '/etc/leak', '/proc/leak', '/usr/leak'):\n"
        "    try:\n        open(p, 'w').write('918273645')\n    except OSError:\n        pass\n"
        "os.makedirs('/tmp/d/e', exist_ok=True)\nos.chmod('/tmp/d', 0)\nos.chmod('/tmp', 0)\n"
        "print(0)\n"
    )
    reader = (
        "import glob, os\nfound = []\n"
        "for p in glob.glob('/tmp/**', recursive=True) + glob.glob('/dev/**') + glob.glob('/*')"
        " + glob.glob('/etc/*') + ['/tmp/leak', '/leak', '/etc/leak']:\n"
        "    try:\n        found.append(open(p).read() if os.path.isfile(p) else '')\n"
        "    except OSError:\n        pass\n"
        "print('918273645' in ''.join(found), sorted(os.listdir('/tmp')))\n"
    )
    one_worker.run(writer, stdio_suite(("", "0\n")))
    seen = one_worker.run(reader, stdio_suite(("", "")))
    assert seen.tests[0].actual == "False []\n", seen
    writable = one_worker.run("import os\nos.mkdir('/leakdir')\n", stdio_suite(("", "")))
    assert writable.tests[0].error_type in ("OSError", "PermissionError"), writable  # EROFS
    # And the chmod of /tmp does not break the programs after it.
    assert one_worker.run("print(int(input()) + 1)\n", stdio_suite(("1\n", "2\n"))).passed
    assert one_worker.run("def add(a, b):\n    return a + b\n", call_suite(([1, 2], 3))).passed


def test_dev_and_dev_shm_are_read_only(one_worker):
    if one_worker.isolation != "bwrap":
        pytest.skip("needs bubblewrap")
    program = (
        "import os\nfor p in ('/dev/shm/x', '/dev/x'):\n"
        "    try:\n        open(p, 'w')\n        print('writable', p)\n"
        "    except OSError as e:\n        print(e.errno)\n"
        "open('/dev/null', 'w').write('still a sink')\n"
    )
    assert one_worker.run(program, stdio_suite(("", ""))).tests[0].actual == "30\n30\n"


# --------------------------------------------------------------------------- memory over the tree


def test_memory_limit_covers_the_whole_process_tree():
    # Three processes of 300 MiB each: under the 512 MiB per-process limit, 900 MiB together.
    program = (
        "import os, time\nkids = []\n"
        "for _ in range(3):\n    pid = os.fork()\n"
        "    if pid == 0:\n        block = bytearray(300 << 20)\n        time.sleep(5)\n        os._exit(0)\n"
        "    kids.append(pid)\n"
        "for k in kids:\n    os.waitpid(k, 0)\nprint('held')\n"
    )
    config = ExecutorConfig(workers=1, timeout=6.0, memory_mb=512, cache_size=0)
    with Executor(config) as ex:
        started = time.monotonic()
        result = ex.run(program, stdio_suite(("", "held\n")))
        assert result.verdict is Verdict.MEMORY_EXCEEDED, result
        assert time.monotonic() - started < 5
        calls = program.replace("print('held')", "def add(a, b):\n    return a + b")
        assert ex.run(calls, call_suite(([1, 2], 3))).verdict is Verdict.MEMORY_EXCEEDED
        # One process under the limit still runs.
        assert ex.run("x = bytearray(200 << 20)\nprint('ok')\n", stdio_suite(("", "ok\n"))).passed


# --------------------------------------------------------------------------- the pieces, in isolation


def test_seccomp_filter_denies_the_listed_syscalls_in_a_child():
    # The filter itself, outside any sandbox: a forked child installs it and tries each call.
    import os
    import subprocess
    import sys

    probe = (
        "import ctypes, os, socket, sys\n"
        "sys.path[:0] = [p for p in sys.argv[1:]]\n"
        "from codefalcon.execution import sandbox_worker as W\n"
        "assert W.install_seccomp()\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "out = [libc.syscall(nr, 1, 0, 0) for nr in (438, 434, 101 if os.uname().machine == 'x86_64' else 117)]\n"
        "try:\n    socket.socket(socket.AF_INET)\n    out.append('inet')\nexcept PermissionError:\n    out.append('no inet')\n"
        "socket.socketpair()\nprint(out)\n"
    )
    src = os.path.join(os.path.dirname(__import__("codefalcon").__file__), "..")
    done = subprocess.run([sys.executable, "-c", probe, src], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[-1, -1, -1, 'no inet']", done.stderr


def test_clean_observation_keeps_only_bounded_known_fields():
    from codefalcon.execution.values import clean_observation, shape_problem

    obs = clean_observation(
        {
            "status": "raised",
            "error": {"type": "E" * 10_000, "message": {"a": 1}, "line": "7", "extra": [1]},
            "exit_code": 2**80,
            "stdout": 5,
            "seconds": float("nan"),
            "whatever": object(),
        }
    )
    assert obs["status"] == "raised" and len(obs["error"]["type"]) <= 203
    assert obs["error"]["message"] == "<dict>" and "line" not in obs["error"]
    assert obs["exit_code"] is None and obs["stdout"] == "<int>"
    assert "seconds" not in obs and "whatever" not in obs
    assert clean_observation([1])["status"] == "invalid"
    deep: list = []
    for _ in range(1000):
        deep = [deep]
    assert shape_problem(deep) and shape_problem([[1, 2], {"a": [3]}]) is None
