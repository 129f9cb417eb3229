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
import gc
import io
import json
import os
import resource
import select
import shutil
import signal
import struct
import sys
import time
import traceback

try:
    import cf_values as V  # inside the sandbox: injected by the launcher
except ImportError:  # imported by the parent for its framing helpers
    from codefalcon.execution import values as V

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
NOBODY = 65534
PROGRAM_FILE = "<program>"
DETAIL = 2000


class Timeout(Exception):
    pass


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


def _read_exact(fd, n, deadline):
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise Timeout()
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv(fd, deadline=None):
    """One message, or None at end of file. Raises Timeout past ``deadline``."""
    head = _read_exact(fd, 4, deadline)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    if n > (256 << 20):
        raise ValueError("message too large")
    body = _read_exact(fd, n, deadline)
    if body is None:
        return None
    return json.loads(body)


# --------------------------------------------------------------------------- process helpers


def prctl(option, value):
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
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
                reply = recv(self.resp_fd)
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


# --------------------------------------------------------------------------- the worker


class Worker:
    """One program at a time: load, run tests one by one, end."""

    def __init__(self, config):
        self.limits = config["limits"]
        self.tmp = config.get("tmp", "/tmp")
        self.job = 0
        self.scratch_path = os.path.join(self.tmp, f"cf-{os.getpid()}")
        self.mode = self.program = self.scratch = None
        self.host = None  # (pid, req_w, resp_r)
        self.restarted = None
        self.load_timeout = 10.0

    # -- children

    def fork(self, fds, body):
        """Fork a sandboxed child that runs ``body()`` and then exits."""
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                enter_sandbox(self.limits, self.scratch, fds)
                body()
                code = 0
            except BaseException:
                pass
            finally:
                os._exit(code)
        return pid

    def start_host(self, deadline):
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        program = self.program
        pid = self.fork({3: req_r, 4: resp_w}, lambda: host_main(program, "solution", 3, 4))
        os.close(req_r)
        os.close(resp_w)
        self.host = (pid, req_w, resp_r)
        try:
            ready = recv(resp_r, deadline)
        except Timeout:
            self.stop_host()
            return {"ok": False, "kind": "timeout"}
        except ValueError as e:
            ready = {
                "ok": False,
                "kind": "load_error",
                "error": {"type": "ProtocolError", "message": str(e)},
            }
        if ready is None:
            self.stop_host()
            return {"ok": False, "kind": "load_error", **self.death_info(pid)}
        if not ready.get("ok"):
            self.stop_host()
        return ready

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
        send(1, loaded)
        live, left = bool(loaded.get("ok")), header["n"]
        while left > 0:
            if live:
                self.prepare()
            msg = recv(0)
            if msg is None or msg.get("op") != "run":
                break
            left -= 1
            reply = guarded(self.run, msg) if live else {"status": "skipped"}
            del msg
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
        return self.start_host(deadline)

    def prepare(self):
        """Restart a host that died in the last test, *before* the next test's code is read.

        A host forked while the worker holds a test's code could find it in memory; forking it
        between requests means it only ever sees the program.
        """
        self.restarted = None
        if self.mode in ("call", "assert") and self.host is None and self.scratch:
            self.restarted = self.start_host(time.monotonic() + self.load_timeout)

    def fresh_scratch(self):
        """An empty folder at the worker's fixed scratch path (where the environment points)."""
        path = self.scratch_path
        if os.path.lexists(path):
            # Whatever the last program made that rmtree could not remove is moved out of the way.
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
            reply = recv(r, deadline) or {"ok": False, "kind": "load_error", **self.death_info(pid)}
        except Timeout:
            reply = {"ok": False, "kind": "timeout"}
        finally:
            os.close(r)
            kill_and_wait(pid)
        return reply

    def run(self, msg):
        started = time.monotonic()
        deadline = started + msg["timeout"]
        if self.mode == "stdio":
            reply = self.run_stdio(msg, deadline)
        else:
            if self.host is None:
                ready = self.restarted or {"ok": False, "error": {"type": "ProgramExited"}}
                if not ready.get("ok"):
                    return {"status": "died", "error": ready.get("error"), "seconds": 0.0}
            reply = self.run_call(msg, deadline) if self.mode == "call" else self.run_assert(msg, deadline)
        reply["seconds"] = time.monotonic() - started
        sweep(keep=(self.host[0],) if self.host else ())
        return reply

    def run_call(self, msg, deadline):
        pid, req_w, resp_r = self.host
        req = {"op": "call", "name": msg["fn_name"], "method": msg.get("method", False)}
        req["args"], req["seq"] = msg["input"], 1
        try:
            send(req_w, req)
            reply = recv(resp_r, deadline)
        except Timeout:
            self.stop_host()
            return {"status": "timeout"}
        except (OSError, ValueError) as e:
            reply = None
            err = str(e)
        else:
            err = None
        if reply is None:
            info = self.death_info(pid)
            self.stop_host()
            return {"status": "died", **info, "detail": err}
        if reply.get("ok"):
            return {"status": "returned", "value": reply.get("value")}
        return {"status": "raised", "error": reply.get("error")}

    def run_assert(self, msg, deadline):
        _pid, req_w, resp_r = self.host
        status_r, status_w = os.pipe()
        setup, code, fn_name = msg.get("setup", ""), msg["code"], msg.get("fn_name")
        names = msg.get("names")
        driver = self.fork(
            {3: req_w, 4: resp_r, 5: status_w},
            lambda: driver_main(setup, code, fn_name, names, 3, 4, 5),
        )
        os.close(status_w)
        try:
            reply = recv(status_r, deadline)
        except Timeout:
            reply = {"status": "timeout"}
        except ValueError as e:
            reply = {
                "status": "harness_error",
                "error": {"type": "ProtocolError", "message": str(e)},
            }
        finally:
            os.close(status_r)
            kill_and_wait(driver)
        if reply is None:
            reply = {
                "status": "harness_error",
                "error": {"type": "DriverDied", "message": "test process ended"},
            }
        if reply["status"] in ("timeout", "died"):
            self.stop_host()  # a hung or dead host cannot serve the next test
        return reply

    def run_stdio(self, msg, deadline):
        data = msg["input"].encode("utf-8", "surrogateescape")
        stdin = os.memfd_create("stdin")
        os.write(stdin, data)
        os.lseek(stdin, 0, os.SEEK_SET)
        out_r, out_w = os.pipe()
        st_r, st_w = os.pipe()
        program = self.program
        pid = self.fork({0: stdin, 1: out_w, 3: st_w}, lambda: runner_main(program, 3))
        for fd in (stdin, out_w, st_w):
            os.close(fd)
        try:
            out, status, why = self.collect(out_r, st_r, msg["max_output"], deadline)
        finally:
            os.close(out_r)
            os.close(st_r)
        if why is not None:
            kill_and_wait(pid)
            return {"status": why, "stdout": out.decode("utf-8", "replace")}
        _, wait_status = os.waitpid(pid, 0)
        reply = {"stdout": out.decode("utf-8", "replace"), **exit_status(wait_status)}
        try:
            reply.update(json.loads(status[4:]) if len(status) > 4 else {"status": "died"})
        except ValueError:
            reply.update(status="died")
        return reply

    def collect(self, out_r, st_r, max_output, deadline):
        """Read stdout and the status pipe until both close, the deadline, or the output cap."""
        out, status, open_fds = bytearray(), bytearray(), {out_r, st_r}
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(out), bytes(status), "timeout"
            ready = select.select(list(open_fds), [], [], left)[0]
            for fd in ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    open_fds.discard(fd)
                elif fd == out_r:
                    out += chunk
                    if len(out) > max_output:
                        return bytes(out[:max_output]), bytes(status), "output_limit"
                else:
                    status += chunk
        return bytes(out), bytes(status), None

    def end(self):
        self.stop_host()
        sweep()
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None


def guarded(step, msg, load=False):
    """``step(msg)``, or a harness error: a bug of ours is reported, never hidden as a verdict."""
    try:
        return step(msg)
    except Exception as e:
        error = {"type": type(e).__name__, "message": traceback.format_exc()[-DETAIL:]}
        if load:
            return {"ok": False, "kind": "harness_error", "error": error}
        return {"status": "harness_error", "error": error}


def maybe_passed(obs):
    """Whether an observation might be a pass (only the parent can tell a wrong answer)."""
    status = obs.get("status")
    return status in ("passed", "returned", "ok") or (status == "died" and obs.get("exit_code") == 0)


def main():
    prctl(PR_SET_DUMPABLE, 0)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    config = json.loads(sys.argv[1])
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    worker = Worker(config)
    scrub_environment(worker.scratch_path)
    gc.freeze()  # forked children then never scan (and copy) the worker's objects in a collection
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
