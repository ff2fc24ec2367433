"""Run directories for tests whose candidates run as a throw-away uid.

pytest's temporary folders are mode 0700 and every pytest session resets its
/tmp/pytest-of-<user> to 0700 when it starts, so a dropped uid cannot reach a
path inside them (it still works in its own working directory, but libraries
that resolve absolute paths, such as tempfile's TMPDIR, fail). Campaign run
directories are normally under a 0755 project folder; these tests use folders
of their own beside pytest's tree instead, enterable (0711) by other uids.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def open_tmp_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="cambrian-tests-"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def open_dir(root: Path, name: str) -> Path:
    """A new folder ``name``-N under ``root`` that other uids can enter."""
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
    path.chmod(0o711)
    return path


@pytest.fixture
def open_tmp_path(open_tmp_root: Path, request) -> Path:
    return open_dir(open_tmp_root, request.node.name[:40])
