"""Run untrusted work in a separate, limited process.

Each run gets its own working directory, a scrubbed environment (no API
keys), rlimits on memory, CPU time, file size and processes, a new session
(so a hard wall-clock timeout kills the whole process group) and, where the
OS allows it (``unshare``):

- a fresh network namespace with no interfaces but a downed loopback;
- a fresh PID namespace: the command is its init, so every descendant, even
  one that left the session with ``setsid``, dies when it exits or is killed;
- for code that is not trusted (``unprivileged=True``) and a campaign running
  as root: a drop to a throw-away uid (``setpriv``), which owns only the work
  directory. The rest of the filesystem (the run directory, the store, the
  harness's result file) is then read-only to it, and RLIMIT_NPROC, which root
  ignores, caps its processes and threads. A mount namespace also makes the
  world-writable places read-only to it (/tmp, /var/tmp; its own work directory
  inside them excepted) and gives it an empty /dev/shm.
- for untrusted code, with or without root, a mount namespace in which the run's ``evals/``
  folder is covered but its own work directory: other evaluations' folders are out of sight.

What could not be applied is reported in :attr:`SandboxResult.warnings`.
"""

from __future__ import annotations

import functools
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cambrian.core.config import SandboxLimits
from cambrian.execution import namespaces, seccomp

# Variables a sandboxed process may inherit. Everything else (API keys, tokens, cloud
# credentials, LD_PRELOAD, LD_LIBRARY_PATH, the host's PYTHONPATH) is dropped.
_ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "VIRTUAL_ENV",
              "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CAMBRIAN_LOAD_PLUGINS",
              "CAMBRIAN_DISABLE_PLUGINS", "CAMBRIAN_PRIMITIVES_DIR",  # registered attention designs
              "CUDA_VISIBLE_DEVICES")


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
    pids_isolated: bool = False
    uid: int | None = None  # the throw-away uid it ran as; None: the campaign's own user
    tmp_locked: bool = False  # /tmp, /var/tmp read-only (but its workdir), own /dev/shm
    warnings: tuple[str, ...] = ()  # protections this run lacked, in words (recorded with the node)
    quota_exceeded: bool = False  # killed: its work directory outgrew limits.disk_mb

    @property
    def reason(self) -> str:
        """A readable reason for an unsuccessful run ('' if it exited 0)."""
        if self.timed_out:
            return f"timed out after {self.wall_s:.1f}s (killed)"
        if self.quota_exceeded:
            return "disk quota exceeded (killed): it wrote more than its work directory may hold"
        if self.returncode == 0:
            return ""
        if self.returncode is not None and self.returncode < 0:
            sig = signal.Signals(-self.returncode).name
            hint = {"SIGKILL": " (memory or CPU limit?)", "SIGXCPU": " (CPU-time limit)",
                    "SIGXFSZ": " (file-size limit)", "SIGSEGV": " (crashed)"}.get(sig, "")
            return f"killed by {sig}{hint}"
        last = [ln for ln in self.stderr_tail.strip().splitlines() if ln.strip()]
        return f"exit code {self.returncode}" + (f": {last[-1].strip()}" if last else "")


def _works(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def namespace_prefix(network: bool = False) -> tuple[tuple[str, ...], bool, bool]:
    """(command prefix, network isolated, pids isolated) for the namespaces this OS grants."""
    grant = namespaces.granted()
    prefix = namespaces.unshare_prefix(grant, network)
    if not prefix:
        return (), False, False
    return prefix, *grant.isolated(network)


def _setpriv_exe() -> str:
    return shutil.which("setpriv") or "setpriv"


UID_BASE, UID_SPAN = 40000, 20000  # throw-away uids for unprivileged runs (no passwd entry needed)


@functools.lru_cache(maxsize=1)
def _setpriv() -> str | None:
    """``setpriv`` when this process is root and an unprivileged uid can run Python here."""
    exe = shutil.which("setpriv")
    if exe is None or os.geteuid() != 0:
        return None
    probe = [exe, f"--reuid={UID_BASE}", f"--regid={UID_BASE}", "--clear-groups", "--no-new-privs",
             sys.executable, "-c", "import os; assert os.getuid() != 0"]
    return exe if _works(probe) else None


def _proc_owners() -> dict[int, int]:
    """pid -> uid of every process visible in /proc."""
    owners = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                owners[int(p.name)] = p.stat().st_uid
            except OSError:
                pass
    return owners


def _uids_in_use() -> set[int]:
    return set(_proc_owners().values())


def _pids_of_uid(uid: int) -> list[int]:
    return [pid for pid, owner in _proc_owners().items() if owner == uid]


# Run as root inside a fresh mount namespace (private propagation, so nothing leaks out), in
# the command's own PID namespace with its own /proc (``unshare --mount-proc``), before the uid
# drop: every world-writable directory becomes a read-only bind of itself (still readable), the
# work directory inside them stays writable, /dev/shm is a fresh small tmpfs, and each path to
# hide (hidden data, a task's scoring code and labels, the corpus cache) is covered: a directory
# by an empty read-only tmpfs, a file by /dev/null. Exit 97 if any step fails (the probe below
# makes that unexpected).
# own mount namespace, own /proc (in the new PID namespace), own System V IPC and POSIX message
# queues (a shared-memory segment or queue would otherwise outlive the run and reach the next one)
MOUNT_FLAGS = ("--mount", "--mount-proc", "--ipc")
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/run/lock", "/var/lock", "/dev/mqueue", "/run/shm", "/var/crash")
# Both boxes then confine the command to its own evaluation: the folder that holds every
# evaluation's directories (E, the run's evals/) is covered by an empty tmpfs, the work directory
# bound back at its own path (from the working directory: ``mount -c`` keeps ``.`` uncanonicalised,
# so the kernel binds the directory the shell stands in, not the fresh empty one). Another node's
# folders, its scoring directories included, are then neither listable nor readable, whatever
# their modes, and whatever uid both run as (the same one without root). The tmpfs (root's, mode
# 0755) is not writable by the throw-away uid of the root box; without root the candidate is
# that tmpfs's owner, so the no-root box remounts it read-only ({ro}: one more exec of mount, which
# the root box does not pay).
_CONFINE = """if [ -n "$E" ]; then
  cd "$W" && mount -t tmpfs -o size=4k,mode=0755 tmpfs "$E" && mkdir -p "$W" && mount -c --bind . "$W" \\
    {ro}&& cd "$W" || exit 97
fi
"""
# Both boxes end alike: a fresh size-limited /dev/shm, then the N hidden paths covered.
_SHM_AND_HIDE = """mount -t tmpfs -o size={mb}m,mode=1777 tmpfs /dev/shm || exit 97
while [ "$N" -gt 0 ]; do
  if [ -d "$1" ]; then mount -t tmpfs -o ro,size=4k,mode=0755 tmpfs "$1" || exit 97
  elif [ -e "$1" ]; then mount --bind /dev/null "$1" || exit 97
  fi
  shift; N=$((N - 1))
done
"""
_LOCK_TMP = """W="$1"; E="$2"; N="$3"; shift 3
for d in {dirs}; do
  if [ -d "$d" ] && [ ! -L "$d" ]; then
    mount --bind "$d" "$d" && mount -o remount,bind,ro "$d" || exit 97
  fi
done
case "$W" in /tmp/*|/var/tmp/*) mount --bind "$W" "$W" && mount -o remount,bind,rw "$W" && cd "$W" || exit 97;; esac
""" + _CONFINE.replace("{ro}", "") + _SHM_AND_HIDE + """exec "$@"
"""


# Without root: a user namespace (we are "root" in it, with no power outside), a mount namespace
# in which every mount becomes read-only (the run directory, the store, the home folder ...)
# but the work directory and a fresh /dev/shm, hidden paths covered as above; then every
# capability is dropped (setpriv) before the command runs, so it can't remount anything back.
_USERNS_BOX = """W="$1"; E="$2"; N="$3"; shift 3
for m in $(awk '{print $5}' /proc/self/mountinfo); do
  case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) ;; *) mount -o remount,bind,ro "$m" 2>/dev/null;; esac
done
mount --bind "$W" "$W" && mount -o remount,bind,rw "$W" && cd "$W" || exit 97
""" + _CONFINE.replace("{ro}", '&& mount -o remount,bind,ro "$E" ') + _SHM_AND_HIDE + """for d in / "$(dirname "$W")"; do  # the filesystem and the run directory: no longer writable
  touch "$d/.cambrian-rw-probe" 2>/dev/null && exit 97
done
exec "$@"
"""
_DROP_CAPS = ("--inh-caps=-all", "--bounding-set=-all", "--no-new-privs")


@functools.lru_cache(maxsize=1)
def _userns_box() -> tuple[str, ...] | None:
    """The command prefix of the no-root box (unshare ... sh -c _USERNS_BOX), or None where the OS
    does not grant it: then candidate code can't be isolated from the campaign's user."""
    exe, setpriv = shutil.which("unshare"), shutil.which("setpriv")
    if os.geteuid() == 0 or exe is None or setpriv is None or shutil.which("mount") is None:
        return None
    grant = namespaces.granted()
    if not (grant.pid and grant.net):
        return None
    prefix = (exe, "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child", "--mount",
              "--mount-proc", "--ipc")
    with tempfile.TemporaryDirectory(prefix="cambrian-box-probe-") as tmp:
        work = _probe_work(tmp)
        probe = [*prefix, "/bin/sh", "-c", _USERNS_BOX.replace("{mb}", "1"), "sh", work, evals_root(work), "0",
                 setpriv, *_DROP_CAPS, sys.executable, "-c", "open('/proc/self/status')"]
        return prefix if _works(probe) else None


def _probe_work(tmp: str) -> str:
    """A work directory under an ``evals/`` folder in ``tmp``: the box's probes cover it as in a run."""
    work = Path(tmp) / EVALS / "probe" / "work"
    work.mkdir(parents=True)
    return str(work)


EVALS = "evals"  # RUN/evals/NODE/...: the folder of every evaluation's directories (evaluation.job_dir)


def evals_root(workdir: str) -> str:
    """The folder of all evaluations that holds ``workdir`` (its nearest ancestor named ``evals``),
    covered in the candidate's mount namespace but for ``workdir``; '' where there is none."""
    return next((str(a) for a in Path(workdir).parents if a.name == EVALS), "")


def isolation_available() -> bool:
    """Whether candidate code can run apart from the campaign's user here: a throw-away uid
    (root and setpriv) or the no-root box (user, mount, PID and network namespaces)."""
    return _setpriv() is not None or _userns_box() is not None


def _lock_script(mb: int) -> str:
    return _LOCK_TMP.replace("{dirs}", " ".join(WORLD_WRITABLE)).replace("{mb}", str(mb))


@functools.lru_cache(maxsize=1)
def _lock_tmp_ok() -> bool:
    exe = shutil.which("unshare")
    if exe is None or shutil.which("mount") is None or not os.path.exists("/bin/sh"):
        return False
    with tempfile.TemporaryDirectory(prefix="cambrian-box-probe-") as tmp:
        work = _probe_work(tmp)
        return _works([exe, *MOUNT_FLAGS, "--pid", "--fork", "/bin/sh", "-c", _lock_script(1),
                       "sh", work, evals_root(work), "0", "true"])


def sandbox_uid() -> int | None:
    """A fresh throw-away uid (own RLIMIT_NPROC count), or None where no uid drop is possible.

    Random, not derived from the pid: every worker is pid 1 of its own PID namespace.
    """
    if _setpriv() is None:
        return None
    used = _uids_in_use()
    for _ in range(16):
        uid = UID_BASE + secrets.randbelow(UID_SPAN)
        if uid not in used:
            return uid
    return uid


def kernel_cache_dir() -> str:
    """Where this user's compiled kernels are cached, shared by every run and evaluation.

    Passed to trusted workers as ``CAMBRIAN_EXT_DIR``: their own HOME is their work
    directory, where a cache would be rebuilt (a minute of compiling) per evaluation.
    """
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.environ.get("CAMBRIAN_EXT_DIR") or os.path.join(cache, "cambrian", "ext")


def scrubbed_env(workdir: Path, threads: int, extra: dict[str, str] | None = None, *,
                 trusted: bool = True) -> dict[str, str]:
    """The environment of a sandboxed process: allow-listed variables, its own HOME and TMPDIR.

    Trusted harness code gets the parent's import path (so plugins installed beside it
    resolve); candidate code gets none: its interpreter's own site-packages are enough.
    """
    env = {k: v for k, v in os.environ.items() if k in _ENV_ALLOW}
    if trusted:
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isabs(p))
    tmp = workdir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(workdir), TMPDIR=str(tmp), PYTHONDONTWRITEBYTECODE="1",
               PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", NO_PROXY="*")
    env.update(extra or {})
    return env


_libc = namespaces.libc


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent (thread) exits, even by SIGKILL."""
    libc = _libc() if sys.platform.startswith("linux") else None
    if libc is not None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def lower_priority() -> None:
    """Run this process (and every thread and child it starts) only on CPU time nothing else wants.

    SCHED_IDLE alone is not enough where the kernel groups tasks by session (autogroups, on
    by default in most distributions' kernels): CPU time is shared between sessions first,
    and every evaluation is a session of its own (setsid), so an idle-policy evaluation
    still took a third of the two cores beside two others (27% of its core measured). Its
    session's nice goes to 19 as well: 1.4% (docs/benchmarks.md, "The idle lane").
    Call it after setsid. Raising a nice value needs no privilege."""
    if hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write("19")
    except OSError:  # no autogroups (kernel without them, or switched off): SCHED_IDLE is all it takes
        pass


def set_rlimits(limits: SandboxLimits, count_procs: bool, base_mb: int = 0) -> None:
    """Memory (address space, ``base_mb`` already mapped plus ``memory_mb``), file size, no core
    files, CPU time and, if ``count_procs``, processes; and the idle CPU priority where asked."""
    if limits.idle_priority:
        lower_priority()
    mb = 1024 * 1024
    address_space = (base_mb + limits.memory_mb) * mb
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_mb * mb, limits.file_size_mb * mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.cpu_s is not None:
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))
    if count_procs:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_procs, limits.max_procs))


def _limit(limits: SandboxLimits, drop_uid: int | None, no_keyrings: bool = False):
    """What the child does between fork and exec (built here, in the parent)."""
    libc = _libc()  # dlopen here, in the parent: not in a child forked from a threaded process
    keyring_filter = seccomp.filter_program() if no_keyrings and libc is not None else None

    def apply() -> None:
        os.setsid()
        die_with_parent()  # with the campaign process, even if it is SIGKILLed
        # root ignores RLIMIT_NPROC: counted after the uid drop
        set_rlimits(limits, count_procs=os.getuid() != 0 or drop_uid is not None)
        if keyring_filter is not None:  # candidate code: no kernel keyrings (cambrian/execution/seccomp.py)
            seccomp.install(libc, keyring_filter)

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
                 env: dict[str, str] | None = None, *, unprivileged: bool = False,
                 hide: tuple[str | Path, ...] = ()) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir, self.limits = workdir, limits
        prefix, self.network_isolated, self.pids_isolated = namespace_prefix(limits.network)
        self.uid = sandbox_uid() if unprivileged else None
        self.tmp_locked = False
        self.userns_box = False  # no root: run in the user-namespace box (read-only filesystem)
        self.unprivileged = unprivileged
        self._out, self._err = workdir / "stdout.log", workdir / "stderr.log"
        env = scrubbed_env(workdir, limits.threads, env, trusted=not unprivileged)
        self.quota_exceeded = False
        if self.uid is not None:
            _chown_tree(workdir, self.uid)
            workdir.chmod(0o700)  # another candidate's uid can't read what this one wrote
            cmd = [_setpriv(), f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                   "--no-new-privs", *cmd]
            if self.pids_isolated and _lock_tmp_ok():  # own /proc; no writable world dirs; hidden paths
                prefix = (*prefix, *MOUNT_FLAGS)
                hidden = [os.path.realpath(p) for p in hide]
                real = os.path.realpath(workdir)
                if any(real == h or real.startswith(h + os.sep) for h in hidden):
                    raise ValueError(f"sandbox: {workdir} lies inside a path it hides")
                cmd = ["/bin/sh", "-c", _lock_script(min(limits.file_size_mb, 1024)), "sh",
                       real, evals_root(real), str(len(hidden)), *hidden, *cmd]
                self.tmp_locked = True
        elif unprivileged and _userns_box() is not None:  # no root: the user-namespace box instead
            box = _userns_box()
            prefix = tuple(a for a in box if a != "--net") if limits.network else box
            hidden, real = [os.path.realpath(p) for p in hide], os.path.realpath(workdir)
            cmd = ["/bin/sh", "-c", _USERNS_BOX.replace("{mb}", str(min(limits.file_size_mb, 1024))), "sh",
                   real, evals_root(real), str(len(hidden)), *hidden, _setpriv_exe(), *_DROP_CAPS, *cmd]
            self.network_isolated, self.pids_isolated = not limits.network, True
            self.tmp_locked = self.userns_box = True
        self._start = time.monotonic()
        with open(self._out, "wb") as out, open(self._err, "wb") as err:
            self.proc = subprocess.Popen(
                [*prefix, *cmd], cwd=workdir, stdin=subprocess.DEVNULL, stdout=out,
                stderr=err, env=env, preexec_fn=_limit(limits, self.uid, no_keyrings=unprivileged), close_fds=True,
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

    def _watch_disk(self) -> None:
        """Wait for the end or the timeout; kill the run when its work directory outgrows the quota."""
        deadline = self._start + self.limits.timeout_s
        quota = self.limits.disk_mb * 1024 * 1024
        while self._waiter.is_alive() and time.monotonic() < deadline:
            self._waiter.join(min(DISK_POLL_S, max(0.0, deadline - time.monotonic())))
            if self._waiter.is_alive() and disk_usage(self.workdir) > quota:
                self.quota_exceeded = True
                self.kill()
                return

    def wait(self) -> SandboxResult:
        if self.unprivileged:
            self._watch_disk()
        else:
            self._waiter.join(self.limits.timeout_s)
        timed_out = self._waiter.is_alive() and not self.quota_exceeded
        self.kill() if timed_out else self._kill_leftovers()
        self._waiter.join()
        self._await_group_gone()
        self._kill_uid()
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
            pids_isolated=self.pids_isolated,
            tmp_locked=self.tmp_locked,
            uid=self.uid,
            warnings=tuple(self.warnings()),
            quota_exceeded=self.quota_exceeded,
        )

    def warnings(self) -> list[str]:
        return missing_protections(self.limits, self.network_isolated, self.pids_isolated,
                                   self.uid, self.tmp_locked, self.unprivileged and not self.userns_box)

    def _kill_leftovers(self) -> None:
        # Children left in the group (daemonised forks) die with their parent.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _await_group_gone(self, attempts: int = 250) -> None:
        """Wait (at most ~5 s) until no process of the run's group is left.

        With a PID namespace the direct child is the ``unshare`` wrapper; once it is
        reaped, the killed worker inside may still be tearing down (reparented away from
        us, so it can't be waited for). A run ends when its processes are gone.
        """
        for _ in range(attempts):
            try:
                os.killpg(self.proc.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.02)

    def _kill_uid(self, attempts: int = 100) -> None:
        """Kill every process of this run's throw-away uid and wait until none is left.

        The PID namespace dies asynchronously once its init is killed; this makes
        the end synchronous (and covers systems without PID namespaces).
        """
        if self.uid is None:
            return
        for _ in range(attempts):
            pids = _pids_of_uid(self.uid)
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.02)


def missing_protections(limits: SandboxLimits, network_isolated: bool, pids_isolated: bool,
                        uid: int | None = None, tmp_locked: bool = False,
                        unprivileged: bool = False) -> list[str]:
    """The protections a run lacked, in words (recorded with its node)."""
    out = []
    if not network_isolated and not limits.network:
        out.append("no network namespace: the code could reach the network")
    if not pids_isolated:
        out.append("no PID namespace: a process that leaves the session may outlive the run")
    if uid is not None and not tmp_locked:
        out.append("no mount namespace: /tmp, /var/tmp and /dev/shm stay writable to it, and other "
                   "evaluations' folders visible (only their modes keep its uid out)")
    if unprivileged and uid is None:
        out.append("ran as the campaign's own user (no root to drop from): its writes and "
                   "process count are not contained, and it can read other evaluations' folders")
    return out


DISK_POLL_S = 0.25  # how often a candidate's disk use is measured; RLIMIT_FSIZE bounds one file between


def disk_usage(root: Path) -> int:
    """Bytes allocated under ``root`` (no symlinks followed; files that vanish meanwhile skipped)."""
    total, stack = 0, [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_blocks * 512
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
        except OSError:
            continue
    return total


def _chown_tree(root: Path, uid: int) -> None:
    os.chown(root, uid, uid)
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(base, name), uid, uid, follow_symlinks=False)


def run_sandboxed(cmd: list[str], workdir: Path, limits: SandboxLimits,
                  env: dict[str, str] | None = None, *, unprivileged: bool = False,
                  hide: tuple[str | Path, ...] = ()) -> SandboxResult:
    return SandboxProcess(cmd, workdir, limits, env, unprivileged=unprivileged, hide=hide).wait()
