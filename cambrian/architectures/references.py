"""Named reference architectures, as functions of the dims.

- ``llama``: n_layers x (attention, swiglu)
- ``composer``: n_layers x (attention, mlp, mlp), the Composer-style 1:2 attention:MLP stack
- ``mamba``: n_layers x mamba (Mamba-1 blocks carry no separate MLP)
- ``hybrid``: Jamba / Nemotron-H style: mostly Mamba-2 mixers, one attention layer in
  every group of four mixers, each mixer followed by an MLP (swiglu)
- ``mamba_hybrid``: the same layout with Mamba-1 mixers (Jamba's mixer): mostly Mamba-1,
  one attention layer in every group of four mixers, each followed by a swiglu

``n_layers`` counts blocks (a mixer with its channel mixer), not residual layers.
"""

from __future__ import annotations

from typing import Any, Callable

from cambrian.architectures.primitives.base import SpecError
from cambrian.architectures.spec import ArchSpec


def _heads(d_model: int) -> int:
    """Heads of 32 channels up to d_model 256, of 64 above; else the largest divisor that fits."""
    head_dim = 32 if d_model <= 256 else 64
    if d_model % head_dim == 0:
        return d_model // head_dim
    return next(h for h in range(max(1, d_model // head_dim), 0, -1) if d_model % h == 0)


def _attn(d_model: int) -> dict[str, Any]:
    return {"primitive": "attention", "options": {"n_heads": _heads(d_model)}}


def llama(d_model: int, n_layers: int) -> list[dict[str, Any]]:
    return [_attn(d_model), {"primitive": "swiglu"}] * n_layers


def composer(d_model: int, n_layers: int) -> list[dict[str, Any]]:
    return [_attn(d_model), {"primitive": "mlp"}, {"primitive": "mlp"}] * n_layers


def mamba(d_model: int, n_layers: int) -> list[dict[str, Any]]:
    return [{"primitive": "mamba"}] * n_layers


def hybrid(d_model: int, n_layers: int) -> list[dict[str, Any]]:
    head_dim = 32 if (2 * d_model) % 32 == 0 else 2 * d_model
    layers: list[dict[str, Any]] = []
    for i in range(n_layers):
        mixer = _attn(d_model) if i % 4 == 2 else {
            "primitive": "mamba2", "options": {"head_dim": head_dim}}
        layers += [mixer, {"primitive": "swiglu"}]
    return layers


def mamba_hybrid(d_model: int, n_layers: int) -> list[dict[str, Any]]:
    layers: list[dict[str, Any]] = []
    for i in range(n_layers):
        layers += [_attn(d_model) if i % 4 == 2 else {"primitive": "mamba"}, {"primitive": "swiglu"}]
    return layers


REFERENCES: dict[str, Callable[[int, int], list[dict[str, Any]]]] = {
    "llama": llama, "composer": composer, "mamba": mamba, "hybrid": hybrid,
    "mamba_hybrid": mamba_hybrid}


def reference_spec(name: str, d_model: int = 128, n_layers: int = 4, vocab_size: int = 256,
                   max_seq_len: int = 1024, **dims: Any) -> ArchSpec:
    """The named reference spec at these dims; extra ``dims`` set global fields."""
    if name not in REFERENCES:
        raise SpecError(f"unknown reference spec {name!r} (known: {', '.join(REFERENCES)})")
    if n_layers < 1:
        raise SpecError(f"reference spec {name!r}: n_layers must be >= 1, got {n_layers}")
    return ArchSpec.from_dict({"d_model": d_model, "vocab_size": vocab_size,
                               "max_seq_len": max_seq_len, **dims,
                               "layers": REFERENCES[name](d_model, n_layers)})
