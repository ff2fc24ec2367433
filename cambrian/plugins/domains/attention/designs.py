"""Registered mixer designs: files in a folder that every process (workers included) reads.

``register_design`` copies a design (a node's source, or a file) to
``designs_dir()/<name>.py`` after checking it passed evaluation; the plugin's
``cambrian_primitives`` hook then offers each file there as a
:class:`MixerPrimitive`, so ``{"primitive": "<name>"}`` works in a compose
spec in the campaign process and in its sandboxed evaluation workers.

The folder is ``$CAMBRIAN_PRIMITIVES_DIR`` when set, else ``$HOME/.cambrian/primitives``.
The first process to import this module (the campaign, the CLI) pins that choice in
``$CAMBRIAN_PRIMITIVES_DIR``, which the sandbox passes on, so its workers, whose ``HOME``
is their scratch folder, read the same folder. No passwd lookup: a uid without a passwd
entry (containers, CI) works.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cambrian import NodeStatus, Store
from cambrian.architectures import primitive_names
from cambrian.plugins.domains.attention.primitive import MixerPrimitive

NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def designs_dir() -> Path:
    env = os.environ.get("CAMBRIAN_PRIMITIVES_DIR")
    if env:
        return Path(env)
    home = os.environ.get("HOME")
    if not home:
        raise ValueError("no folder for registered designs: set CAMBRIAN_PRIMITIVES_DIR (or HOME)")
    return Path(home) / ".cambrian" / "primitives"


if "CAMBRIAN_PRIMITIVES_DIR" not in os.environ and os.environ.get("HOME"):
    os.environ["CAMBRIAN_PRIMITIVES_DIR"] = str(designs_dir())  # for the sandboxed workers, see above


def design_primitives(folder: Path | None = None) -> list:
    try:
        folder = folder or designs_dir()
    except ValueError:  # neither CAMBRIAN_PRIMITIVES_DIR nor HOME: no registered designs
        return []
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
    store = Store(run_dir, create=False)
    try:
        node = store.node(node_id)
    finally:
        store.close()
    if node.candidate.kind != "code" or node.status != NodeStatus.DONE:
        raise ValueError(f"node {node_id} is {node.status.value} ({node.error or 'no design'}); "
                         "only a design that passed evaluation can be registered")
    return register_design(node.candidate.content, name, folder, overwrite=overwrite)
