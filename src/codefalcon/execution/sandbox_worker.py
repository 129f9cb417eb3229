"""The sandbox worker: runs untrusted programs and reports what they did.

This file runs *inside* the sandbox, under a plain system Python with no site-packages, so it uses
the standard library only (plus ``cf_values``, the source of ``codefalcon/execution/values.py``,
injected by the launcher). It never decides a verdict: it reports observations (stdout, return
values as data, exceptions, exit status) to the trusted parent, which compares them with expected
values that never enter the sandbox.

Processes, per worker (one long-lived worker per core, forked children per program):

- the **worker** (this loop): reads length-prefixed JSON requests on fd 0, answers on fd 1. A
  program is one ``job``: a header with the program, then its test messages, written by the
  parent in one burst; the worker answers the load and then each test as it finishes (see
  `Worker.run_job`). It is a child subreaper and not dumpable, so programs can neither escape
  its process tree nor read its memory.
- the **zygote**: a freshly exec'd interpreter that forks the host and the runner (see `Zygote`),
  so that no program's process inherits the worker's heap, where earlier tests and programs lay.
- the **host** (call and assert styles): forked once per program, loads the program and serves
  calls to its functions. It never holds test code or expected values.
- the **driver** (assert style): forked per test; runs the trusted test code, whose calls to
  program functions become requests to the host. Values come back as data, so an object whose
  ``__eq__`` always says True, a patched builtin or a stack walk in the program cannot affect the
  test. Early ``exit()`` in the program ends the host, which the driver sees as a failure.
- the **runner** (stdio style): forked per test with the input on stdin; stdout is returned.

Every child gets its own session, a scratch directory, a scrubbed environment, rlimits, and (when
the worker runs as root) an unprivileged uid. Timeouts kill the child's process group and every
leftover descendant of the worker.
"""

import ast
import builtins
import ctypes
import fnmatch
import gc
import io
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import struct
import sys
import time
import traceback

try:
    import cf_values as V  # inside the sandbox: injected by the launcher
except ImportError:  # imported by the parent for its framing helpers
    from codefalcon.execution import values as V

PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
NOBODY = 65534
PROGRAM_FILE = "<program>"
DETAIL = 2000
MAX_CHILD_MESSAGE = 64 << 20
"""Largest message a program's process (or a test driver) may send the worker; more is its fault."""
MAX_STATUS = 64 << 10
"""Largest status a stdio program may leave on its status pipe."""
RUNTIME_ADDRESS_SPACE_MB = 4096
"""RLIMIT_AS for compilers and runtimes of other languages (their resident memory is what counts)."""
COMPILE_CACHE_BYTES = 32 << 20
"""Compiled programs a worker keeps, in its own memory (no program can plant one); small, because
every Python program process forked from the worker counts the worker's pages as its own."""
MEMORY_TICK = 0.02
"""Seconds between measurements of a program's memory over its whole process tree."""


class Timeout(Exception):
    pass


class BadMessage(ValueError):
    """Bytes on a pipe that are not a message of the protocol: too large, not JSON, too deep."""


class MemoryExceeded(Exception):
    """The program's processes together hold more memory than its limit."""


# --------------------------------------------------------------------------- framing


def frame(obj):
    """One length-prefixed JSON message, as bytes (several may go out in one write)."""
    data = json.dumps(obj, default=repr).encode()
    return struct.pack(">I", len(data)) + data


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def send(fd, obj):
    write_all(fd, frame(obj))


def wait_readable(fd, deadline, watch=None):
    """Block until ``fd`` is readable; Timeout past ``deadline``; ``watch()`` every tick."""
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise Timeout()
        tick = left if watch is None else MEMORY_TICK if left is None else min(left, MEMORY_TICK)
        if select.select([fd], [], [], tick)[0]:
            return
        if watch is not None:
            watch()


def _read_exact(fd, n, deadline, watch):
    chunks, got = [], 0
    while got < n:
        if deadline is not None or watch is not None:
            wait_readable(fd, deadline, watch)
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv(fd, deadline=None, limit=256 << 20, watch=None):
    """One message, or None at end of file.

    Raises Timeout past ``deadline``, BadMessage for anything that is not a message of at most
    ``limit`` bytes, and whatever ``watch`` raises (it runs while waiting).
    """
    head = _read_exact(fd, 4, deadline, watch)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    if n > limit:
        raise BadMessage(f"message of {n} bytes (at most {limit})")
    body = _read_exact(fd, n, deadline, watch)
    if body is None:
        return None
    try:
        msg = json.loads(body)
    except (ValueError, RecursionError, MemoryError) as e:
        raise BadMessage(f"not a JSON message: {type(e).__name__}") from None
    if not isinstance(msg, dict):
        raise BadMessage("not a JSON object")
    return msg


# --------------------------------------------------------------------------- process helpers


_LIBC = []


def libc():
    if not _LIBC:
        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


def prctl(option, value):
    try:
        libc().prctl(option, value, 0, 0, 0)
    except Exception:
        pass


def error_info(exc):
    """Type, message and program line of an exception, robust to hostile ``__str__``."""
    try:
        message = str(exc)[:DETAIL]
    except BaseException:
        message = "<unprintable>"
    line = None
    if isinstance(exc, SyntaxError) and exc.filename == PROGRAM_FILE:
        line = exc.lineno
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == PROGRAM_FILE:
            line = frame.lineno
    return {"type": type(exc).__name__, "message": message, "line": line}


def enter_sandbox(limits, scratch, fds):
    """Turn a freshly forked child into a sandboxed process.

    ``fds`` maps the fd numbers the child keeps (0, 1, 3, 4, ...) to fds it has now; everything
    else is closed and 0-2 default to /dev/null.
    """
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    moved = {target: os.dup(src) for target, src in fds.items()}  # dup first: targets may clash
    for target in range(3):
        if target not in moved:
            os.dup2(devnull, target)
    for target, src in moved.items():
        os.dup2(src, target)
    keep = max([2, *moved]) + 1
    os.closerange(keep, 1 << 16)
    os.chdir(scratch)  # the environment was set once, by `scrub_environment`
    mem = limits["memory_mb"] << 20
    for rlim, value in (
        (resource.RLIMIT_AS, mem),
        (resource.RLIMIT_FSIZE, limits["fsize_mb"] << 20),
        (resource.RLIMIT_NOFILE, max(limits["nofile"], keep + 8)),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, limits["nproc"]),
        (resource.RLIMIT_CPU, limits["cpu_seconds"]),
    ):
        try:
            resource.setrlimit(rlim, (value, value))
        except (ValueError, OSError):
            pass
    if os.geteuid() == 0 and limits.get("drop_uid"):
        os.setgroups([])
        os.setgid(limits["drop_uid"])
        os.setuid(limits["drop_uid"])
    # Not dumpable: a program cannot open /proc/<pid>/{fd,mem,environ} of a harness process of
    # its own uid (a test driver), nor attach to it. Each child sets it again because a uid
    # change may reset it.
    prctl(PR_SET_DUMPABLE, 0)
    if not install_seccomp():
        os._exit(1)  # never run a program without the filter where the kernel has one


# --------------------------------------------------------------------------- seccomp

# Syscalls no program needs and every attack on a neighbouring process uses: reading or writing
# another process's memory or file descriptors, namespaces and mounts, the kernel's eBPF and
# io_uring interfaces (which bypass per-syscall filters), keyrings. Denied with EPERM.
_DENIED = {
    # name: (x86_64, aarch64)
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "kcmp": (312, 272),
    "pidfd_open": (434, 434),
    "pidfd_getfd": (438, 438),
    "perf_event_open": (298, 241),
    "bpf": (321, 280),
    "userfaultfd": (323, 282),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "unshare": (272, 97),
    "setns": (308, 268),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "open_by_handle_at": (304, 265),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "keyctl": (250, 219),
    # Kernel objects that outlive every process of a program (SysV IPC and POSIX message queues
    # live as long as the worker's IPC namespace: a later program could read them) or hold
    # memory that no process maps, which the memory limit cannot see (an unmapped memfd, an
    # IPC object). Python, g++, the JVM and node need none of them; the worker makes the stdin
    # memfd of a stdio program itself, outside the filter.
    "shmget": (29, 194),
    "semget": (64, 190),
    "msgget": (68, 186),
    "mq_open": (240, 180),
    "memfd_create": (319, 279),
    "memfd_secret": (447, 447),
}
_SOCKET = (41, 198)
_SECCOMP_SYSCALL = {"x86_64": 317, "aarch64": 277}
_ARCHES = {"x86_64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7)}
AF_UNIX = 1


def seccomp_program(machine):
    """The classic-BPF filter for ``machine`` (as ``os.uname().machine`` names it), as bytes.

    Foreign-ABI calls (i386 through ``int 0x80``, x32) would bypass the numbers above and
    kill the process; ``socket`` is allowed for AF_UNIX only, so there is no network even
    where the sandbox has no network namespace.
    """
    col, arch = _ARCHES[machine]
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny, kill = 0x7FFF0000, 0x00050000 | 1, 0x80000000  # ALLOW, ERRNO(EPERM), KILL_PROCESS
    denied = sorted({nrs[col] for nrs in _DENIED.values()})
    ins = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, kill), (ld, 0, 0, 0)]
    if machine == "x86_64":
        ins += [(jge, 0, 1, 0x40000000), (ret, 0, 0, kill)]
    n = len(denied)
    # One "nr == x -> deny" per denied syscall; the deny return sits right after the allow.
    for i, nr in enumerate(denied):
        ins.append((jeq, (n - i) + 3, 0, nr))
    ins += [(jeq, 0, 2, _SOCKET[col]), (ld, 0, 0, 16), (jeq, 0, 1, AF_UNIX)]
    ins += [(ret, 0, 0, allow), (ret, 0, 0, deny)]
    return b"".join(struct.pack("=HBBI", *i) for i in ins), len(ins)


def install_seccomp():
    """Filter this process's (and its descendants') syscalls; False only if the kernel refused.

    On an architecture the table does not cover there is no filter (True, and the rest of the
    sandbox still applies).
    """
    if not _FILTER:
        build_seccomp_filter()
    prog = _FILTER[0]
    if prog is None:
        return True
    if libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    # SPEC_ALLOW: kernels that force speculative-store-bypass mitigations on every filtered
    # process would otherwise slow all Python code in the sandbox down.
    if libc().syscall(_SECCOMP_SYSCALL[prog[2]], 1, 4, ctypes.byref(prog[0])) == 0:
        return True
    return libc().prctl(PR_SET_SECCOMP, 2, ctypes.byref(prog[0]), 0, 0) == 0


def build_seccomp_filter():
    """Build the filter once, in the worker, so a forked child only installs it."""
    machine = os.uname().machine
    if machine not in _ARCHES:
        _FILTER.append(None)
        return
    code, count = seccomp_program(machine)
    buf = ctypes.create_string_buffer(code, len(code))

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    _FILTER.append((Prog(count, ctypes.cast(buf, ctypes.c_void_p)), buf, machine))  # buf: keep alive


_FILTER = []  # built once in the worker, before any fork


def scrub_environment(scratch):
    """Leave only a minimal environment, once: every child inherits it.

    Editing ``os.environ`` in each forked child costs more CPU than the fork itself, which is
    why every program of a worker gets the same scratch path (emptied between programs).
    """
    os.environ.clear()
    os.environ.update(PATH="/usr/bin:/bin", HOME=scratch, TMPDIR=scratch, LANG="C.UTF-8")


def children_of(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return out


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def sweep(keep=()):
    """Kill every descendant of this worker except ``keep`` (orphans are re-parented to us)."""
    me = os.getpid()
    for _ in range(200):
        victims = [p for p in children_of(me) if p not in keep]
        if not victims:
            return
        for p in victims:
            try:
                os.killpg(p, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.001)
        reap()


def descendants(pid, skip=()):
    """Every process below ``pid`` in the process tree (children first), none in or below ``skip``."""
    out, todo = [], [pid]
    while todo:
        kids = [k for k in children_of(todo.pop()) if k not in skip]
        out += kids
        todo += kids
    return out


def resident_bytes(pids):
    """Resident memory of ``pids`` together (pages shared after a fork count in each)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return total * os.sysconf("SC_PAGE_SIZE")


def kill_and_wait(pid):
    if pid is None:
        return
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def exit_status(status):
    if os.WIFSIGNALED(status):
        return {"exit_code": None, "signal": signal.Signals(os.WTERMSIG(status)).name}
    return {"exit_code": os.WEXITSTATUS(status), "signal": None}


# --------------------------------------------------------------------------- the program host


def host_main(program, module_name, req_fd, resp_fd):
    """Load the program, then serve calls to it until the request pipe closes."""
    g = {"__name__": module_name, "__builtins__": builtins}
    try:
        code = compile(program, PROGRAM_FILE, "exec")
    except BaseException as e:
        send(resp_fd, {"ok": False, "kind": "compile_error", "error": error_info(e)})
        os._exit(0)
    try:
        exec(code, g)
    except BaseException as e:
        send(resp_fd, {"ok": False, "kind": "load_error", "error": error_info(e)})
        os._exit(0)
    send(resp_fd, {"ok": True})
    refs = {}
    while True:
        req = recv(req_fd)
        if req is None:
            os._exit(0)
        try:
            value = _serve(req, g, refs)
            reply = {"ok": True, "value": V.encode(value, refs)}
        except BaseException as e:
            reply = {"ok": False, "error": error_info(e)}
        reply["seq"] = req.get("seq")
        send(resp_fd, reply)


def _serve(req, g, refs):
    def arg(x):
        return V.decode(x, lambda d: refs[d["id"]])

    op = req["op"]
    if op == "call":
        name = req["name"]
        if name in g:
            fn = g[name]
        elif isinstance(g.get("Solution"), type):  # LeetCode-style: a method of class Solution
            fn = getattr(g["Solution"](), name)
        else:
            raise NameError(f"name {name!r} is not defined by the program")
        return fn(*arg(req["args"]), **arg(req.get("kwargs", {"$": "dict", "v": []})))
    obj = refs[req["id"]]
    if op == "callref":
        return obj(*arg(req["args"]), **arg(req.get("kwargs", {"$": "dict", "v": []})))
    if op == "getattr":
        return getattr(obj, req["attr"])
    if op == "setattr":
        return setattr(obj, req["attr"], arg(req["value"]))
    if op == "getitem":
        return obj[arg(req["key"])]
    if op == "iter":
        out = []
        for item in obj:
            out.append(item)
            if len(out) > V.MAX_ITEMS:
                break
        return out
    if op == "len":
        return len(obj)
    if op in ("repr", "str"):
        return (repr if op == "repr" else str)(obj)
    if op == "bool":
        return bool(obj)
    raise ValueError(f"unknown request {op!r}")


# --------------------------------------------------------------------------- the test driver


class ProgramDied(BaseException):
    """The program's process ended or broke its channel: the test cannot pass."""


class HarnessLimit(BaseException):
    """A value the harness cannot pass to the program (e.g. a lambda argument)."""


class ProgramFailure(BaseException):
    """The program raised something that is not an ordinary exception (e.g. SystemExit)."""


class Rpc:
    def __init__(self, req_fd, resp_fd):
        self.req_fd, self.resp_fd, self.seq = req_fd, resp_fd, os.getpid() * 1000
        self.last_call = None

    def __call__(self, request, describe=None):
        self.seq += 1
        request["seq"] = self.seq
        try:
            send(self.req_fd, request)
            while True:
                reply = recv(self.resp_fd, limit=MAX_CHILD_MESSAGE)
                if reply is None:
                    raise ProgramDied("the program's process ended during a call")
                if reply.get("seq") == self.seq:
                    break
        except (OSError, ValueError) as e:
            raise ProgramDied(f"the program's channel broke: {e}") from None
        if not reply.get("ok"):
            raise program_exception(reply.get("error") or {})
        value = V.decode(reply.get("value"), lambda d: Remote(self, d))
        if describe is not None:
            self.last_call = (describe, value)
        return value


def program_exception(info):
    """Re-raise a program's exception in the driver as the same built-in type, if it is one."""
    cls = getattr(builtins, str(info.get("type")), None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            exc = cls(info.get("message", ""))
        except Exception:
            exc = RuntimeError(info.get("message", ""))
    else:
        exc = ProgramFailure(info.get("message", ""))
    exc._cf_program_error = info
    return exc


def _short(value):
    try:
        return repr(value)[:DETAIL]
    except BaseException:
        return "<unrepresentable>"


def encode_arg(rpc):
    def on_object(x):
        if isinstance(x, Remote):
            return {"$": "ref", "id": object.__getattribute__(x, "_id")}
        if isinstance(x, V.Opaque):  # the program's own value, too large or deep to send back
            raise ProgramFailure(f"the program's earlier value cannot be passed back to it: {x!r}")
        raise HarnessLimit(f"cannot pass a {type(x).__name__} to the program's process")

    return lambda value: V.encode(value, on_object=on_object)


class Remote:
    """An object that lives in the program's process (e.g. a tree node it built)."""

    __slots__ = ("_id", "_rpc", "_type")

    def __init__(self, rpc, tag):
        object.__setattr__(self, "_rpc", rpc)
        object.__setattr__(self, "_id", tag["id"])
        object.__setattr__(self, "_type", tag.get("type"))

    def _ask(self, op, **kw):
        rpc = object.__getattribute__(self, "_rpc")
        return rpc({"op": op, "id": object.__getattribute__(self, "_id"), **kw})

    def __getattr__(self, attr):
        return self._ask("getattr", attr=attr)

    def __setattr__(self, attr, value):
        self._ask("setattr", attr=attr, value=encode_arg(self._rpc)(value))

    def __call__(self, *args, **kwargs):
        enc = encode_arg(self._rpc)
        return self._ask("callref", args=enc(list(args)), kwargs=enc(kwargs))

    def __iter__(self):
        return iter(self._ask("iter"))

    def __len__(self):
        return self._ask("len")

    def __getitem__(self, key):
        return self._ask("getitem", key=encode_arg(self._rpc)(key))

    def __bool__(self):
        return bool(self._ask("bool"))

    def __repr__(self):
        return str(self._ask("repr"))

    def __str__(self):
        return str(self._ask("str"))

    def __eq__(self, other):
        # Identity only: the program's own __eq__ must never decide a test.
        return isinstance(other, Remote) and object.__getattribute__(other, "_id") == object.__getattribute__(
            self, "_id"
        )

    def __hash__(self):
        return hash(object.__getattribute__(self, "_id"))


def make_proxy(rpc, name):
    enc = encode_arg(rpc)

    def proxy(*args, **kwargs):
        request = {"op": "call", "name": name, "args": enc(list(args)), "kwargs": enc(kwargs)}
        return rpc(request, describe=(name, args, kwargs))

    proxy.__name__ = name
    return proxy


def describe_call(last):
    """``f(1, [2])`` and the result's repr, built only when a test fails."""
    if not last:
        return None
    (name, args, kwargs), result = last
    shown = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
    return {"call": f"{name}({', '.join(shown)})"[:DETAIL], "result": _short(result)}


def free_names(source):
    """Names read by ``source`` that it does not define at top level (may be the program's)."""
    tree = ast.parse(source)
    defined = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                defined.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return used - defined - set(dir(builtins))


def driver_main(setup, code, fn_name, names, req_fd, resp_fd, status_fd):
    """Run one assert-style test against the program host; report one status message.

    ``names``: the test's free names, computed (and cached) by the trusted parent; None makes
    the driver parse the test itself.
    """
    rpc = Rpc(req_fd, resp_fd)
    ns = {"__name__": "__test__", "__builtins__": builtins}
    status = {"status": "passed"}
    try:
        if names is None:
            try:
                names = free_names(setup) | free_names(code)
            except SyntaxError as e:
                raise HarnessLimit(f"test code does not parse: {e}") from None
        for name in names:
            ns[name] = make_proxy(rpc, name)
        exec(compile(setup, "<setup>", "exec"), ns)
        if fn_name:
            ns[fn_name] = ns["candidate"] = make_proxy(rpc, fn_name)
        exec(compile(code, "<test>", "exec"), ns)
    except AssertionError as e:
        status = {"status": "failed", "error": _test_error(e, setup, code)}
    except ProgramDied as e:
        status = {"status": "died", "error": {"type": "ProgramExited", "message": str(e)}}
    except HarnessLimit as e:
        status = {"status": "harness_error", "error": {"type": "HarnessLimit", "message": str(e)}}
    except BaseException as e:
        info = getattr(e, "_cf_program_error", None)
        if info is not None:
            status = {"status": "raised", "error": info}
        else:  # the test itself choked on what the program returned (e.g. None < 3)
            status = {"status": "failed", "error": _test_error(e, setup, code)}
    if status["status"] != "passed":
        status["last_call"] = describe_call(rpc.last_call)
    send(status_fd, status)


def _test_error(exc, setup, code):
    info = error_info(exc)
    sources = {"<test>": code.splitlines(), "<setup>": setup.splitlines()}
    for frame in traceback.extract_tb(exc.__traceback__):
        lines = sources.get(frame.filename)
        if lines and frame.lineno and frame.lineno <= len(lines):
            info["test_line"] = lines[frame.lineno - 1].strip()[:DETAIL]
    return info


# --------------------------------------------------------------------------- the stdio runner


def runner_main(program, status_fd):
    """Run the program as __main__ with fd 0 as stdin and fd 1 as stdout."""
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), "utf-8", "replace")
    out = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), "utf-8", "replace")
    sys.stdout, sys.stderr = out, io.StringIO()
    status = {"status": "ok"}
    try:
        code = compile(program, PROGRAM_FILE, "exec")
    except BaseException as e:
        send(status_fd, {"status": "compile_error", "error": error_info(e)})
        os._exit(0)
    try:
        exec(code, {"__name__": "__main__", "__builtins__": builtins})
    except SystemExit as e:
        if e.code not in (None, 0):
            status = {
                "status": "exit",
                "error": {"type": "SystemExit", "message": str(e.code)[:DETAIL]},
            }
    except BaseException as e:
        status = {"status": "raised", "error": error_info(e)}
    try:
        out.flush()
    except BaseException:
        pass
    send(status_fd, status)
    os._exit(0)


# --------------------------------------------------------------------------- the zygote

ZYGOTE_WAIT = 5.0
"""Seconds the worker waits for the zygote to fork a child before starting a fresh zygote."""
ZYGOTE_FLAG = "--zygote"


class Zygote:
    """Forks the program's own processes (host, stdio runner) from an interpreter with a clean heap.

    A forked child inherits its parent's memory, freed blocks included. Forked from the worker, a
    program could read out of its own heap whatever the worker handled before it: the tests of
    the previous program (a HumanEval ``check`` with every expected value; in RL the samples of
    one task run one after another on a worker) and the previous programs themselves. The zygote
    is a freshly exec'd interpreter that never receives a test or a program, only "fork a <kind>
    with these fds": the child reads its program from one of them after the fork.

    Each child is forked twice (zygote -> short-lived middle process -> child), so it is
    re-parented to the worker (PID 1 and a child subreaper), which waits for it, measures it and
    kills it as before. A program may kill or stop the zygote (same uid): the worker then starts
    a fresh one, by exec again, never by a fork of itself. No program process is alive when that
    happens (every spawn follows a sweep), so none can reach the new zygote before it makes itself
    non-dumpable.
    """

    def __init__(self):
        self.pid = self.sock = None
        argv = getattr(sys, "orig_argv", None)
        if not argv:  # Python < 3.10: the same command line, from /proc
            with open("/proc/self/cmdline", "rb") as f:
                argv = [a.decode("utf-8", "surrogateescape") for a in f.read().split(b"\0")[:-1]]
        self.argv = [sys.executable, *argv[1:], ZYGOTE_FLAG]

    def start(self):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            try:
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)  # never the worker's request or answer pipe
                os.dup2(theirs.fileno(), 3)
                os.closerange(4, 1 << 16)
                os.execv(self.argv[0], self.argv)
            finally:
                os._exit(1)
        theirs.close()
        self.pid, self.sock = pid, ours
        try:
            wait_readable(ours.fileno(), time.monotonic() + 30.0)
            if json.loads(ours.recv(4096) or b"{}").get("ready") is not True:
                raise OSError("the zygote did not start")
        except (Timeout, OSError, ValueError):
            self.stop()
            raise OSError("cannot start the zygote") from None

    def stop(self):
        if self.sock is not None:
            self.sock.close()
        kill_and_wait(self.pid)
        self.pid = self.sock = None

    def spawn(self, kind, fds, limits, scratch, deadline):
        """Pid of a new sandboxed ``kind`` child holding ``fds`` ({target fd: our fd}).

        Raises Timeout past ``deadline`` and OSError if two zygotes in a row fail.
        """
        targets = sorted(fds)
        request = json.dumps({"kind": kind, "targets": targets, "limits": limits, "scratch": scratch})
        for attempt in range(2):
            try:
                if self.sock is None:
                    self.start()
                socket.send_fds(self.sock, [request.encode()], [fds[t] for t in targets])
                try:
                    wait_readable(self.sock.fileno(), min(deadline, time.monotonic() + ZYGOTE_WAIT))
                except Timeout:
                    if time.monotonic() >= deadline:
                        self.stop()  # it may be stopped or mid-fork: never reuse it
                        raise
                    raise OSError("the zygote did not answer") from None
                reply = json.loads(self.sock.recv(4096) or b"{}")
                if type(reply.get("pid")) is int:
                    return reply["pid"]
                raise OSError(f"the zygote could not fork: {reply.get('error')}")
            except (OSError, ValueError):
                self.stop()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def resume(self):
        """Undo a SIGSTOP that the last program may have sent (called once it is swept)."""
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGCONT)
            except OSError:
                pass


def zygote_main(sock_fd):
    """Fork children on request, from this clean interpreter, until the worker goes away."""
    prctl(PR_SET_DUMPABLE, 0)  # first: its socket to the worker must be out of programs' reach
    sock = socket.socket(fileno=sock_fd)
    build_seccomp_filter()
    gc.freeze()
    sock.send(b'{"ready": true}')
    bodies = {
        "host": lambda program: host_main(program, "solution", 3, 4),
        "runner": lambda program: runner_main(program, 3),
    }
    while True:
        msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, 16)
        if not msg:
            os._exit(0)
        said_r, said_w = os.pipe()
        try:
            req = json.loads(msg)
            middle = os.fork()
        except Exception as e:
            sock.send(json.dumps({"error": f"{type(e).__name__}: {e}"[:DETAIL]}).encode())
            os.close(said_w)
            middle = None
        if middle == 0:  # the middle process: fork the child, say its pid, leave it to the worker
            try:
                os.close(said_r)
                pid = os.fork()
                if pid == 0:
                    os.close(said_w)
                    program_child(bodies[req["kind"]], req, dict(zip(req["targets"], fds, strict=True)))
                said = {"pid": pid}
            except BaseException as e:
                said = {"error": f"{type(e).__name__}: {e}"[:500]}  # one pipe read
            try:
                write_all(said_w, json.dumps(said).encode())
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        if middle:
            os.close(said_w)
            os.waitpid(middle, 0)  # only now is the child the worker's: then the worker may wait for it
            said = os.read(said_r, 4096)  # one short message, whole: the middle has exited
            sock.send(said or b'{"error": "the middle process died"}')
        os.close(said_r)


def child_main(limits, scratch, fds, body):
    """Sandbox this freshly forked child, run ``body()`` and exit: 0 if it returned, 1 if it raised."""
    code = 1
    try:
        enter_sandbox(limits, scratch, fds)
        body()
        code = 0
    except BaseException:
        pass
    finally:
        os._exit(code)


def program_child(body, req, fds):
    """The program's process: sandbox it, read the program from its fd, run ``body``; never return."""
    program_fd = max(fds)  # the last target: the program, written by the worker into a memfd

    def run():
        data = os.pread(program_fd, os.fstat(program_fd).st_size, 0)
        os.close(program_fd)
        body(data.decode("utf-8", "surrogatepass"))

    child_main(req["limits"], req["scratch"], fds, run)


def program_fd(program):
    """A memfd holding ``program``, for the zygote's child to read (the caller closes it)."""
    fd = os.memfd_create("program")
    write_all(fd, program.encode("utf-8", "surrogatepass"))
    return fd


# --------------------------------------------------------------------------- the worker


RUNNER_STATUSES = {"ok", "exit", "raised", "compile_error"}
"""What a stdio program's own process may report; it can write anything on that pipe."""
LOAD_FAILURES = {"compile_error", "load_error"}
"""What a host may report about its own load; "timeout" and "memory" are the worker's."""


class Worker:
    """One program at a time: load, run tests one by one, end."""

    def __init__(self, config):
        self.limits = config["limits"]
        self.tmp = config.get("tmp", "/tmp")
        # A private /tmp (bubblewrap) is itself the scratch folder, emptied after each program.
        self.private_tmp = bool(config.get("private_tmp"))
        self.job = 0
        self.scratch_path = self.tmp if self.private_tmp else os.path.join(self.tmp, f"cf-{os.getpid()}")
        self.mode = self.program = self.scratch = None
        self.host = None  # (pid, req_w, resp_r)
        self.driver = None
        self.restarted = None
        self.compiled = {}  # compile command and sources -> artifacts, in the worker's memory only
        self.load_timeout = 10.0
        self.zygote = Zygote()  # forks the program's processes (see Zygote); started by `main`

    # -- children

    def fork(self, fds, body, limits=None):
        """Fork a sandboxed child that runs ``body()`` and then exits."""
        pid = os.fork()
        if pid == 0:
            child_main(limits or self.limits, self.scratch, fds, body)
        return pid

    def spawn(self, kind, fds, deadline):
        """A program's process (``kind``: "host" or "runner"), forked by the zygote, not by us.

        The program goes in a memfd as the last fd; the caller closes the others.
        """
        prog = program_fd(self.program)
        try:
            fds = {**fds, max(fds) + 1: prog}
            return self.zygote.spawn(kind, fds, self.limits, self.scratch, deadline)
        finally:
            os.close(prog)

    def check_memory(self):
        """Raise MemoryExceeded when the program's processes together exceed its limit.

        The limit covers the program's whole process tree, not each process (RLIMIT_AS is per
        process): every descendant of the worker except the test driver, whose memory is the
        test's. cgroup v2 would do this in the kernel; it is not writable inside an unprivileged
        sandbox, so the worker measures while it waits (every MEMORY_TICK seconds).
        """
        pids = descendants(os.getpid(), skip=(self.driver, self.zygote.pid))
        if resident_bytes(pids) > self.limits["memory_mb"] << 20:
            raise MemoryExceeded()

    def start_host(self, deadline):
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        try:
            pid = self.spawn("host", {3: req_r, 4: resp_w}, deadline)
        except Timeout:
            pid = None
        finally:
            os.close(req_r)
            os.close(resp_w)
        self.host = (pid, req_w, resp_r)
        try:
            if pid is None:
                raise Timeout()
            ready = recv(resp_r, deadline, MAX_CHILD_MESSAGE, self.check_memory)
        except Timeout:
            self.stop_host()
            return {"ok": False, "kind": "timeout"}
        except MemoryExceeded:
            self.stop_host()
            return {"ok": False, "kind": "memory"}
        except BadMessage as e:
            ready = {"ok": False, "kind": "load_error", "error": protocol_error(e)}
        if ready is None:
            self.stop_host()
            return {"ok": False, "kind": "load_error", **self.death_info(pid)}
        if ready.get("ok") is True:
            return {"ok": True}
        self.stop_host()
        # The program's own process wrote this: keep only what a load failure may say.
        kind = ready.get("kind") if ready.get("kind") in LOAD_FAILURES else "load_error"
        return {"ok": False, "kind": kind, "error": ready.get("error")}

    def stop_host(self):
        if self.host:
            pid, req_w, resp_r = self.host
            kill_and_wait(pid)
            os.close(req_w)
            os.close(resp_r)
            self.host = None

    def death_info(self, pid):
        try:
            _, status = os.waitpid(pid, 0)
            info = exit_status(status)
        except ChildProcessError:
            info = {"exit_code": None, "signal": None}
        return {
            "error": {"type": "ProgramExited", "message": f"the program's process ended ({info})"},
            **info,
        }

    # -- requests

    def run_job(self, header):
        """One program and its tests: one reply for the load, then one per test message.

        The parent writes the header and a burst of test messages at once. Each test message is
        read from the pipe only when its turn comes, after any restart of the host, so a host
        never shares memory with test code; each observation is sent before the next read for
        the same reason. Tests after a load failure, or after a definite failure when the
        header says ``stop``, are answered ``skipped`` without running. The job ends after
        ``n`` test messages or at an ``end`` message (the parent stopping early).
        """
        loaded = guarded(self.load, header, load=True)
        send(1, V.clean_observation(loaded))
        live, left = bool(loaded.get("ok")), header["n"]
        while left > 0:
            if live:
                self.restarted = guarded(self.prepare, None, load=True)
            msg = recv(0)
            if msg is None or msg.get("op") != "run":
                break
            left -= 1
            reply = guarded(self.run, msg) if live else {"status": "skipped"}
            del msg
            reply = V.clean_observation(reply)
            send(1, reply)
            if header.get("stop") and not maybe_passed(reply):
                live = False
            del reply
        self.end()

    def load(self, msg):
        self.end()
        self.job += 1
        self.mode, self.program = msg["mode"], msg["program"]
        self.scratch = self.fresh_scratch()
        self.load_timeout = msg["load_timeout"]
        deadline = time.monotonic() + self.load_timeout
        if self.mode == "stdio":
            return self.check_compiles(deadline)
        if self.mode == "program":
            return {"ok": True}  # compiled with each test: the test holds main
        return self.start_host(deadline)

    def prepare(self, _msg=None):
        """Restart a host that died in the last test, *before* the next test's code is read.

        A host forked while the worker holds a test's code could find it in memory; forking it
        between requests means it only ever sees the program.
        """
        if self.mode in ("call", "assert") and self.host is None and self.scratch:
            return self.start_host(time.monotonic() + self.load_timeout)
        return None

    def fresh_scratch(self):
        """An empty folder at the worker's fixed scratch path (where the environment points)."""
        path = self.scratch_path
        if self.private_tmp:
            return path  # emptied by `end` after the last program
        if os.path.lexists(path):
            # Whatever the last program made that could not be removed is moved out of the way.
            os.rename(path, f"{path}-left-{self.job}")
        os.mkdir(path, 0o777)
        os.chmod(path, 0o777)
        return path

    def check_compiles(self, deadline):
        r, w = os.pipe()
        program = self.program

        def body():
            try:
                compile(program, PROGRAM_FILE, "exec")
                send(3, {"ok": True})
            except BaseException as e:
                send(3, {"ok": False, "kind": "compile_error", "error": error_info(e)})

        pid = self.fork({3: w}, body)
        os.close(w)
        try:
            reply = recv(r, deadline, MAX_CHILD_MESSAGE) or {
                "ok": False,
                "kind": "load_error",
                **self.death_info(pid),
            }
        except Timeout:
            reply = {"ok": False, "kind": "timeout"}
        except BadMessage as e:
            reply = {"ok": False, "kind": "load_error", "error": protocol_error(e)}
        finally:
            os.close(r)
            kill_and_wait(pid)
        return reply

    def run(self, msg):
        started = time.monotonic()
        deadline = started + msg["timeout"]
        if self.mode == "stdio":
            reply = self.run_stdio(msg, deadline)
        elif self.mode == "program":
            reply = self.run_program(msg, deadline)
        else:
            if self.host is None:
                ready = self.restarted or {"ok": False, "error": {"type": "ProgramExited"}}
                if not ready.get("ok"):
                    kinds = {"timeout": "timeout", "memory": "memory", "worker_error": "worker_error"}
                    status = kinds.get(ready.get("kind"), "died")
                    return {"status": status, "error": ready.get("error"), "seconds": 0.0}
            reply = self.run_call(msg, deadline) if self.mode == "call" else self.run_assert(msg, deadline)
        reply["seconds"] = time.monotonic() - started
        sweep(keep=(self.zygote.pid, *((self.host[0],) if self.host else ())))
        return reply

    def run_call(self, msg, deadline):
        pid, req_w, resp_r = self.host
        req = {"op": "call", "name": msg["fn_name"], "method": msg.get("method", False)}
        req["args"], req["seq"] = msg["input"], 1
        try:
            send(req_w, req)
            reply = recv(resp_r, deadline, MAX_CHILD_MESSAGE, self.check_memory)
        except Timeout:
            self.stop_host()
            return {"status": "timeout"}
        except MemoryExceeded:
            self.stop_host()
            return {"status": "memory"}
        except BadMessage as e:
            self.stop_host()
            return {"status": "invalid", "error": protocol_error(e)}
        except OSError as e:
            reply, err = None, str(e)
        else:
            err = None
        if reply is None:
            info = self.death_info(pid)
            self.stop_host()
            return {"status": "died", **info, "detail": err}
        if reply.get("ok") is True and "value" in reply:
            why = V.shape_problem(reply["value"])
            if why:
                return {"status": "invalid", "error": {"type": "InvalidValue", "message": why}}
            return {"status": "returned", "value": reply["value"]}
        return {"status": "raised", "error": reply.get("error")}

    def run_assert(self, msg, deadline):
        _pid, req_w, resp_r = self.host
        status_r, status_w = os.pipe()
        setup, code, fn_name = msg.get("setup", ""), msg["code"], msg.get("fn_name")
        names = msg.get("names")
        self.driver = self.fork(
            {3: req_w, 4: resp_r, 5: status_w},
            lambda: driver_main(setup, code, fn_name, names, 3, 4, 5),
        )
        os.close(status_w)
        try:
            reply = recv(status_r, deadline, MAX_CHILD_MESSAGE, self.check_memory)
        except Timeout:
            reply = {"status": "timeout"}
        except MemoryExceeded:
            reply = {"status": "memory"}
        except BadMessage as e:
            reply = {"status": "invalid", "error": protocol_error(e)}
        finally:
            os.close(status_r)
            kill_and_wait(self.driver)
            self.driver = None
        if reply is None:
            # Only the program can have ended the test's process: it runs as the same user and
            # may signal it (kill -9 -1 does). Charged to the program, never a harness failure.
            reply = {
                "status": "died",
                "error": {
                    "type": "TestKilled",
                    "message": "the test's process was killed while the program ran",
                },
            }
        if reply.get("status") in ("timeout", "died", "memory", "invalid"):
            self.stop_host()  # a hung or dead host cannot serve the next test
        return reply

    def run_stdio(self, msg, deadline):
        data = msg["input"].encode("utf-8", "surrogateescape")
        stdin = os.memfd_create("stdin")
        os.write(stdin, data)
        os.lseek(stdin, 0, os.SEEK_SET)
        out_r, out_w = os.pipe()
        st_r, st_w = os.pipe()
        try:
            pid = self.spawn("runner", {0: stdin, 1: out_w, 3: st_w}, deadline)
        except Timeout:
            os.close(out_r)
            os.close(st_r)
            return {"status": "timeout", "stdout": ""}
        finally:
            for fd in (stdin, out_w, st_w):
                os.close(fd)
        try:
            out, status, why = self.collect(out_r, st_r, msg["max_output"], deadline)
        finally:
            os.close(out_r)
            os.close(st_r)
        stdout = out.decode("utf-8", "replace")
        if why is not None:
            kill_and_wait(pid)
            return {"status": why, "stdout": stdout}
        _, wait_status = os.waitpid(pid, 0)
        reply = {**exit_status(wait_status), "status": "died"}
        if len(status) > 4:
            # The program's own process wrote this status: only the fields it may set survive.
            try:
                said = json.loads(status[4:])
            except (ValueError, RecursionError, MemoryError):
                said = None
            said = said if isinstance(said, dict) else {}
            reply["status"] = said.get("status") if said.get("status") in RUNNER_STATUSES else "invalid"
            if said.get("error") is not None:
                reply["error"] = said.get("error")
        reply["stdout"] = stdout
        return reply

    # -- compiled languages (see codefalcon/execution/languages.py for the files and commands)

    def run_program(self, msg, deadline):
        """Compile (or take from the cache) and run one test program; report what happened.

        The nonce goes to the program's stdin, where only the harness reads it before any
        candidate code runs; the program completed its tests only if stdout ends with it.
        """
        for name, text in msg["files"].items():
            with open(os.path.join(self.scratch, name), "w", encoding="utf-8") as f:
                f.write(text)
        compiled = time.monotonic()
        if msg.get("compile"):
            failed = self.compile_or_cache(msg)
            if failed is not None:
                return failed
            deadline = time.monotonic() + msg["timeout"]  # the time limit is for running the tests
        compiled = time.monotonic() - compiled
        nonce = os.urandom(16).hex().encode()
        out, err, why, status = self.exec_child(
            msg["run"], nonce, deadline, msg["max_output"] + 64, msg.get("env")
        )
        reply = {"stderr": err.decode("utf-8", "replace")[-DETAIL:], "compile_seconds": compiled}
        if why is not None:
            return {**reply, "status": why, "stdout": out[: msg["max_output"]].decode("utf-8", "replace")}
        completed = out.endswith(b"\n" + nonce)
        if completed:
            out = out[: -len(nonce) - 1]
        return {
            **reply,
            **exit_status(status),
            "status": "ran",
            "completed": completed,
            "stdout": out.decode("utf-8", "replace"),
        }

    def compile_or_cache(self, msg):
        """None when the artifacts are in the scratch folder, else a compile_error report."""
        key = json.dumps([msg["files"], msg["compile"]], sort_keys=True)
        cached = self.compiled.pop(key, None)
        if cached is None:
            deadline = time.monotonic() + msg.get("compile_timeout", 60.0)
            out, err, why, status = self.exec_child(msg["compile"], b"", deadline, 1 << 16)
            if why is not None or not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                text = (err + out).decode("utf-8", "replace")
                if why is not None:
                    text = f"the compiler stopped: {why}\n" + text
                return {"status": "compile_error", "error": compiler_error(text, msg["program_file"])}
            cached = {}
            for pattern in msg["artifacts"]:
                for name in sorted(os.listdir(self.scratch)):
                    if fnmatch.fnmatch(name, pattern):
                        with open(os.path.join(self.scratch, name), "rb") as f:
                            cached[name] = f.read()
        else:
            for name, data in cached.items():
                path = os.path.join(self.scratch, name)
                with open(path, "wb") as f:
                    f.write(data)
                os.chmod(path, 0o755)
        self.compiled[key] = cached  # most recently used last
        while sum(len(b) for c in self.compiled.values() for b in c.values()) > COMPILE_CACHE_BYTES:
            self.compiled.pop(next(iter(self.compiled)))
        return None

    def exec_child(self, argv, stdin_data, deadline, max_output, extra_env=None):
        """Run ``argv`` sandboxed in the scratch folder: (stdout, stderr, why stopped, status).

        stdin is a pipe, not a file: once the harness has read the nonce, reopening
        /proc/self/fd/0 or seeking back finds nothing.
        """
        stdin, stdin_w = os.pipe()
        os.write(stdin_w, stdin_data)  # a nonce: far below a pipe's capacity
        os.close(stdin_w)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        # A JVM or V8 reserves address space far beyond what it uses: RLIMIT_AS is widened for
        # these runtimes, and the memory limit is kept by measuring the tree (`check_memory`).
        limits = {**self.limits, "memory_mb": max(self.limits["memory_mb"], RUNTIME_ADDRESS_SPACE_MB)}
        env = {**os.environ, **(extra_env or {})}
        pid = self.fork({0: stdin, 1: out_w, 2: err_w}, lambda: os.execve(argv[0], argv, env), limits)
        for fd in (stdin, out_w, err_w):
            os.close(fd)
        try:
            out, err, why = self.collect(out_r, err_r, max_output, deadline, side_cap=1 << 16)
        finally:
            os.close(out_r)
            os.close(err_r)
        if why is not None:
            kill_and_wait(pid)
            return out, err, why, None
        _, status = os.waitpid(pid, 0)
        return out, err, None, status

    def collect(self, out_r, st_r, max_output, deadline, side_cap=None):
        """Read stdout and the status pipe until both close, the deadline, or a cap.

        ``side_cap``: keep at most this much of the second pipe (stderr) and go on; without it
        the second pipe is a status, and more than MAX_STATUS of it is invalid.
        """
        out, status, open_fds = bytearray(), bytearray(), {out_r, st_r}
        next_check = time.monotonic() + MEMORY_TICK
        while open_fds:
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                return bytes(out), bytes(status), "timeout"
            if now >= next_check:
                next_check = now + MEMORY_TICK
                try:
                    self.check_memory()
                except MemoryExceeded:
                    return bytes(out), bytes(status), "memory"
            ready = select.select(list(open_fds), [], [], min(left, MEMORY_TICK))[0]
            for fd in ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    open_fds.discard(fd)
                elif fd == out_r:
                    out += chunk
                    if len(out) > max_output:
                        return bytes(out[:max_output]), bytes(status), "output_limit"
                elif side_cap is not None:
                    status += chunk[: max(0, side_cap - len(status))]
                else:
                    status += chunk
                    if len(status) > MAX_STATUS:
                        return bytes(out), b"", "invalid"
        return bytes(out), bytes(status), None

    def end(self):
        self.stop_host()
        sweep(keep=(self.zygote.pid,))
        self.zygote.resume()
        if self.scratch:
            if self.private_tmp:
                empty_folder(self.scratch)
            else:
                shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None


def empty_folder(path):
    """Remove everything inside ``path`` whatever modes a program left on it (we own it all)."""
    os.chmod(path, 0o1777)
    for root, dirs, _files in os.walk(path):
        for d in dirs:
            p = os.path.join(root, d)
            if not os.path.islink(p):
                try:
                    os.chmod(p, 0o700)
                except OSError:
                    pass
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def compiler_error(text, program_file):
    """The compiler's first error: its message and the candidate's line, when it names one."""
    for raw in text.splitlines():
        m = re.match(r"(?:\./)?([\w.]+):(\d+):(?:\d+:)?\s*(?:fatal )?error:?\s*(.*)", raw)
        if m:
            line = int(m.group(2)) if m.group(1) == program_file else None
            return {"type": "CompileError", "message": raw.strip()[:DETAIL], "line": line}
    for raw in text.splitlines():  # node --check: "file:line" then the code, then the error
        if re.match(r"\w*Error\b", raw.strip()):
            m = re.search(re.escape(program_file) + r":(\d+)", text)
            return {
                "type": "CompileError",
                "message": raw.strip()[:DETAIL],
                "line": int(m.group(1)) if m else None,
            }
    return {"type": "CompileError", "message": text.strip()[-DETAIL:] or "compilation failed"}


def protocol_error(exc):
    return {"type": "ProtocolError", "message": str(exc)[:DETAIL]}


def guarded(step, msg, load=False):
    """``step(msg)``, or a report of the worker's own failure.

    While a program exists it may be the cause (e.g. by holding every process slot of its
    uid), so the parent charges these to the program; the traceback is kept for us.
    """
    try:
        return step(msg)
    except Exception as e:
        error = {"type": type(e).__name__, "message": traceback.format_exc()[-DETAIL:]}
        if load:
            return {"ok": False, "kind": "worker_error", "error": error}
        return {"status": "worker_error", "error": error}


def maybe_passed(obs):
    """Whether an observation might be a pass (only the parent can tell a wrong answer)."""
    status = obs.get("status")
    return status in ("passed", "returned", "ok") or (status == "died" and obs.get("exit_code") == 0)


def main():
    if sys.argv[-1] == ZYGOTE_FLAG:
        zygote_main(3)
    prctl(PR_SET_DUMPABLE, 0)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    config = json.loads(sys.argv[1])
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    worker = Worker(config)
    scrub_environment(worker.scratch_path)
    build_seccomp_filter()
    gc.freeze()  # forked children then never scan (and copy) the worker's objects in a collection
    worker.zygote.start()
    send(1, {"ready": True, "uid": os.getuid(), "pid": os.getpid(), "python": sys.version})
    while True:
        msg = recv(0)
        if msg is None:
            break
        # Anything but a job header (e.g. the "end" of a job that already ended) is ignored.
        if msg.get("op") == "job":
            worker.run_job(msg)
        del msg
    worker.end()


if __name__ == "__main__":
    main()
