"""The nested candidate harness: how a trusted evaluation worker runs candidate code.

Every evaluator that runs code a candidate wrote (``python-code``, ``attention``, ``script``)
goes through :func:`run_candidate`: a second sandboxed process, as a throw-away unprivileged
uid, with the one timeout rule of :func:`candidate_limits`: what is left of the worker's own
timeout less a reserve of 10% (at least 2 s), so the worker outlives the candidate, scores
or explains it, and writes its result file before its own deadline.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import time
from contextvars import ContextVar
from pathlib import Path

from cambrian.core.config import SandboxLimits
from cambrian.execution.sandbox import SandboxResult, isolation_available, run_sandboxed

MIN_TIMEOUT_S = 1.0
UNISOLATED = ("refused: candidate code can't be isolated from the campaign's user here (no root to "
              "drop from, no user namespaces); run as root, enable user namespaces, or pass "
              "--unsafe-no-isolation (sandbox.unsafe_no_isolation: true) to run it anyway")


class CandidateRefused(RuntimeError):
    """Untrusted code that this machine can't isolate, and the user did not accept the risk."""
# When this evaluation started (time.monotonic()), set by the evaluation worker for its thread;
# unset, the process's own age is used (a worker is a process of its own).
_started: ContextVar[float | None] = ContextVar("cambrian_evaluation_started", default=None)


def mark_start() -> None:
    """Note that an evaluation starts now, in this thread (its timeout counts from here)."""
    _started.set(time.monotonic())


def process_age() -> float:
    """Seconds since this process started (0 where /proc is not available)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def time_left(limits: SandboxLimits) -> float:
    """What is left of the worker's timeout, less the reserve for scoring and the result file."""
    reserve = max(2.0, 0.1 * limits.timeout_s)
    started = _started.get()
    age = time.monotonic() - started if started is not None else process_age()
    return max(MIN_TIMEOUT_S, limits.timeout_s - age - reserve)


def candidate_limits(limits: SandboxLimits, timeout_s: float | None = None) -> SandboxLimits:
    """The worker's limits with the candidate's timeout: ``timeout_s`` (a task's or an option's)
    where given, but never past :func:`time_left`."""
    left = time_left(limits)
    timeout = min(float(timeout_s), left) if timeout_s else left
    return limits.model_copy(update={"timeout_s": max(MIN_TIMEOUT_S, timeout)})


def run_candidate(cmd: list[str], workdir: Path, limits: SandboxLimits,
                  env: dict[str, str] | None = None, *, hide: tuple[str | Path, ...] = ()) -> SandboxResult:
    """Run candidate code nested: sandboxed, unprivileged, within ``limits`` (see candidate_limits).

    ``hide``: trusted paths (hidden data, a task's scoring code and labels, caches) that the
    candidate must not see even where its uid could read them: covered in its mount namespace.
    """
    if not isolation_available() and not limits.unsafe_no_isolation:
        raise CandidateRefused(UNISOLATED)
    return run_sandboxed(cmd, workdir, limits, env, unprivileged=True, hide=tuple(hide))


def private_dir(path: str | Path) -> Path:
    """``path`` created (if needed) as a directory only its owner, the trusted worker, can enter.

    For what candidates must never read: corpus caches that hold the hidden split, say.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def remove_tree(path: str | Path) -> None:
    """Remove a directory a candidate wrote in, links and all (never followed), even where it
    took the permissions off its own folders (possible for the campaign's user in the no-root box)."""
    def retry(func, name, _exc) -> None:
        parent = os.path.dirname(name)
        try:
            os.chmod(parent, 0o700)
            if os.path.isdir(name) and not os.path.islink(name):
                os.chmod(name, 0o700)
            func(name)
        except OSError:
            pass

    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, onerror=retry)
        else:
            os.unlink(path)


def explain(res: SandboxResult, limits: SandboxLimits) -> str:
    """Why a candidate's run failed, with the limit it hit where that can be told."""
    reason = res.reason or "it wrote no output"
    tail = res.stderr_tail
    if "MemoryError" in tail or "Cannot allocate memory" in tail:
        reason += f" (out of memory: the limit is {limits.memory_mb} MB)"
    elif "Resource temporarily unavailable" in tail and ("fork" in tail or "thread" in tail):
        reason += f" (process limit: at most {limits.max_procs} processes/threads)"
    elif "Permission denied" in tail or "Read-only file system" in tail:
        reason += " (it may only write inside its own working directory)"
    elif "Network is unreachable" in tail or "Errno 101" in tail:
        reason += " (no network in the sandbox)"
    return reason


def record(res: SandboxResult, path: Path, **extra: object) -> None:
    """The harness's own record of a candidate run (who it ran as, what it lacked, how it ended)."""
    path.write_text(json.dumps(
        {"uid": res.uid, "network_isolated": res.network_isolated, "pids_isolated": res.pids_isolated,
         "warnings": list(res.warnings), "wall_s": res.wall_s, "cpu_s": res.cpu_s,
         "returncode": res.returncode, "timed_out": res.timed_out, **extra}, indent=1))


def check_source(src: object, *, what: str, max_chars: int, filename: str | None = "candidate.py",
                 tree: bool = False) -> ast.Module | None:
    """Refuse candidate source that is empty, too long or does not compile (``ValueError``).

    ``what`` is the sentence for an empty candidate; ``filename=None`` skips compiling (a
    non-Python file); ``tree=True`` parses only and returns the module's syntax tree.
    """
    if not isinstance(src, str) or not src.strip():
        raise ValueError(what)
    if len(src) > max_chars:
        raise ValueError(f"the source is longer than {max_chars} characters")
    if filename is None:
        return None
    try:
        out = compile(src, filename, "exec", ast.PyCF_ONLY_AST if tree else 0)
    except SyntaxError as exc:
        raise ValueError(f"the source does not compile: {exc.msg} (line {exc.lineno})") from None
    return out if tree else None
