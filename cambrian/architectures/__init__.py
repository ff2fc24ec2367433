"""Architecture building blocks: primitives, specs, counting, the model builder, export.

Validating and counting specs needs no torch; :func:`build_model` imports it, and so
do the submodules that need it (``model``, ``hf``, ``modules``), loaded on first use:
``from cambrian import architectures`` at a module's top stays light, and
``architectures.hf.to_hf(...)`` imports transformers only when it runs.

    from cambrian.architectures import ArchSpec, build_model, count, reference_spec
    spec = reference_spec("llama", d_model=128, n_layers=4, max_seq_len=256)
    model = build_model(spec, seed=0)   # model(idx [B, T]) -> logits [B, T, V]
    count(spec).params
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cambrian.architectures.counting import Counts, LayerCount, count
from cambrian.architectures.primitives.base import Cache, Flops, Option, Primitive, SpecError
from cambrian.architectures.references import REFERENCES, reference_spec
from cambrian.architectures.registry import (add_source, get_primitive, primitive_names,
                                             register_primitive, remove_source, unregister_primitive)
from cambrian.architectures.spec import ArchSpec, LayerSpec

if TYPE_CHECKING:
    from cambrian.architectures.model import CambrianLM


def build_model(spec: "ArchSpec | dict[str, Any]", seed: int = 0) -> "CambrianLM":
    """spec -> causal LM ``nn.Module`` (see :func:`cambrian.architectures.model.build_model`)."""
    from cambrian.architectures.model import build_model as _build  # torch: not with the package

    return _build(spec, seed)


_LAZY = ("model", "hf", "modules")  # torch (and transformers) behind them


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ArchSpec", "LayerSpec", "SpecError", "build_model", "count", "Counts", "LayerCount",
    "reference_spec", "REFERENCES", "register_primitive", "unregister_primitive", "get_primitive",
    "primitive_names", "add_source", "remove_source", "Primitive", "Option", "Flops", "Cache",
]
