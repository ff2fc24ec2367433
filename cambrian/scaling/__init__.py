"""Scaling: data, synthetic tasks, the trainer, the train-and-score pipeline, fits, the ladder.

Most submodules import torch, so none is imported with the package: plugins write
``from cambrian import scaling`` at their top and use ``scaling.trainer``,
``scaling.data``, ... ; each submodule is imported on first use.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

_SUBMODULES = frozenset(m.name for m in pkgutil.iter_modules(__path__))


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(_SUBMODULES | set(globals()))
