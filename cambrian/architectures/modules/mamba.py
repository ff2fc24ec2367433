"""Mamba-1 mixer (selective SSM), laid out as in the reference implementation."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from cambrian.architectures.modules.common import causal_conv1d, scan_dtype
from cambrian.architectures.modules.selective_scan import selective_scan


class MambaMixer(nn.Module):
    def __init__(self, d_model: int, d_state: int = 16, expand: int = 2, d_conv: int = 4,
                 dt_rank: int | None = None):
        super().__init__()
        di = expand * d_model
        self.d_inner, self.d_state = di, d_state
        self.dt_rank = dt_rank or math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, 2 * di, bias=False)
        self.conv = nn.Conv1d(di, di, d_conv, groups=di, bias=True)
        self.x_proj = nn.Linear(di, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, di, bias=True)
        self.A_log = nn.Parameter(torch.empty(di, d_state))
        self.D = nn.Parameter(torch.empty(di))
        self.out_proj = nn.Linear(di, d_model, bias=False)
        self.out_proj.is_residual_out = True
        self.scan_impl = "auto"  # or "cpp", "chunked", "sequential", "cuda"
        self.reset_special()

    def reset_special(self, *_: float) -> None:
        """Mamba's init for the SSM parameters (S4D-real A, dt in [1e-3, 1e-1])."""
        with torch.no_grad():
            self.A_log.copy_(torch.arange(1, self.d_state + 1, dtype=torch.float32)
                             .repeat(self.d_inner, 1).log())
            self.D.fill_(1.0)
            nn.init.uniform_(self.dt_proj.weight, -self.dt_rank ** -0.5, self.dt_rank ** -0.5)
            dt = torch.exp(torch.rand(self.d_inner) * (math.log(0.1) - math.log(1e-3))
                           + math.log(1e-3)).clamp(min=1e-4)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        xi, z = self.in_proj(x).chunk(2, dim=-1)  # (B, T, di) each
        xi = F.silu(causal_conv1d(xi, self.conv.weight, self.conv.bias))  # (B, T, di)
        dt, Bm, Cm = self.x_proj(xi).split(
            [self.dt_rank, self.d_state, self.d_state], dim=-1)  # (B, T, r), (B, T, N) x2
        delta = F.softplus(self.dt_proj(dt)).transpose(1, 2)  # (B, di, T)
        f = scan_dtype(dtype)
        A = -self.A_log.to(f).exp()  # (di, N)
        xi = xi.transpose(1, 2).to(f)  # (B, di, T): the scans' layout
        y = selective_scan(xi, delta.to(f), A, Bm.to(f), Cm.to(f), self.scan_impl)
        y = torch.addcmul(y, xi, self.D.to(f)[:, None]).to(dtype)  # + D u, (B, di, T)
        return self.out_proj(y.transpose(1, 2) * F.silu(z))
