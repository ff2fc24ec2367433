"""Layer-list manipulation shared by the spec operators and the phases (no torch).

Layers are handled in their *minimal* form: only the options that differ from
what the primitive would derive on its own at this width. A canonical spec at
d_model 64 carries ``head_dim: 16`` for 4 heads; its minimal form drops it, so
changing ``n_heads`` or the width re-derives ``head_dim`` instead of freezing it.
"""

from __future__ import annotations

import math
import random
from typing import Any

from cambrian.architectures import ArchSpec, get_primitive
from cambrian.architectures.spec import GLOBAL_OPTIONS

Layer = dict[str, Any]  # {"primitive": name, "options": {...}}


def _draft(spec_dims: dict[str, Any]):
    dims = {o.name: spec_dims.get(o.name, o.default) for o in GLOBAL_OPTIONS}
    return ArchSpec(layers=(), **dims)


def minimal_layers(spec: dict[str, Any]) -> list[Layer]:
    """The layers of a canonical spec with every derivable option removed."""
    draft = _draft(spec)
    out = []
    for layer in spec["layers"]:
        prim = get_primitive(layer["primitive"])
        full = dict(layer.get("options") or {})
        given = dict(full)
        for key in list(given):
            trial = {k: v for k, v in given.items() if k != key}
            try:
                if prim.normalize(trial, draft, "") == prim.normalize(full, draft, ""):
                    given = trial
            except ValueError:
                continue
        out.append({"primitive": layer["primitive"], "options": given})
    return out


def resize(layers: list[Layer], depth: int, mode: str = "stack") -> list[Layer]:
    """The pattern at ``depth`` layers: ``stack`` repeats the whole pattern (abc -> abcabc),
    ``stretch`` repeats each layer in place (abc -> aabbcc); cut to ``depth`` when not a multiple."""
    n = len(layers)
    if mode == "stack":
        return [dict(layers[i % n]) for i in range(depth)]
    if mode == "stretch":
        return [dict(layers[min(n - 1, math.floor(j * n / depth))]) for j in range(depth)]
    raise ValueError(f"resize mode must be 'stack' or 'stretch', got {mode!r}")


# -- option mutations -----------------------------------------------------------------------


def _divisor_heads(d_model: int) -> list[int]:
    return [h for h in (1, 2, 4, 8, 16) if d_model % h == 0 and (d_model // h) % 2 == 0
            and d_model // h >= 8]


def option_values(primitive: str, option: Any, d_model: int, current: Any) -> list[Any]:
    """Plausible new values of one option (the current value excluded)."""
    name = option.name
    if option.choices:
        vals = list(option.choices)
    elif option.type is bool:
        vals = [True, False] + ([None] if option.nullable else [])
    elif name == "n_heads":
        vals = _divisor_heads(d_model)
    elif name == "window":
        vals = [None, 16, 32, 64]
    elif name == "hidden":
        vals = [None, 2 * d_model, 3 * d_model, 4 * d_model]
    elif name in ("n_kv_heads", "head_dim", "dt_rank", "key_dim", "value_dim"):
        vals = [None] if option.nullable else []  # derived from the others: reset only
    elif option.type is int:
        base = current if isinstance(current, int) and current > 0 else (option.default or 1)
        vals = [max(1, base // 2), base * 2]
    elif option.type is float and isinstance(current, (int, float)):
        vals = [current / 2, current * 2]
    else:
        vals = []
    return [v for v in vals if v != current]


def mutate_option(layer: Layer, d_model: int, rng: random.Random) -> Layer | None:
    prim = get_primitive(layer["primitive"])
    choices = [(o, v) for o in prim.options
               for v in option_values(prim.name, o, d_model, (layer.get("options") or {}).get(o.name, o.default))]
    if not choices:
        return None
    opt, value = rng.choice(choices)
    opts = dict(layer.get("options") or {})
    if value is None or value == opt.default:
        opts.pop(opt.name, None)
    else:
        opts[opt.name] = value
    return {"primitive": layer["primitive"], "options": opts}
