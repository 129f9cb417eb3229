"""Starting sandbox workers: bubblewrap namespaces where available, rlimits otherwise.

Isolation levels, strongest first:

- ``bwrap``: Debian's bubblewrap gives each worker a read-only view of ``/usr`` only (no home,
  no project, no data sets, no site-packages), a read-only root, a private ``/tmp`` (the only
  writable place, emptied between programs), a read-only ``/dev`` (so no ``/dev/shm``), no
  network (a private loopback with nothing listening) and its own PID space in which the worker
  itself is PID 1 (``--as-pid-1``): no bubblewrap process that a program could reach holds the
  worker's pipes or the evaluator's environment, and signals from inside the sandbox cannot
  stop or kill the worker. When we are root, the worker is first dropped to uid 65534 with
  ``setpriv``, because RLIMIT_NPROC is not enforced for host uid 0 and a fork bomb would
  otherwise be unbounded. bubblewrap itself starts with an empty environment.
- ``none``: a plain child process with rlimits, a scrubbed environment and (as root) an
  unprivileged uid for programs. The host file system and network are visible. Chosen only when
  bubblewrap is missing or cannot create namespaces, and announced once in the log.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"
SANDBOXES = ("auto", "bwrap", "none")
"""The isolation choices `plan_sandbox` accepts."""
TMP_MB = 128
"""Size of a bubblewrap worker's private /tmp (a tmpfs, emptied after every program)."""
LAUNCH_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
"""The whole environment setpriv and bubblewrap start with: nothing of the evaluator's."""


@dataclass(frozen=True)
class SandboxPlan:
    """How to start a worker: the command line and what isolation it gives."""

    kind: str  # "bwrap" or "none"
    argv: tuple[str, ...]
    python: str
    tmp: str
    note: str = ""


def worker_source() -> str:
    """The worker script with `values.py` injected as the module ``cf_values``."""
    pkg = resources.files("codefalcon.execution")
    values_src = (pkg / "values.py").read_text()
    worker_src = (pkg / "sandbox_worker.py").read_text()
    bootstrap = (
        "import sys, types\n"
        "_m = types.ModuleType('cf_values')\n"
        f"exec(compile({values_src!r}, 'cf_values.py', 'exec'), _m.__dict__)\n"
        "sys.modules['cf_values'] = _m\n"
    )
    return bootstrap + worker_src


def _python_for_sandbox(python: str | None, drop_uid: bool) -> str:
    if python:
        return python
    # An unprivileged uid cannot read a Python installed under /root (mode 0700); the system
    # Python's standard library is world-readable.
    if (drop_uid or shutil.which("bwrap")) and os.path.exists(SYSTEM_PYTHON):
        return SYSTEM_PYTHON
    return sys.executable


def _bwrap_argv(python: str, worker_args: list[str]) -> list[str]:
    argv: list[str] = []
    if os.geteuid() == 0 and shutil.which("setpriv"):
        argv += ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    argv += ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--as-pid-1"]
    argv += ["--die-with-parent", "--new-session"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("/lib", "/lib64", "/lib32", "/bin", "/sbin"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    prefix = os.path.realpath(python)
    if not prefix.startswith("/usr/"):
        # A Python outside /usr: make its installation visible (read-only), nothing else.
        root = str(Path(prefix).parent.parent)
        argv += ["--ro-bind", root, root]
    argv += ["--ro-bind-try", "/etc/localtime", "/etc/localtime"]
    for conf in sorted(glob.glob("/etc/java-*")):  # the JDK's conf/ links into /etc
        argv += ["--ro-bind", conf, conf]
    argv += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
    argv += ["--size", str(TMP_MB << 20), "--tmpfs", "/tmp"]
    # bubblewrap's root (and the /etc it makes for the binds above) is a writable tmpfs that
    # would outlive each program on this worker: read-only, so only /tmp is writable.
    argv += ["--remount-ro", "/"]
    argv += ["--chdir", "/tmp", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin"]
    argv += ["--setenv", "LANG", "C.UTF-8", "--"]
    return [*argv, python, "-I", "-S", "-c", *worker_args]


def plan_sandbox(preference: str, python: str | None, limits: dict[str, Any]) -> SandboxPlan:
    """Choose the isolation level and build the worker command line.

    ``preference``: "auto" (bwrap if it works, else none), "bwrap" (required) or "none".
    """
    if preference not in SANDBOXES:
        raise ValueError(f"sandbox must be 'auto', 'bwrap' or 'none', not {preference!r}")
    src = worker_source()
    if preference in ("auto", "bwrap") and shutil.which("bwrap"):
        py = _python_for_sandbox(python, drop_uid=False)
        config = json.dumps({"limits": {**limits, "drop_uid": None}, "tmp": "/tmp", "private_tmp": True})
        argv = _bwrap_argv(py, [src, config])
        ok, why = _probe(argv)
        if not ok and "--disable-userns" in argv:
            # bubblewrap before 0.8, or a kernel that refuses it: the seccomp filter still
            # denies unshare and setns to programs.
            argv.remove("--disable-userns")
            ok, why = _probe(argv)
        if ok:
            return SandboxPlan("bwrap", tuple(argv), py, "/tmp")
        if preference == "bwrap":
            raise RuntimeError(f"sandbox 'bwrap' requested but it does not start here: {why}")
        note = f"bubblewrap is installed but cannot start a sandbox ({why})"
    elif preference == "bwrap":
        raise RuntimeError(
            "sandbox 'bwrap' requested but bubblewrap is not installed (Debian: apt-get install bubblewrap)"
        )
    else:
        note = "bubblewrap not installed" if preference == "auto" else "sandbox disabled by config"
    root = os.geteuid() == 0
    py = _python_for_sandbox(python, drop_uid=root)
    drop = NOBODY if root and py == SYSTEM_PYTHON else None
    tmp = tempfile.mkdtemp(prefix="codefalcon-exec-")
    os.chmod(tmp, 0o711)  # programs may enter their own scratch folder, not list others
    config = json.dumps({"limits": {**limits, "drop_uid": drop}, "tmp": tmp})
    if preference == "auto":
        log.warning(
            "codefalcon executor: %s; falling back to rlimits only (no file-system, network or "
            "PID isolation). Install bubblewrap for full isolation.",
            note,
        )
    return SandboxPlan("none", (py, "-I", "-S", "-c", src, config), py, tmp, note)


def _probe(argv: list[str]) -> tuple[bool, str]:
    """Start one worker and wait for its greeting; report why not if it fails."""
    try:
        proc = subprocess.run(argv, input=b"", capture_output=True, timeout=20, env=LAUNCH_ENV)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    if proc.returncode == 0 and proc.stdout[4:].startswith(b'{"ready": true'):
        return True, ""
    return False, proc.stderr.decode(errors="replace").strip()[-300:] or f"exit {proc.returncode}"
