"""One writer per run directory: an exclusive ``flock`` on ``RUN_DIR/.lock``, and atomic creation.

``run`` and ``resume`` hold the lock for their whole life; a second one fails at once with one
line naming the holder's PID. Readers (``show``, ``report``) take no lock. The kernel drops the
lock when the holder exits, even by SIGKILL, so a killed campaign never leaves a stale lock.

``fcntl.flock`` rather than a lock library: the holder writes its PID into the lock file
itself, which a library that truncates the file on open (filelock does) would erase.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from cambrian.core.errors import CambrianError

LOCK_FILE = ".lock"


class RunDirBusy(CambrianError):
    pass


class RunDirLock:
    """An exclusive, non-blocking lock on a run directory, held until :meth:`release`."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "RunDirLock":
        if self._fd is not None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunDirBusy(f"{self.run_dir} is in use by another campaign (PID {holder}); wait for it "
                             "to finish or stop it, then resume") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor drops the flock

    def __enter__(self) -> "RunDirLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def new_run_dir(base: str | Path) -> Path:
    """Create a fresh run directory at ``base`` (or ``base-2``, ``base-3``, ... if taken) atomically.

    ``mkdir`` without ``exist_ok`` is the atomic step: of two campaigns started in the same
    second with the same default name, each gets its own folder.
    """
    base = Path(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        path = base if i == 1 else base.with_name(f"{base.name}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise CambrianError(f"could not create a fresh run directory beside {base}; name one with --out")

