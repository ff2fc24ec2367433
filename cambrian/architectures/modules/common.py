"""Small shared pieces: norms, rotary embeddings, causal depthwise conv."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.size(-1),), self.weight, self.eps)


def make_norm(kind: str, dim: int, eps: float) -> nn.Module:
    return RMSNorm(dim, eps) if kind == "rmsnorm" else nn.LayerNorm(dim, eps=eps)


class Rotary:
    """cos/sin tables for RoPE, computed on demand and cached per (T, device, dtype).

    Not a buffer on purpose: nothing to save, and nothing for meta-device loading
    (transformers' from_pretrained) to leave uninitialized.
    """

    def __init__(self, head_dim: int, theta: float):
        self.head_dim, self.theta = head_dim, theta
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def tables(self, t: int, device: torch.device, dtype: torch.dtype):
        key = (t, device, dtype)
        if key not in self._cache:
            inv = 1.0 / (self.theta ** (torch.arange(0, self.head_dim, 2, device=device,
                                                     dtype=torch.float32) / self.head_dim))
            freqs = torch.outer(torch.arange(t, device=device, dtype=torch.float32), inv)
            self._cache = {key: (freqs.cos().to(dtype), freqs.sin().to(dtype))}
        return self._cache[key]

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, H, T, hd); rotate the two halves of each head (GPT-NeoX / Llama layout)
        cos, sin = self.tables(x.size(-2), x.device, x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def causal_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Depthwise causal conv. x: (B, C, T), weight: (C, 1, K) -> (B, C, T)."""
    k = weight.size(-1)
    return F.conv1d(F.pad(x, (k - 1, 0)), weight, bias, groups=x.size(1))


def scan_dtype(dtype: torch.dtype) -> torch.dtype:
    """Recurrent states accumulate in fp32 (fp64 stays fp64, for references)."""
    return torch.float64 if dtype == torch.float64 else torch.float32
