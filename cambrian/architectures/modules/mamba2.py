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


class _DecayMatrixFn(torch.autograd.Function):
    """exp(a_cum_i - a_cum_j) for j <= i, 0 above the diagonal: (..., T) -> (..., T, T).

    The difference of running sums, as mamba-ssm's kernels compute it (one subtraction
    instead of the minimal listing's (T, T) cumsum per row), built in place. The
    backward is one multiply and two row / column sums: the output is already 0 where
    masked, so no mask pass and no negation over (T, T) as autograd's chain takes."""

    @staticmethod
    def forward(ctx, a_cum):
        t = a_cum.size(-1)
        L = a_cum[..., :, None] - a_cum[..., None, :]  # (..., T, T)
        above = torch.ones(t, t, dtype=torch.bool, device=a_cum.device).triu(1)  # microseconds: not cached
        L.masked_fill_(above, -math.inf).exp_()
        ctx.save_for_backward(L)
        return L

    @staticmethod
    def backward(ctx, grad):
        (L,) = ctx.saved_tensors
        g = grad * L  # (..., T, T), d/d(a_cum_i - a_cum_j)
        return g.sum(-1) - g.sum(-2)


def decay_matrix(a_cum: torch.Tensor) -> torch.Tensor:
    """(..., T) running sums of log decays -> (..., T, T): exp(a_cum_i - a_cum_j) for
    j <= i (the decay from step j to step i), 0 above the diagonal."""
    return _DecayMatrixFn.apply(a_cum)


def ssd_chunked(x, a, B, C, chunk: int = SSD_CHUNK):
    """x: (b, T, h, p) already times dt; a: (b, T, h) = A * dt; B, C: (b, T, g, n), h % g == 0.

    Every tensor is put in the layout its matmul wants once (heads before time), so each
    einsum of the paper's listing is one plain batched matmul on contiguous operands: on
    CPU, bmm on permuted views copies or takes a slow strided path. B and C are shared
    by the r = h / g heads of a group, so C.B is computed once per group and the states
    of a group's heads are one (r*p, l) @ (l, n) matmul, instead of repeating B and C
    over heads. No state enters the first chunk and the last chunk's state is not used,
    so neither is computed (at T = 2 chunks, half the state work of the listing)."""
    b, t, h, p = x.shape
    g, n = B.shape[2:]
    r = h // g
    chunk = min(chunk, t)
    pad = (-t) % chunk
    if pad:
        x, B, C = (F.pad(z, (0, 0, 0, 0, 0, pad)) for z in (x, B, C))
        a = F.pad(a, (0, 0, 0, pad))
    c, l = (t + pad) // chunk, chunk
    xh = x.view(b, c, l, h, p).permute(0, 1, 3, 2, 4).contiguous()  # (b, c, h, l, p)
    Bg = B.reshape(b, c, l, g, n).permute(0, 1, 3, 2, 4)  # (b, c, g, l, n)
    Cg = C.reshape(b, c, l, g, n).permute(0, 1, 3, 2, 4)  # (b, c, g, l, n)
    a_cum = a.view(b, c, l, h).permute(0, 1, 3, 2).cumsum(-1)  # (b, c, h, l)
    # inside chunks: attention-like, scores = (C B^T) * decay, causal
    CB = Cg @ Bg.transpose(-1, -2)  # (b, c, g, l, s), once per group
    scores = decay_matrix(a_cum).view(b, c, g, r, l, l) * CB[:, :, :, None]  # (b, c, g, r, l, s)
    y = scores.view(b, c, h, l, l) @ xh  # (b, c, h, l, p)
    if c > 1:  # states pass between chunks; the first gets none, the last one's leaves the sequence
        # the state chunk j < c-1 leaves: sum_l exp(a_cum_last - a_cum_l) x_l B_l^T
        a_out = a_cum[:, :-1]  # (b, c-1, h, l)
        xd = xh[:, :-1] * (a_out[..., -1:] - a_out).exp()[..., None]  # (b, c-1, h, l, p)
        xd = xd.view(b, c - 1, g, r, l, p).transpose(-1, -2).reshape(b, c - 1, g, r * p, l)
        states = (xd @ Bg[:, :-1]).view(b, c - 1, h, p, n)
        # the state entering chunk z = 1 .. c-1: sum_{j < z} exp(total decay of chunks j+1 .. z-1) states_j
        totals = F.pad(a_cum[:, 1:-1, :, -1].transpose(1, 2), (1, 0)).cumsum(-1)  # (b, h, c-1)
        states_in = torch.einsum("bhzj,bjhpn->bzhpn", decay_matrix(totals), states)  # (b, c-1, h, p, n)
        # its contribution inside the chunk: exp(a_cum_l) C_l states_in
        y_off = Cg[:, 1:] @ states_in.reshape(b, c - 1, g, r * p, n).transpose(-1, -2)  # (b, c-1, g, l, r*p)
        y_off = y_off.view(b, c - 1, g, l, r, p).permute(0, 1, 2, 4, 3, 5).reshape(b, c - 1, h, l, p)
        y[:, 1:].addcmul_(y_off, a_cum[:, 1:].exp()[..., None])  # (b, c-1, h, l, p)
    return y.permute(0, 1, 3, 2, 4).reshape(b, c * l, h, p)[:, :t]


def ssd_sequential(x, a, B, C):
    """Step-by-step reference, elementwise only. Shapes as ssd_chunked's."""
    b, t, h, p = x.shape
    B, C = (z.repeat_interleave(h // z.size(2), dim=2) for z in (B, C))  # (b, T, h, n)
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
        xbc = F.silu(causal_conv1d(xbc, self.conv.weight, self.conv.bias))  # (B, T, conv_dim)
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
            return fn(xs.to(f) * dt[..., None], A * dt, Bm.to(f), Cm.to(f))  # (B, T, H, P)

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
        y = torch.addcmul(y.to(f), xs.to(f), self.D.to(f)[:, None])  # + D x, one pass
        y = y.reshape(b, t, self.d_inner).to(dtype)
        y = self.norm(y * F.silu(z))  # gated RMSNorm
        return self.out_proj(y)
