"""Which code ran: the git commit of a checkout, else the installed package's version."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


@lru_cache(maxsize=1)
def code_version() -> str:
    """``git 1a2b3c4d5e6f`` (``+ local changes`` when the tree differs), else ``cambrian 0.1.0``."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, timeout=10)
        if commit.returncode == 0 and commit.stdout.strip():
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10)
            changed = " + local changes" if dirty.returncode == 0 and dirty.stdout.strip() else ""
            return f"git {commit.stdout.strip()}{changed}"
    except (OSError, subprocess.SubprocessError):  # no git on this machine
        pass
    return f"cambrian {package_version('cambrian') or 'unknown'}"


def package_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return None
