"""A warm fork server: sandboxed evaluation workers forked from a process that imported torch once.

A fresh evaluation process spends 0.5-4 CPU-s (more on a loaded machine) starting Python and
importing torch before it trains anything: a fifth of a small proxy evaluation. The server
(``python -m cambrian.execution.forkserver MODULE...``) imports those modules and the plugins once,
then forks one worker per request and confines it after the fork as
:class:`~cambrian.execution.sandbox.SandboxProcess` does before its exec:

- a new session, so a timeout or a cancel kills the whole process group; it dies with the server;
- fresh network and PID namespaces where the OS grants them (``unshare(2)``, through a user
  namespace when not root): the worker is init of its PID namespace, so every descendant, even
  one that left the session, dies with it;
- rlimits, a scrubbed environment, its own working directory, stdout/stderr to files there.

Each request forks a *supervisor* (new session, namespaces) that forks the worker and mirrors its
exit; the server reaps the supervisor with ``wait4`` and so measures the worker's CPU time.

Why not ``multiprocessing``'s forkserver: it has no per-child namespaces, rlimits or rusage, and
its children are not killable process groups. Only trusted harness code runs this way (the
evaluation worker); candidate code that an evaluator runs is still exec'd fresh through
SandboxProcess, with a throw-away uid.

``preload`` entries are modules to import, or ``module:function`` to import and call (to load
compiled kernels, say), once, in the server.

Protocol, JSON lines: the client writes ``{"id", "entry": "module:function", "argv", "workdir",
"env", "limits"}``; the server answers ``{"id", "pid"}`` once forked and ``{"id", "status",
"cpu_s", "max_rss_kb"}`` when the supervisor is reaped. End of input (the campaign process is
gone) kills every worker and ends the server.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from cambrian.core.config import SandboxLimits
from cambrian.core.plugins import get_plugin_manager
from cambrian.execution import namespaces
from cambrian.execution.sandbox import (SandboxResult, _tail, die_with_parent, kernel_cache_dir,
                                   missing_protections, scrubbed_env, set_rlimits)

SETUP_FAILED = 97  # the supervisor's exit code when the probed namespaces could not be entered

# What any evaluation worker gains from: numpy, torch and torch._dynamo (the first optimizer
# built imports it: sympy and 800 modules, 2-3 CPU-s). The plugins are always loaded. What a
# domain's evaluations import beyond that, the domain names itself (``Domain.preload``, passed
# by the campaign to its executor). An entry that fails is skipped; the workers do without it.
DEFAULT_PRELOAD = ("numpy", "torch", "torch._dynamo")


# ----------------------------------------------------------------------------- server side

_PROTO = 1  # the server's answers; fd 1 itself goes to the log, so a chatty import can't garble them


def _send(msg: dict[str, Any]) -> None:
    os.write(_PROTO, (json.dumps(msg) + "\n").encode())  # one write < PIPE_BUF: never interleaved


def _mapped_mb() -> int:
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) // 1024 for ln in f if ln.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return 0


def _work(req: dict[str, Any], limits: SandboxLimits, count_procs: bool) -> NoReturn:
    """The worker: confine, then run ``entry(argv)`` and exit with its code."""
    code = 1
    try:
        die_with_parent()
        workdir = req["workdir"]
        os.chdir(workdir)
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(os.path.join(workdir, "stdout.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(os.path.join(workdir, "stderr.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for fd, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
        os.closerange(3, 65536)  # the server's pipes and anything else it held
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")
        # memory_mb is what the evaluation may map beyond the server's imports (shared, copy-on-write)
        set_rlimits(limits, count_procs, base_mb=_mapped_mb())
        os.environ.clear()
        os.environ.update(req["env"])
        tempfile.tempdir = None  # re-read TMPDIR
        import random

        random.seed()  # a fresh process would not share the server's random state
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(limits.threads)
        module, func = req["entry"].split(":")
        sys.argv = [module, *req["argv"]]
        code = getattr(importlib.import_module(module), func)(list(req["argv"])) or 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:  # noqa: BLE001 - whatever happens, it is reported through stderr and the code
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
    os._exit(code)


def _supervise(req: dict[str, Any], grant: namespaces.Grant, server_fds: list[int]) -> NoReturn:
    """Between server and worker: new session and namespaces; mirrors the worker's exit."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in server_fds:
            os.close(fd)
        os.setsid()
        die_with_parent()
        limits = SandboxLimits(**req["limits"])
        count_procs = os.getuid() != 0  # before a user namespace makes us "root" inside it
        if not namespaces.enter(grant, limits.network):  # fail closed rather than run unconfined
            with open(os.path.join(req["workdir"], "stderr.log"), "a") as f:
                f.write("sandbox setup failed: could not enter the network/PID namespaces\n")
            os._exit(SETUP_FAILED)
        pid = os.fork()
        if pid == 0:
            _work(req, limits, count_procs)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code < 0:  # die of the same signal, so the server sees what the worker died of
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code if code >= 0 else 1)
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        os._exit(SETUP_FAILED)


def serve(preload: list[str]) -> int:
    global _PROTO
    _PROTO = os.dup(1)
    os.dup2(2, 1)
    for entry in preload:  # "module" is imported; "module:function" is imported and called
        try:
            module, _, func = entry.partition(":")
            imported = importlib.import_module(module)
            if func:
                getattr(imported, func)()
        except Exception as exc:  # noqa: BLE001 - optional: workers import (or build) it themselves
            print(f"forkserver: preload {entry} skipped: {exc}", file=sys.stderr, flush=True)
    get_plugin_manager()
    grant = namespaces.granted()
    net_isolated, pids_isolated = grant.isolated(False)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, int] = {}  # supervisor pid -> request id
    parent = os.getppid()
    _send({"ready": True, "network_isolated": net_isolated, "pids_isolated": pids_isolated,
           "threads": len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1})

    def reap() -> None:
        while children:
            try:
                pid, status, ru = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            try:  # what is left of its process group (daemonised forks, a worker it never saw start)
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            _send({"id": children.pop(pid), "status": status, "cpu_s": ru.ru_utime + ru.ru_stime,
                   "max_rss_kb": ru.ru_maxrss})

    buf = b""
    while True:
        try:
            ready, _, _ = select.select([0, wake_r], [], [], 1.0)
        except InterruptedError:
            ready = []
        if wake_r in ready:
            os.read(wake_r, 4096)
        reap()
        if os.getppid() != parent:
            break  # the campaign process is gone
        if 0 not in ready:
            continue
        data = os.read(0, 1 << 16)
        if not data:
            break
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            req = json.loads(line)
            pid = os.fork()
            if pid == 0:
                _supervise(req, grant, [0, _PROTO, wake_r, wake_w])
            children[pid] = req["id"]
            _send({"id": req["id"], "pid": pid})
    for pid in list(children):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    # A campaign process that was killed never ran its cleanup: the server's folder (its cwd,
    # made for it alone by ForkServer) goes with the server.
    here = os.getcwd()
    if os.path.basename(here).startswith("cambrian-forkserver-"):
        shutil.rmtree(here, ignore_errors=True)
    return 0


# ----------------------------------------------------------------------------- client side

@dataclass
class _Request:
    started: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    pid: int | None = None
    status: int | None = None
    cpu_s: float = 0.0
    max_rss_kb: int = 0
    error: str = ""


class ForkServer:
    """A running fork server; :meth:`spawn` starts one confined worker. Thread-safe."""

    def __init__(self, preload: tuple[str, ...] | list[str] = DEFAULT_PRELOAD,
                 start_timeout_s: float = 600.0) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="cambrian-forkserver-"))
        # The folder (the server's cwd and log) goes when the server is closed, or at the
        # latest when this object or the interpreter goes: no campaign leaves one behind.
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._dir), True)
        # Single-threaded imports: OpenBLAS would otherwise start a thread pool before the forks.
        env = scrubbed_env(self._dir, 1, {"OPENBLAS_NUM_THREADS": "1", "CAMBRIAN_EXT_DIR": kernel_cache_dir()})
        self._log = self._dir / "server.log"
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "cambrian.execution.forkserver", *preload], cwd=self._dir, env=env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        self._lock = threading.Lock()
        self._requests: dict[int, _Request] = {}
        self._ids = itertools.count()
        self._ready = threading.Event()
        self._gone = False  # its output ended: dead, or about to be
        self.network_isolated = self.pids_isolated = False
        threading.Thread(target=self._read, daemon=True, name="cambrian-forkserver").start()
        if not self._ready.wait(start_timeout_s) or not self.alive:
            self.close()
            raise RuntimeError(f"fork server did not start: {_tail(self._log, 500).strip()}")

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return not self._gone and self._proc.poll() is None

    def _read(self) -> None:
        for line in self._proc.stdout:
            msg = json.loads(line)
            if msg.get("ready"):
                self.network_isolated, self.pids_isolated = msg["network_isolated"], msg["pids_isolated"]
                self._ready.set()
                continue
            with self._lock:
                req = self._requests.get(msg["id"])
            if req is None:
                continue
            if "pid" in msg:
                req.pid = msg["pid"]
                req.started.set()
            else:
                req.status, req.cpu_s, req.max_rss_kb = msg["status"], msg["cpu_s"], msg["max_rss_kb"]
                with self._lock:
                    self._requests.pop(msg["id"], None)
                req.done.set()
        # End of output: the server died. Whatever it still ran is lost; say why.
        self._gone = True
        self._ready.set()
        reason = f"fork server exited: {_tail(self._log, 300).strip() or 'no message'}"
        with self._lock:
            pending, self._requests = list(self._requests.values()), {}
        for req in pending:
            req.error = reason
            req.started.set()
            req.done.set()

    def spawn(self, entry: str, argv: list[str], workdir: Path, limits: SandboxLimits,
              env: dict[str, str] | None = None) -> WarmProcess:
        """Fork a confined worker that runs ``entry`` ("module:function") with ``argv`` in ``workdir``."""
        workdir.mkdir(parents=True, exist_ok=True)
        req = _Request()
        with self._lock:
            rid = next(self._ids)
            self._requests[rid] = req
            msg = {"id": rid, "entry": entry, "argv": argv, "workdir": str(workdir),
                   "env": scrubbed_env(workdir, limits.threads, env), "limits": limits.model_dump()}
            try:
                self._proc.stdin.write((json.dumps(msg) + "\n").encode())
                self._proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                req.error = f"fork server exited: {_tail(self._log, 300).strip() or 'no message'}"
                req.started.set()
                req.done.set()
        if not req.started.wait(120):  # a server that can't fork in two minutes is stuck:
            self.kill()                  # its reader then fails everything it ran, this one too
            req.started.wait()
        return WarmProcess(self, req, workdir, limits)

    def kill(self) -> None:
        """Kill the server at once; its reader fails what it ran, its workers die with it."""
        self._proc.kill()

    def close(self) -> None:
        """End the server; it kills whatever it still runs."""
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._cleanup()


class WarmProcess:
    """One forked worker; the same interface as :class:`~cambrian.execution.sandbox.SandboxProcess`."""

    def __init__(self, server: ForkServer, req: _Request, workdir: Path, limits: SandboxLimits) -> None:
        self._server, self._req, self.workdir, self.limits = server, req, workdir, limits
        self.network_isolated = server.network_isolated and not limits.network
        self.pids_isolated = server.pids_isolated
        self.killed = False
        self._start = time.monotonic()

    def kill(self) -> None:
        self.killed = True
        pid = self._req.pid
        if pid is None or self._req.done.is_set():
            return
        for kill in (os.killpg, os.kill):  # the group; the supervisor itself if not yet a group leader
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def wait(self) -> SandboxResult:
        req = self._req
        timed_out = not req.done.wait(self.limits.timeout_s)
        if timed_out:
            self.kill()
            if not req.done.wait(60):  # the server never reported the kill: it is stuck
                self._server.kill()
                req.done.wait()
        if req.error:
            returncode, stderr = 1, req.error
        else:
            returncode = os.waitstatus_to_exitcode(req.status)
            stderr = _tail(self.workdir / "stderr.log")
        return SandboxResult(
            returncode=None if timed_out else returncode, timed_out=timed_out,
            wall_s=time.monotonic() - self._start, cpu_s=req.cpu_s, max_rss_mb=req.max_rss_kb / 1024,
            stdout_tail=_tail(self.workdir / "stdout.log"), stderr_tail=stderr,
            network_isolated=self.network_isolated, pids_isolated=self.pids_isolated,
            warnings=tuple(missing_protections(self.limits, self.network_isolated, self.pids_isolated)))


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
