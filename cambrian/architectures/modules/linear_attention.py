"""Gated linear attention: GLA (data-dependent decay) or RetNet-style retention.

The recurrence per head, with state S (dk x dv) and per-key log decay g_t <= 0:

    S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t,        o_t = q_t S_t

On CUDA flash-linear-attention's ``chunk_gla`` runs where installed (kernels.py).
Training otherwise uses the chunked form (chunks of ``GLA_CHUNK``): a masked C x C attention
inside each chunk plus the carried state between chunks, which is all matmuls.
Decays are taken relative to each chunk's middle so exp() stays in fp32 range
(the GLA log decay is clamped to >= -5 per step, so |exponent| <= 5 * C / 2).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from cambrian.architectures import kernels
from cambrian.architectures.modules.common import RMSNorm, scan_dtype
from cambrian.architectures.primitives.builtin import GLA_CHUNK

MIN_LOG_DECAY = -5.0


def gla_chunked(q, k, v, g, chunk: int = GLA_CHUNK):
    """q, k, g: (B, H, T, dk); v: (B, H, T, dv); g = log decay <= 0 -> (B, H, T, dv)."""
    b, h, t, dk = q.shape
    dv = v.size(-1)
    pad = (-t) % chunk
    if pad:  # zero keys/values and zero decay at the end change nothing before them
        q, k, v, g = (F.pad(z, (0, 0, 0, pad)) for z in (q, k, v, g))
    n = (t + pad) // chunk
    q, k, v, g = (z.reshape(b, h, n, chunk, z.size(-1)) for z in (q, k, v, g))
    cum = g.cumsum(dim=-2)  # (B, H, N, C, dk): log decay from chunk start through step i
    mid = cum[..., chunk // 2: chunk // 2 + 1, :]
    scores = (q * (cum - mid).exp()) @ (k * (mid - cum).exp()).transpose(-1, -2)  # (B,H,N,C,C)
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
    out = scores.masked_fill(~causal, 0.0) @ v  # intra-chunk part (B, H, N, C, dv)
    q_in = q * cum.exp()  # reads the state carried in from earlier chunks
    last = cum[..., -1:, :]  # (B, H, N, 1, dk)
    k_out = k * (last - cum).exp()  # writes into the state passed on
    state = q.new_zeros(b, h, dk, dv)
    inter = []
    for i in range(n):
        inter.append(q_in[:, :, i] @ state)
        state = last[:, :, i].transpose(-1, -2).exp() * state + k_out[:, :, i].transpose(-1, -2) @ v[:, :, i]
    out = out + torch.stack(inter, dim=2)
    return out.reshape(b, h, n * chunk, dv)[:, :, :t]


def gla_sequential(q, k, v, g):
    """The recurrence step by step, elementwise only (reference for tests)."""
    b, h, t, dk = q.shape
    state = q.new_zeros(b, h, dk, v.size(-1))
    outs = []
    for i in range(t):
        state = g[:, :, i, :, None].exp() * state + k[:, :, i, :, None] * v[:, :, i, None, :]
        outs.append((q[:, :, i, :, None] * state).sum(-2))
    return torch.stack(outs, dim=2)


class GatedLinearAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, key_dim: int, value_dim: int, *,
                 mode: str = "gla", gate_rank: int = 16):
        super().__init__()
        self.n_heads, self.mode = n_heads, mode
        self.dk, self.dv = key_dim // n_heads, value_dim // n_heads
        self.q_proj = nn.Linear(d_model, key_dim, bias=False)
        self.k_proj = nn.Linear(d_model, key_dim, bias=False)
        self.v_proj = nn.Linear(d_model, value_dim, bias=False)
        self.g_proj = nn.Linear(d_model, value_dim, bias=False)  # output gate
        self.o_proj = nn.Linear(value_dim, d_model, bias=False)
        self.o_proj.is_residual_out = True
        if mode == "gla":  # low-rank data-dependent decay
            self.decay_down = nn.Linear(d_model, gate_rank, bias=False)
            self.decay_up = nn.Linear(gate_rank, key_dim, bias=True)
        self.head_norm = RMSNorm(self.dv)
        self.chunked = True  # tests switch to the sequential reference

    def log_decay(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        if self.mode == "gla":
            g = F.logsigmoid(self.decay_up(self.decay_down(x))) / 16.0
            g = g.clamp(min=MIN_LOG_DECAY)
            return g.view(b, t, self.n_heads, self.dk).transpose(1, 2)
        # retention: fixed gamma_h = 1 - 2^(-5 - h) per head (RetNet)
        gamma = 1 - 2.0 ** (-5.0 - torch.arange(self.n_heads, device=x.device, dtype=torch.float32))
        return gamma.log().to(x.dtype).view(1, -1, 1, 1).expand(b, -1, t, self.dk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        def heads(z, dim):  # (B, T, H*dim) -> (B, H, T, dim)
            return z.view(b, t, self.n_heads, dim).transpose(1, 2)
        q = heads(self.q_proj(x), self.dk) * (1.0 / math.sqrt(self.dk))
        k, v = heads(self.k_proj(x), self.dk), heads(self.v_proj(x), self.dv)
        g = self.log_decay(x)
        dtype = x.dtype
        q, k, v, g = (z.to(scan_dtype(dtype)) for z in (q, k, v, g))
        if not self.chunked:
            o = gla_sequential(q, k, v, g)
        elif q.is_cuda:  # flash-linear-attention's chunked triton GLA where installed (kernels.py)
            o = kernels.dispatch("gla", q, {"fla": lambda: kernels.fla_gla(q, k, v, g)},
                                 lambda: gla_chunked(q, k, v, g))
        else:
            o = gla_chunked(q, k, v, g)
        o = self.head_norm(o.to(dtype)).transpose(1, 2).reshape(b, t, -1)  # (B, T, dv_total)
        return self.o_proj(o * F.silu(self.g_proj(x)))
