"""Gated short causal convolution (BaseConv / Hyena-style short filter)."""

from __future__ import annotations

import torch
import torch.nn as nn

from cambrian.architectures.modules.common import causal_conv1d


class GatedShortConv(nn.Module):
    def __init__(self, d_model: int, kernel_size: int):
        super().__init__()
        self.in_proj = nn.Linear(d_model, 2 * d_model, bias=False)
        self.conv = nn.Conv1d(d_model, d_model, kernel_size, groups=d_model, bias=True)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        self.out_proj.is_residual_out = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, g = self.in_proj(x).chunk(2, dim=-1)  # (B, T, d) each
        u = causal_conv1d(u, self.conv.weight, self.conv.bias)  # (B, T, d)
        return self.out_proj(u * g)
