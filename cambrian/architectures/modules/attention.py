"""Causal softmax attention: multi-head, grouped-query, optional sliding window."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from cambrian.architectures import kernels
from cambrian.architectures.modules import fused
from cambrian.architectures.modules.common import Rotary


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, head_dim: int, *,
                 rope: bool = True, window: int | None = None, rope_theta: float = 10000.0):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim, self.window = n_heads, n_kv_heads, head_dim, window
        # q, k and v projections fused into one matmul: H query heads, then Hkv key, Hkv value
        self.qkv_proj = nn.Linear(d_model, (n_heads + 2 * n_kv_heads) * head_dim, bias=False)
        self.o_proj = nn.Linear(n_heads * head_dim, d_model, bias=False)
        self.o_proj.is_residual_out = True
        self.rotary = Rotary(head_dim, rope_theta) if rope else None
        self.impl = "auto"  # "auto" (flash-attn on CUDA in half precision, else SDPA), "sdpa", "math"
        self._masks: dict[tuple, torch.Tensor] = {}

    def _window_mask(self, t: int, device: torch.device) -> torch.Tensor:
        key = (t, device)
        if key not in self._masks:
            i = torch.arange(t, device=device)
            diff = i[:, None] - i[None, :]
            self._masks = {key: (diff >= 0) & (diff < self.window)}  # True = attend
        return self._masks[key]

    def _heads(self, qkv: torch.Tensor):
        """qkv (B, T, h + 2 hkv, hd) -> q (B, h, T, hd), k, v (B, hkv, T, hd), q and k rotated."""
        t = qkv.size(1)
        h, hkv = self.n_heads, self.n_kv_heads
        if self.rotary is not None and fused.usable(qkv):
            # CPU: one C++ pass rotates q and k and lays out the heads (its backward
            # writes d(qkv) directly, with no slice / split / cat gradients)
            cos, sin = self.rotary.half_tables(t, qkv.device, qkv.dtype)
            return fused.rope_qkv(qkv, cos, sin, h, hkv)
        if self.rotary is not None and qkv.is_cuda:  # liger-kernel's triton RoPE where installed
            return kernels.dispatch("rope", qkv, {"liger": lambda: kernels.liger_rope_qkv(
                qkv, *self.rotary.half_tables(t, qkv.device, qkv.dtype), h, hkv)},
                lambda: self._heads_torch(qkv))
        return self._heads_torch(qkv)

    def _heads_torch(self, qkv: torch.Tensor):
        h, hkv = self.n_heads, self.n_kv_heads
        v = qkv[:, :, h + hkv:]  # (B, T, Hkv, hd)
        qk = qkv[:, :, :h + hkv]
        if self.rotary is not None:  # q and k rotated together, in the (B, T, heads, hd) layout
            qk = self.rotary.apply(qk, seq_dim=1)
        q, k = qk.split([h, hkv], dim=2)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, hd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h, hkv = self.n_heads, self.n_kv_heads
        qkv = self.qkv_proj(x).view(b, t, h + 2 * hkv, self.head_dim)
        q, k, v = self._heads(qkv)  # (B, H, T, hd), (B, Hkv, T, hd) x 2
        if self.impl == "auto" and x.is_cuda:  # flash-attn where installed, else SDPA (kernels.py)
            y = kernels.dispatch("attention", q, {"flash_attn": lambda: kernels.flash_attn(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), self.window).reshape(b, t, -1)},
                lambda: self._attend(q, k, v).transpose(1, 2).reshape(b, t, -1), fallback_name="sdpa")
            return self.o_proj(y)
        y = self._attend(q, k, v)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, -1))  # (B, T, H*hd) -> (B, T, d)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Causal attention, (B, H, T, hd) in and out: SDPA, or explicit products (``impl="math"``)."""
        t = q.size(2)
        if self.n_kv_heads != self.n_heads:
            rep = self.n_heads // self.n_kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        if self.impl == "math":  # explicit products: the reference, and what FLOP counters see
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)  # (B, H, T, T)
            allowed = self._window_mask(t, q.device) if self.window else torch.ones(
                t, t, dtype=torch.bool, device=q.device).tril()
            return scores.masked_fill(~allowed, -math.inf).softmax(dim=-1) @ v
        if self.window is None or self.window >= t:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=self._window_mask(t, q.device))
