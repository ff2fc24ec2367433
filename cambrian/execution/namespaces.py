"""What Linux namespaces this machine grants, probed once, and how to enter them.

One prober for both ways a sandboxed process starts: :class:`~cambrian.execution.sandbox.SandboxProcess`
exec's its command behind the ``unshare`` tool (:func:`unshare_prefix`); the fork server's
supervisor calls ``unshare(2)`` itself after a fork (:func:`enter`). Both take the flags from
the same :class:`Grant`, so they never disagree on what the OS allows.

The probe tries, in order: network + PID namespaces, then network only; first as we are,
then through a user namespace (an unprivileged user needs one). It runs in a short-lived
child interpreter, so the probing process (a threaded campaign, say) never forks itself.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000


@dataclass(frozen=True)
class Grant:
    """The namespaces a new sandboxed process can enter here."""

    net: bool = False  # a fresh network namespace (no interfaces but a downed loopback)
    pid: bool = False  # a fresh PID namespace (the process is its init)
    user: bool = False  # both need a user namespace (we are not root)

    def isolated(self, network_allowed: bool) -> tuple[bool, bool]:
        """(network isolated, pids isolated) for a process that may, or may not, use the network."""
        return self.net and not network_allowed, self.pid

    def flags(self, network_allowed: bool) -> int:
        return ((CLONE_NEWNET if self.net and not network_allowed else 0)
                | (CLONE_NEWPID if self.pid else 0))


NONE = Grant()
_TRIES = tuple(Grant(net=True, pid=pid, user=user) for user in (False, True) for pid in (True, False))


@functools.lru_cache(maxsize=1)
def libc():
    """The C library (for unshare, prctl, mount), or None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _write_file(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def enter(grant: Grant, network_allowed: bool) -> bool:
    """``unshare(2)`` this process into ``grant``'s namespaces (the PID one takes its next child).

    Returns whether it succeeded; with ``grant.user`` it maps us to root inside, as
    ``unshare --map-root-user`` does.
    """
    flags = grant.flags(network_allowed)
    if not flags:
        return True
    lib = libc()
    if lib is None:
        return False
    uid, gid = os.getuid(), os.getgid()
    if lib.unshare(flags | (CLONE_NEWUSER if grant.user else 0)) != 0:
        return False
    if grant.user:
        try:
            _write_file("/proc/self/setgroups", "deny")
            _write_file("/proc/self/uid_map", f"0 {uid} 1")
            _write_file("/proc/self/gid_map", f"0 {gid} 1")
        except OSError:
            pass
    return True


def _probe_here() -> int:
    """In a throw-away process: the index in ``_TRIES`` of the first grant that works, or -1."""
    for i, grant in enumerate(_TRIES):
        pid = os.fork()
        if pid == 0:
            os._exit(0 if enter(grant, False) else 1)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) == 0:
            return i
    return -1


@functools.lru_cache(maxsize=1)
def granted() -> Grant:
    """The namespaces this machine grants (probed once per process)."""
    if not sys.platform.startswith("linux"):
        return NONE
    code = "from cambrian.execution.namespaces import _probe_here; print(_probe_here())"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                             env={"PATH": os.environ.get("PATH", ""),
                                  "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
        i = int(out.stdout.strip())
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return NONE
    return _TRIES[i] if 0 <= i < len(_TRIES) else NONE


def unshare_prefix(grant: Grant, network_allowed: bool) -> tuple[str, ...]:
    """The ``unshare`` command prefix that enters ``grant``'s namespaces ('' where none)."""
    exe = shutil.which("unshare")
    if exe is None or not grant.flags(network_allowed):
        return ()
    user = ("--map-root-user",) if grant.user else ()
    net = ("--net",) if grant.net and not network_allowed else ()
    pid = ("--pid", "--fork", "--kill-child") if grant.pid else ()
    return (exe, *user, *net, *pid)
