"""The built-in architecture primitives, offered through the same hook as third-party ones.

The descriptors import no torch (modules are built lazily), and this module
imports nothing from architectures until the hook is called.
"""

from __future__ import annotations

from cambrian import hookimpl


@hookimpl
def cambrian_primitives():
    from cambrian.architectures.primitives.builtin import BUILTIN_PRIMITIVES

    return list(BUILTIN_PRIMITIVES)
