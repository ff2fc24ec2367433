"""Cambrian's built-in plugins, registered exactly like third-party ones.

Each built-in is a module named in cambrian's own ``[project.entry-points.cambrian]``
(pyproject.toml); the plugin manager finds them through the entry points, as it
finds any installed package's. Plugin modules must import cheaply (no torch at
module level) because every evaluation worker loads them.

The plugin side of the primitive registry lives here, where every built-in plugin
passes: the process's plugin manager becomes a source of
:mod:`cambrian.architectures`' one registry, so a primitive offered through the
``cambrian_primitives`` hook is usable in specs as soon as its plugin is registered.
"""

from __future__ import annotations

from typing import Any

from cambrian.architectures.registry import add_source
from cambrian.core.plugins import get_plugin_manager


def plugin_primitives() -> list[Any]:
    """What the ``cambrian_primitives`` hook offers in this process now."""
    return [reg.component for reg in get_plugin_manager().registry()["primitive"].values()]


add_source(plugin_primitives)
