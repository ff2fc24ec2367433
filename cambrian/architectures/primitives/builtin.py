"""The built-in primitives: descriptors with options and formulas (no torch here).

Each ``build`` imports its module from :mod:`cambrian.architectures.modules`
only when a model is built, so specs can be validated and counted without torch.
FLOPs follow the usual convention: a multiply-add is 2 FLOPs, forward pass only.
"""

from __future__ import annotations

import math

from cambrian.architectures.primitives.base import Cache, Flops, Option, Primitive, SpecError

# Chunk lengths of the chunked training forms; the "other" FLOPs below count their work.
GLA_CHUNK = 16
SSD_CHUNK = 64


def _swiglu_hidden(d_model: int) -> int:
    """8/3 * d_model rounded up to a multiple of 8, as in Llama."""
    return 8 * math.ceil(8 * d_model / 3 / 8)


class Attention(Primitive):
    name = "attention"
    kind = "token"
    description = ("Multi-head / grouped-query causal softmax attention (SDPA; flash-attn on "
                   "CUDA when installed); `window` makes it sliding-window attention.")
    options = (
        Option("n_heads", int, 4, "query heads", minimum=1),
        Option("n_kv_heads", int, None, "key/value heads (grouped-query); null = n_heads",
               nullable=True, minimum=1),
        Option("head_dim", int, None, "null = d_model / n_heads", nullable=True, minimum=1),
        Option("rope", bool, None, "rotary positions; null = the spec's `pos` is 'rope'",
               nullable=True),
        Option("window", int, None, "null = full causal attention; else each token sees the "
               "last `window` tokens (itself included)", nullable=True, minimum=1),
    )

    def resolve(self, o, spec):
        o = dict(o)
        if o["n_kv_heads"] is None:
            o["n_kv_heads"] = o["n_heads"]
        if o["head_dim"] is None and spec.d_model % o["n_heads"] == 0:
            o["head_dim"] = spec.d_model // o["n_heads"]
        if o["rope"] is None:
            o["rope"] = spec.pos == "rope"
        return o

    def check(self, o, spec, where):
        if o["head_dim"] is None:
            raise SpecError(f"{where}: d_model {spec.d_model} is not divisible by n_heads "
                            f"{o['n_heads']} (set head_dim or change n_heads)")
        if o["n_heads"] % o["n_kv_heads"]:
            raise SpecError(f"{where}: n_heads {o['n_heads']} is not divisible by n_kv_heads "
                            f"{o['n_kv_heads']}")
        if o["rope"] and o["head_dim"] % 2:
            raise SpecError(f"{where}: rope needs an even head_dim, got {o['head_dim']}")

    def params(self, o, d):
        q, kv = o["n_heads"] * o["head_dim"], o["n_kv_heads"] * o["head_dim"]
        return d * q + 2 * d * kv + q * d

    def flops(self, o, d, seq_len):
        ctx = seq_len if o["window"] is None else min(seq_len, o["window"])
        # scores QK^T and the weighted sum AV over `ctx` keys, counted over the full
        # (unmasked) square as SDPA computes it.
        return Flops(2 * self.params(o, d) + 4 * o["n_heads"] * o["head_dim"] * ctx)

    def cache(self, o, d):
        return Cache(per_token=2 * o["n_kv_heads"] * o["head_dim"], max_tokens=o["window"])

    def build(self, o, spec, layer_index):
        from cambrian.architectures.modules.attention import CausalSelfAttention  # torch, at build time
        return CausalSelfAttention(spec.d_model, o["n_heads"], o["n_kv_heads"], o["head_dim"],
                                   rope=o["rope"], window=o["window"], rope_theta=spec.rope_theta)


class LinearAttention(Primitive):
    name = "linear_attention"
    kind = "token"
    description = ("Gated linear attention: GLA (data-dependent per-key decay) or RetNet-style "
                   "retention (fixed per-head decay), chunked form for training.")
    options = (
        Option("n_heads", int, 4, "heads", minimum=1),
        Option("mode", str, "gla", "decay: 'gla' (data-dependent) or 'retention' (fixed)",
               choices=("gla", "retention")),
        Option("key_dim", int, None, "total key dim; null = d_model / 2", nullable=True, minimum=1),
        Option("value_dim", int, None, "total value dim; null = d_model", nullable=True,
               minimum=1),
        Option("gate_rank", int, 16, "rank of the GLA decay projection", minimum=1),
    )

    def resolve(self, o, spec):
        o = dict(o)
        if o["key_dim"] is None:
            o["key_dim"] = max(1, spec.d_model // 2)
        if o["value_dim"] is None:
            o["value_dim"] = spec.d_model
        if o["mode"] == "retention":
            o["gate_rank"] = 0  # unused: normalized so equivalent specs hash the same
        return o

    def check(self, o, spec, where):
        for key in ("key_dim", "value_dim"):
            if o[key] % o["n_heads"]:
                raise SpecError(f"{where}: {key} {o[key]} is not divisible by n_heads "
                                f"{o['n_heads']}")

    def params(self, o, d):
        dk, dv, h = o["key_dim"], o["value_dim"], o["n_heads"]
        n = 2 * d * dk + 2 * d * dv + dv * d + dv // h  # q, k, v, output gate, out, head norm
        if o["mode"] == "gla":
            n += d * o["gate_rank"] + o["gate_rank"] * dk + dk
        return n

    def flops(self, o, d, seq_len):
        dk, dv, h = o["key_dim"], o["value_dim"], o["n_heads"]
        matmul = 2 * (2 * d * dk + 2 * d * dv + dv * d)
        if o["mode"] == "gla":
            matmul += 2 * (d * o["gate_rank"] + o["gate_rank"] * dk)
        c = GLA_CHUNK
        other = 2 * c * (dk + dv) + 4 * dk * dv / h  # intra-chunk square + state read/update
        return Flops(matmul, other)

    def cache(self, o, d):
        return Cache(fixed=o["key_dim"] * o["value_dim"] // o["n_heads"])

    def build(self, o, spec, layer_index):
        from cambrian.architectures.modules.linear_attention import GatedLinearAttention  # torch, at build time
        return GatedLinearAttention(spec.d_model, o["n_heads"], o["key_dim"], o["value_dim"],
                                    mode=o["mode"], gate_rank=o["gate_rank"])


class Mamba(Primitive):
    name = "mamba"
    kind = "token"
    description = ("Mamba-1 selective state space mixer; C++ sequential scan on CPU (pure-torch "
                   "chunked fallback), mamba-ssm's kernel on CUDA when installed.")
    options = (
        Option("d_state", int, 16, "state size per channel", minimum=1),
        Option("expand", int, 2, "inner width = expand * d_model", minimum=1),
        Option("d_conv", int, 4, "causal depthwise conv kernel", minimum=1),
        Option("dt_rank", int, None, "null = ceil(d_model / 16)", nullable=True, minimum=1),
    )

    def resolve(self, o, spec):
        o = dict(o)
        if o["dt_rank"] is None:
            o["dt_rank"] = math.ceil(spec.d_model / 16)
        return o

    def params(self, o, d):
        di, n, r, k = o["expand"] * d, o["d_state"], o["dt_rank"], o["d_conv"]
        return (d * 2 * di + di * k + di + di * (r + 2 * n) + r * di + di + di * n + di
                + di * d)

    def flops(self, o, d, seq_len):
        di, n, r, k = o["expand"] * d, o["d_state"], o["dt_rank"], o["d_conv"]
        matmul = 2 * (d * 2 * di + di * (r + 2 * n) + r * di + di * d) + 2 * di * k
        return Flops(matmul, other=8 * di * n)  # exp(dA), dB*u, h update, C.h per state

    def cache(self, o, d):
        di = o["expand"] * d
        return Cache(fixed=di * o["d_state"] + di * (o["d_conv"] - 1))

    def build(self, o, spec, layer_index):
        from cambrian.architectures.modules.mamba import MambaMixer  # torch, at build time
        return MambaMixer(spec.d_model, o["d_state"], o["expand"], o["d_conv"], o["dt_rank"])


class Mamba2(Primitive):
    name = "mamba2"
    kind = "token"
    description = ("Mamba-2 (SSD): scalar-decay heads, chunked SSD in pure torch, mamba-ssm's "
                   "kernel on CUDA when installed.")
    options = (
        Option("d_state", int, 64, "state size per head dim", minimum=1),
        Option("expand", int, 2, "inner width = expand * d_model", minimum=1),
        Option("head_dim", int, 32, "channels per head", minimum=1),
        Option("d_conv", int, 4, "causal depthwise conv kernel", minimum=1),
        Option("n_groups", int, 1, "groups sharing B and C", minimum=1),
    )

    def check(self, o, spec, where):
        di = o["expand"] * spec.d_model
        if di % o["head_dim"]:
            raise SpecError(f"{where}: inner width {di} (expand*d_model) is not divisible by "
                            f"head_dim {o['head_dim']}")
        if (di // o["head_dim"]) % o["n_groups"]:
            raise SpecError(f"{where}: {di // o['head_dim']} heads are not divisible by n_groups "
                            f"{o['n_groups']}")

    @staticmethod
    def _dims(o, d):
        di = o["expand"] * d
        nh = di // o["head_dim"]
        conv_dim = di + 2 * o["n_groups"] * o["d_state"]
        return di, nh, conv_dim

    def params(self, o, d):
        di, nh, conv_dim = self._dims(o, d)
        k = o["d_conv"]
        return (d * (di + conv_dim + nh) + conv_dim * k + conv_dim + 3 * nh + di + di * d)

    def flops(self, o, d, seq_len):
        di, nh, conv_dim = self._dims(o, d)
        matmul = 2 * (d * (di + conv_dim + nh) + di * d) + 2 * conv_dim * o["d_conv"]
        q, n = SSD_CHUNK, o["d_state"]
        other = 2 * q * (n * o["n_groups"] + di) + 4 * n * di  # diagonal blocks + states in/out
        return Flops(matmul, other)

    def cache(self, o, d):
        di, nh, conv_dim = self._dims(o, d)
        return Cache(fixed=di * o["d_state"] + conv_dim * (o["d_conv"] - 1))

    def build(self, o, spec, layer_index):
        from cambrian.architectures.modules.mamba2 import Mamba2Mixer  # torch, at build time
        return Mamba2Mixer(spec.d_model, o["d_state"], o["expand"], o["head_dim"], o["d_conv"],
                           o["n_groups"], norm_eps=spec.norm_eps)


class ShortConv(Primitive):
    name = "conv"
    kind = "token"
    description = ("Gated short causal convolution (BaseConv / Hyena-style short filter): "
                   "out(conv(u) * g) with [u, g] = in(x).")
    options = (Option("kernel_size", int, 4, "taps of the depthwise causal conv", minimum=1),)

    def params(self, o, d):
        return 3 * d * d + d * o["kernel_size"] + d

    def flops(self, o, d, seq_len):
        return Flops(2 * 3 * d * d + 2 * d * o["kernel_size"])

    def cache(self, o, d):
        return Cache(fixed=d * (o["kernel_size"] - 1))

    def build(self, o, spec, layer_index):
        from cambrian.architectures.modules.conv import GatedShortConv  # torch, at build time
        return GatedShortConv(spec.d_model, o["kernel_size"])


class MLP(Primitive):
    name = "mlp"
    kind = "channel"
    description = "Two-layer MLP, no biases."
    options = (
        Option("hidden", int, None, "null = 4 * d_model", nullable=True, minimum=1),
        Option("activation", str, "gelu", "", choices=("gelu", "relu", "silu", "relu2")),
    )

    def resolve(self, o, spec):
        return {**o, "hidden": o["hidden"] or 4 * spec.d_model}

    def params(self, o, d):
        return 2 * d * o["hidden"]

    def flops(self, o, d, seq_len):
        return Flops(4 * d * o["hidden"])

    def build(self, o, spec, layer_index):
        from cambrian.architectures.modules.mlp import MLP as Module  # torch, at build time
        return Module(spec.d_model, o["hidden"], o["activation"])


class SwiGLU(Primitive):
    name = "swiglu"
    kind = "channel"
    description = "Gated MLP with SiLU gate (Llama), no biases."
    options = (Option("hidden", int, None, "null = 8/3 * d_model rounded up to a multiple of 8",
                      nullable=True, minimum=1),)

    def resolve(self, o, spec):
        return {**o, "hidden": o["hidden"] or _swiglu_hidden(spec.d_model)}

    def params(self, o, d):
        return 3 * d * o["hidden"]

    def flops(self, o, d, seq_len):
        return Flops(6 * d * o["hidden"])

    def build(self, o, spec, layer_index):
        from cambrian.architectures.modules.mlp import SwiGLU as Module  # torch, at build time
        return Module(spec.d_model, o["hidden"])


class MoE(Primitive):
    name = "moe"
    kind = "channel"
    description = "Top-k routed mixture of SwiGLU experts (softmax router, no token dropping)."
    options = (
        Option("n_experts", int, 4, "", minimum=1),
        Option("top_k", int, 2, "experts per token", minimum=1),
        Option("hidden", int, None, "expert hidden width; null = as swiglu", nullable=True,
               minimum=1),
    )

    def resolve(self, o, spec):
        return {**o, "hidden": o["hidden"] or _swiglu_hidden(spec.d_model)}

    def check(self, o, spec, where):
        if o["top_k"] > o["n_experts"]:
            raise SpecError(f"{where}: top_k {o['top_k']} exceeds n_experts {o['n_experts']}")

    def params(self, o, d):
        return d * o["n_experts"] + o["n_experts"] * 3 * d * o["hidden"]

    def flops(self, o, d, seq_len):
        return Flops(2 * d * o["n_experts"] + o["top_k"] * 6 * d * o["hidden"])

    def build(self, o, spec, layer_index):
        from cambrian.architectures.modules.moe import MoE as Module  # torch, at build time
        return Module(spec.d_model, o["n_experts"], o["top_k"], o["hidden"])


BUILTIN_PRIMITIVES: tuple[type[Primitive], ...] = (
    Attention, LinearAttention, Mamba, Mamba2, ShortConv, MLP, SwiGLU, MoE)
