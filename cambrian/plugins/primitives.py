"""The built-in architecture primitives, offered through the same hook as third-party ones.

The descriptors import no torch (each primitive imports its module when it builds).
"""

from __future__ import annotations

from cambrian import hookimpl
from cambrian.architectures.primitives.builtin import BUILTIN_PRIMITIVES


@hookimpl
def cambrian_primitives():
    return list(BUILTIN_PRIMITIVES)
