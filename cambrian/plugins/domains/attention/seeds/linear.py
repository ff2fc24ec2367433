"""Causal linear attention (Katharopoulos et al. 2020): feature map elu+1, running sums."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int = 4, **kw):
        super().__init__()
        assert d_model % n_heads == 0
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)
        q, k, v = (t.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2) for t in (q, k, v))
        q, k = F.elu(q) + 1, F.elu(k) + 1  # positive features, (B, H, T, hd)
        # causal form as a masked quadratic product: exact and fast at CPU-sized T
        scores = (q @ k.transpose(-1, -2)).tril()  # (B, H, T, T)
        y = (scores @ v) / (scores.sum(-1, keepdim=True) + 1e-6)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))
