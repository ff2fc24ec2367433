"""Registered mixer designs: files in a folder that every process (workers included) reads.

``register_design`` copies a design (a node's source, or a file) to
``designs_dir()/<name>.py`` after checking it passed evaluation; the plugin's
``cambrian_primitives`` hook then offers each file there as a
:class:`MixerPrimitive`, so ``{"primitive": "<name>"}`` works in a compose
spec in the campaign process and in its sandboxed evaluation workers.

The folder is ``$CAMBRIAN_PRIMITIVES_DIR`` when set, else
``~/.cambrian/primitives`` of the user's passwd home (not ``$HOME``, which the
sandbox points at each worker's scratch directory).
"""

from __future__ import annotations

import os
import pwd
import re
from pathlib import Path

from cambrian.architectures import primitive_names

NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def designs_dir() -> Path:
    env = os.environ.get("CAMBRIAN_PRIMITIVES_DIR")
    if env:
        return Path(env)
    return Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cambrian" / "primitives"


def design_primitives(folder: Path | None = None) -> list:
    from cambrian.plugins.domains.attention.primitive import MixerPrimitive

    folder = folder or designs_dir()
    if not folder.is_dir():
        return []
    return [MixerPrimitive(p.stem, p.resolve()) for p in sorted(folder.glob("*.py")) if NAME.match(p.stem)]


def register_design(source: str, name: str, folder: Path | None = None, *, overwrite: bool = False) -> Path:
    """Write ``source`` as design ``name``; returns the file. The name must be a new primitive name."""
    if not NAME.match(name):
        raise ValueError(f"design name {name!r}: use lower-case letters, digits and _, starting with a letter")
    folder = folder or designs_dir()
    path = folder / f"{name}.py"
    builtin = set(primitive_names()) - {p.stem for p in folder.glob("*.py")} if folder.is_dir() else set(primitive_names())
    if name in builtin:
        raise ValueError(f"{name!r} is already a primitive; choose another name")
    if path.exists() and not overwrite and path.read_text() != source:
        raise ValueError(f"a different design named {name!r} is registered at {path}; pass overwrite")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(source)
    os.replace(tmp, path)
    return path


def register_node(run_dir: str | Path, node_id: str, name: str, folder: Path | None = None,
                  *, overwrite: bool = False) -> Path:
    """Register the design of a finished, valid node of an attention campaign."""
    from cambrian import NodeStatus, Store

    store = Store(run_dir, create=False)
    try:
        node = store.node(node_id)
    finally:
        store.close()
    if node.candidate.kind != "code" or node.status != NodeStatus.DONE:
        raise ValueError(f"node {node_id} is {node.status.value} ({node.error or 'no design'}); "
                         "only a design that passed evaluation can be registered")
    return register_design(node.candidate.content, name, folder, overwrite=overwrite)
