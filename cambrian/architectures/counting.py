"""Analytic counts of a spec: parameters, forward FLOPs per token, cache sizes.

Conventions: a multiply-add is 2 FLOPs; ``flops_per_token`` is the forward pass
at ``seq_len`` (attention cost grows with context), including the output head;
training costs about 3x that. ``kv_cache_bytes_per_token`` is how much decoding
memory grows per token of context (full-attention KV caches);
``state_bytes`` is the whole decoding cache of one sequence of ``seq_len``
tokens (KV caches, sliding windows, recurrent and conv states), and
``state_bytes_per_token`` is that divided by ``seq_len``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cambrian.architectures.registry import get_primitive
from cambrian.architectures.spec import ArchSpec


@dataclass(frozen=True)
class LayerCount:
    index: int
    primitive: str
    params: int  # the mixer and its pre-norm
    flops_per_token: float
    matmul_flops_per_token: float
    state_elements: int  # decoding cache at seq_len
    kv_elements_per_token: int  # growth per token of context


@dataclass(frozen=True)
class Counts:
    params: int
    embedding_params: int  # token embedding, plus the output head when untied
    non_embedding_params: int
    flops_per_token: float
    seq_len: int
    kv_cache_bytes_per_token: int
    state_bytes: int
    state_bytes_per_token: float
    bytes_per_element: int
    layers: tuple[LayerCount, ...]

    @property
    def training_flops_per_token(self) -> float:
        """Forward + backward, the usual 3x of the forward pass."""
        return 3.0 * self.flops_per_token

    # Aliases for readers who think in KV caches.
    @property
    def kv_cache_per_token(self) -> int:
        return self.kv_cache_bytes_per_token


def norm_params(spec: ArchSpec) -> int:
    return spec.d_model * (2 if spec.norm == "layernorm" else 1)


def count(spec: ArchSpec, seq_len: int | None = None, bytes_per_element: int = 2) -> Counts:
    """Count ``spec`` at ``seq_len`` (default ``spec.max_seq_len``); caches in bf16 bytes."""
    t = seq_len or spec.max_seq_len
    d = spec.d_model
    layers = []
    for i, layer in enumerate(spec.layers):
        prim = get_primitive(layer.primitive)
        fl = prim.flops(layer.options, d, t)
        cache = prim.cache(layer.options, d)
        layers.append(LayerCount(i, layer.primitive, prim.params(layer.options, d) + norm_params(spec),
                                 float(fl.total), float(fl.matmul), cache.elements(t),
                                 cache.per_token if cache.max_tokens is None else 0))
    embedding = spec.vocab_size * d * (1 if spec.tie_embeddings else 2)
    body = sum(lc.params for lc in layers) + norm_params(spec)
    flops = sum(lc.flops_per_token for lc in layers) + 2.0 * d * spec.vocab_size
    state = sum(lc.state_elements for lc in layers) * bytes_per_element
    return Counts(
        params=body + embedding, embedding_params=embedding, non_embedding_params=body,
        flops_per_token=flops, seq_len=t,
        kv_cache_bytes_per_token=sum(lc.kv_elements_per_token for lc in layers) * bytes_per_element,
        state_bytes=state, state_bytes_per_token=state / t, bytes_per_element=bytes_per_element,
        layers=tuple(layers))
