"""Run directories for tests whose candidates run as a throw-away uid.

pytest's temporary folders are mode 0700, so a dropped uid cannot reach a path
inside them (it still works in its own working directory, but libraries that
resolve absolute paths, such as tempfile's TMPDIR, fail). Campaign run
directories are normally under a 0755 project folder; tests open the chain.
"""

from __future__ import annotations

import os
from pathlib import Path


def traversable_dir(path: Path) -> Path:
    """Make ``path`` and its parents up to the filesystem root enterable (o+x) and return it."""
    for p in [path, *path.parents]:
        try:
            mode = p.stat().st_mode
            if not mode & 0o001:
                os.chmod(p, mode | 0o011)
        except PermissionError:
            break
    return path
