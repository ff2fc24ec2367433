"""Mamba-2 mixer (SSD): scalar decay per head, chunked state space duality in pure torch.

The chunked SSD follows the "minimal SSD" listing of the Mamba-2 paper: quadratic
(attention-like) inside chunks of ``SSD_CHUNK`` steps, states passed between chunks.
On CUDA the fused kernels run where installed (see kernels.py): mamba-ssm's
``mamba_chunk_scan_combined``, else flash-linear-attention's ``chunk_simple_gla``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from cambrian.architectures import kernels
from cambrian.architectures.modules.common import RMSNorm, causal_conv1d, scan_dtype
from cambrian.architectures.primitives.builtin import SSD_CHUNK


def segsum(x: torch.Tensor) -> torch.Tensor:
    """(..., T) -> (..., T, T) with out[i, j] = sum_{j < k <= i} x_k, -inf above the diagonal."""
    t = x.size(-1)
    x = x[..., None].expand(*x.shape, t)  # x[..., i, j] = x_i
    x = x.masked_fill(~torch.ones(t, t, dtype=torch.bool, device=x.device).tril(-1), 0)
    out = x.cumsum(dim=-2)
    return out.masked_fill(~torch.ones(t, t, dtype=torch.bool, device=x.device).tril(0), -math.inf)


def ssd_chunked(x, a, B, C, chunk: int = SSD_CHUNK):
    """x: (b, T, h, p) already times dt; a: (b, T, h) = A * dt; B, C: (b, T, h, n)."""
    b, t, h, p = x.shape
    chunk = min(chunk, t)
    pad = (-t) % chunk
    if pad:
        x, B, C = (F.pad(z, (0, 0, 0, 0, 0, pad)) for z in (x, B, C))
        a = F.pad(a, (0, 0, 0, pad))
    c = (t + pad) // chunk
    x, B, C = (z.reshape(b, c, chunk, h, z.size(-1)) for z in (x, B, C))
    a = a.reshape(b, c, chunk, h).permute(0, 3, 1, 2)  # (b, h, c, l)
    a_cum = a.cumsum(dim=-1)
    decay = segsum(a).exp()  # (b, h, c, l, l)
    scores = torch.einsum("bclhn,bcshn->bchls", C, B) * decay.permute(0, 2, 1, 3, 4)
    y_diag = torch.einsum("bchls,bcshp->bclhp", scores, x)
    decay_states = (a_cum[..., -1:] - a_cum).exp().permute(0, 2, 3, 1)  # (b, c, l, h)
    states = torch.einsum("bclhn,bclhp->bchpn", B * decay_states[..., None], x)
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)  # (b, c+1, h, p, n)
    decay_chunk = segsum(F.pad(a_cum[..., -1], (1, 0))).exp()  # (b, h, c+1, c+1)
    states = torch.einsum("bhzc,bchpn->bzhpn", decay_chunk, states)[:, :-1]  # entering each chunk
    out_decay = a_cum.exp().permute(0, 2, 3, 1)  # (b, c, l, h)
    y_off = torch.einsum("bclhn,bchpn->bclhp", C, states) * out_decay[..., None]
    return (y_diag + y_off).reshape(b, c * chunk, h, p)[:, :t]


def ssd_sequential(x, a, B, C):
    """Step-by-step reference, elementwise only."""
    b, t, h, p = x.shape
    state = x.new_zeros(b, h, p, B.size(-1))
    ys = []
    for i in range(t):
        state = a[:, i, :, None, None].exp() * state + x[:, i, :, :, None] * B[:, i, :, None, :]
        ys.append((state * C[:, i, :, None, :]).sum(-1))
    return torch.stack(ys, dim=1)


class Mamba2Mixer(nn.Module):
    def __init__(self, d_model: int, d_state: int = 64, expand: int = 2, head_dim: int = 32,
                 d_conv: int = 4, n_groups: int = 1, norm_eps: float = 1e-5):
        super().__init__()
        di = expand * d_model
        self.d_inner, self.d_state, self.head_dim, self.n_groups = di, d_state, head_dim, n_groups
        self.n_heads = di // head_dim
        self.conv_dim = di + 2 * n_groups * d_state
        self.in_proj = nn.Linear(d_model, di + self.conv_dim + self.n_heads, bias=False)
        self.conv = nn.Conv1d(self.conv_dim, self.conv_dim, d_conv, groups=self.conv_dim, bias=True)
        self.dt_bias = nn.Parameter(torch.empty(self.n_heads))
        self.A_log = nn.Parameter(torch.empty(self.n_heads))
        self.D = nn.Parameter(torch.empty(self.n_heads))
        self.norm = RMSNorm(di, norm_eps)
        self.out_proj = nn.Linear(di, d_model, bias=False)
        self.out_proj.is_residual_out = True
        self.ssd_impl = "auto"  # or "chunked", "sequential", "cuda" (mamba-ssm), "fla"
        self.reset_special()

    def reset_special(self, *_: float) -> None:
        with torch.no_grad():
            self.A_log.copy_(torch.empty(self.n_heads).uniform_(1, 16).log())
            self.D.fill_(1.0)
            dt = torch.exp(torch.rand(self.n_heads) * (math.log(0.1) - math.log(1e-3))
                           + math.log(1e-3)).clamp(min=1e-4)
            self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        dtype = x.dtype
        z, xbc, dt = self.in_proj(x).split([self.d_inner, self.conv_dim, self.n_heads], dim=-1)
        xbc = F.silu(causal_conv1d(xbc.transpose(1, 2), self.conv.weight, self.conv.bias)).transpose(1, 2)
        xs, Bm, Cm = xbc.split([self.d_inner, self.n_groups * self.d_state,
                                self.n_groups * self.d_state], dim=-1)
        xs = xs.reshape(b, t, self.n_heads, self.head_dim)
        Bm = Bm.reshape(b, t, self.n_groups, self.d_state)
        Cm = Cm.reshape(b, t, self.n_groups, self.d_state)
        f = scan_dtype(dtype)
        dt = F.softplus(dt.to(f) + self.dt_bias.to(f))  # (B, T, H)
        A = -self.A_log.to(f).exp()  # (H,)
        impl = self.ssd_impl

        def torch_ssd(fn=ssd_sequential if impl == "sequential" else ssd_chunked):
            rep = self.n_heads // self.n_groups  # heads per group share B and C
            Bh = Bm.to(f).repeat_interleave(rep, dim=2)
            Ch = Cm.to(f).repeat_interleave(rep, dim=2)
            return fn(xs.to(f) * dt[..., None], A * dt, Bh, Ch)  # (B, T, H, P)

        if impl == "auto" and x.is_cuda:
            y = kernels.dispatch("ssd", xs, {
                "mamba_ssm": lambda: kernels.mamba_ssm_ssd(xs, dt, A, Bm, Cm, SSD_CHUNK),
                "fla": lambda: kernels.fla_ssd(xs, dt, A, Bm, Cm)}, torch_ssd)
        elif impl == "cuda":
            y = kernels.mamba_ssm_ssd(xs, dt, A, Bm, Cm, SSD_CHUNK)
        elif impl == "fla":
            y = kernels.fla_ssd(xs, dt, A, Bm, Cm)
        else:
            y = torch_ssd()
        y = y.to(f) + xs.to(f) * self.D.to(f)[:, None]
        y = y.reshape(b, t, self.d_inner).to(dtype)
        y = self.norm(y * F.silu(z))  # gated RMSNorm
        return self.out_proj(y)
