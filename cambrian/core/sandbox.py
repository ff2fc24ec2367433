"""Run untrusted work in a separate, limited process.

Each run gets its own working directory, a scrubbed environment (no API
keys), rlimits on memory, CPU time, file size and processes, a new session
(so a hard wall-clock timeout kills the whole process group) and, where the
OS allows it, a fresh network namespace with no interfaces but loopback.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cambrian.core.config import SandboxLimits

# Variables a candidate process may inherit. Everything else (API keys, tokens,
# cloud credentials) is dropped.
_ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "VIRTUAL_ENV",
              "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CAMBRIAN_LOAD_PLUGINS",
              "CAMBRIAN_DISABLE_PLUGINS", "CUDA_VISIBLE_DEVICES", "LD_PRELOAD")


@dataclass(frozen=True)
class SandboxResult:
    returncode: int | None  # None when killed by us
    timed_out: bool
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    stdout_tail: str
    stderr_tail: str
    network_isolated: bool

    @property
    def reason(self) -> str:
        """A readable reason for an unsuccessful run ('' if it exited 0)."""
        if self.timed_out:
            return f"timed out after {self.wall_s:.1f}s (killed)"
        if self.returncode == 0:
            return ""
        if self.returncode is not None and self.returncode < 0:
            sig = signal.Signals(-self.returncode).name
            hint = {"SIGKILL": " (memory or CPU limit?)", "SIGXCPU": " (CPU-time limit)",
                    "SIGXFSZ": " (file-size limit)", "SIGSEGV": " (crashed)"}.get(sig, "")
            return f"killed by {sig}{hint}"
        last = [ln for ln in self.stderr_tail.strip().splitlines() if ln.strip()]
        return f"exit code {self.returncode}" + (f": {last[-1].strip()}" if last else "")


@functools.lru_cache(maxsize=1)
def network_namespace_prefix() -> tuple[str, ...] | None:
    """The command prefix that gives a child a fresh network namespace, or None."""
    exe = shutil.which("unshare")
    if exe is None or not sys.platform.startswith("linux"):
        return None
    for prefix in ((exe, "--net"), (exe, "--net", "--map-root-user")):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0:
                return prefix
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


def scrubbed_env(workdir: Path, threads: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _ENV_ALLOW}
    if "PYTHONPATH" not in env:
        # Keep the parent's import path so plugins installed beside it resolve.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    tmp = workdir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(workdir), TMPDIR=str(tmp), PYTHONDONTWRITEBYTECODE="1",
               PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", NO_PROXY="*")
    env.update(extra or {})
    return env


@functools.lru_cache(maxsize=1)
def _libc():
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


PR_SET_PDEATHSIG = 1


def _limit(limits: SandboxLimits):  # runs in the child between fork and exec
    libc = _libc() if sys.platform.startswith("linux") else None

    def apply() -> None:
        os.setsid()
        if libc is not None:  # die with the campaign process, even if it is SIGKILLed
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        mb = 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_mb * mb, limits.file_size_mb * mb))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if limits.cpu_s is not None:
            resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))
        if os.getuid() != 0:  # root ignores RLIMIT_NPROC; the process-group kill still applies
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_procs, limits.max_procs))

    return apply


def _tail(path: Path, n: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


class SandboxProcess:
    """One sandboxed command; :meth:`wait` enforces the timeout; :meth:`kill` stops it."""

    def __init__(self, cmd: list[str], workdir: Path, limits: SandboxLimits,
                 env: dict[str, str] | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir, self.limits = workdir, limits
        prefix = () if limits.network else network_namespace_prefix()
        self.network_isolated = bool(prefix) and not limits.network
        self._out, self._err = workdir / "stdout.log", workdir / "stderr.log"
        self._start = time.monotonic()
        with open(self._out, "wb") as out, open(self._err, "wb") as err:
            self.proc = subprocess.Popen(
                [*(prefix or ()), *cmd], cwd=workdir, stdin=subprocess.DEVNULL, stdout=out,
                stderr=err, env=scrubbed_env(workdir, limits.threads, env),
                preexec_fn=_limit(limits), close_fds=True,
            )
        self._rusage: resource.struct_rusage | None = None
        self._status: int | None = None
        self._waiter = threading.Thread(target=self._reap, daemon=True)
        self._waiter.start()
        self.killed = False

    def _reap(self) -> None:
        _, status, self._rusage = os.wait4(self.proc.pid, 0)
        self._status = status
        self.proc.returncode = os.waitstatus_to_exitcode(status)

    def kill(self) -> None:
        self.killed = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def wait(self) -> SandboxResult:
        self._waiter.join(self.limits.timeout_s)
        timed_out = self._waiter.is_alive()
        self.kill() if timed_out else self._kill_leftovers()
        self._waiter.join()
        ru = self._rusage
        return SandboxResult(
            returncode=None if timed_out else self.proc.returncode,
            timed_out=timed_out,
            wall_s=time.monotonic() - self._start,
            cpu_s=(ru.ru_utime + ru.ru_stime) if ru else 0.0,
            max_rss_mb=(ru.ru_maxrss / 1024) if ru else 0.0,
            stdout_tail=_tail(self._out),
            stderr_tail=_tail(self._err),
            network_isolated=self.network_isolated,
        )

    def _kill_leftovers(self) -> None:
        # Children left in the group (daemonised forks) die with their parent.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def run_sandboxed(cmd: list[str], workdir: Path, limits: SandboxLimits,
                  env: dict[str, str] | None = None) -> SandboxResult:
    return SandboxProcess(cmd, workdir, limits, env).wait()
