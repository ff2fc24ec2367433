"""Option mutations for the spec operators.

Layers are handled in their *minimal* form (:func:`cambrian.scaling.ladder.minimal_layers`):
only the options that differ from what the primitive would derive on its own at this
width, so changing ``n_heads`` re-derives ``head_dim`` instead of freezing it. Rescaling a
pattern (:func:`~cambrian.scaling.ladder.resize`, :func:`~cambrian.scaling.ladder.at_rung`)
lives in the ladder, the one place for it.
"""

from __future__ import annotations

import random
from typing import Any

from cambrian.architectures import get_primitive
from cambrian.scaling.ladder import Layer

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


# The options that set a layer's width: the inner width of a Mamba or Mamba-2 mixer and the
# hidden width of an MLP. A "width" edit changes one of these only: at the default proxy the
# Nemotron-style stack with its first Mamba-2 at expand 4 leads it by 0.04-0.06 bpb
# (docs/benchmarks.md, "Width edits"), and an edit drawn from every option of a layer makes
# that change once in 56 draws, a width edit once in 14.
WIDTH_OPTIONS = ("expand", "hidden")


def has_width(layer: Layer) -> bool:
    return any(o.name in WIDTH_OPTIONS for o in get_primitive(layer["primitive"]).options)


def mutate_option(layer: Layer, d_model: int, rng: random.Random,
                  names: tuple[str, ...] | None = None) -> Layer | None:
    """``layer`` with one option changed to another plausible value (one of ``names`` when
    given), or None when it has no such option."""
    prim = get_primitive(layer["primitive"])
    choices = [(o, v) for o in prim.options if names is None or o.name in names
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
