"""The CPU paths of the Mamba-1, Mamba-2 and short-conv mixers as they were before the
layout rework (commit a35b89f), kept here only so ``bench/mixers.py --before-after`` can
time old against new in one process. Same parameters; forward bodies copied verbatim, and
the C++ selective scan of that commit (``csrc_before/selective_scan.cpp``, (B, D, L)
layout; built once into the same kernel cache, under its own hash).

``before(model)`` switches every mixer of a built model to these forwards in place.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from cambrian.architectures.modules.common import scan_dtype
from cambrian.architectures.modules.conv import GatedShortConv
from cambrian.architectures.modules.cpp_ext import CFLAGS, CppExtension, read_source
from cambrian.architectures.modules.mamba import MambaMixer
from cambrian.architectures.modules.mamba2 import Mamba2Mixer
from cambrian.architectures.primitives.builtin import SSD_CHUNK

_SOURCE = (Path(__file__).parent / "csrc_before" / "selective_scan.cpp").read_text()
_SOURCE = _SOURCE.replace('#include "vexp.h"', read_source("vexp.h").rstrip("\n"))  # as read_source does
_SCAN = CppExtension("cambrian_selective_scan", _SOURCE, ["scan_fwd", "scan_bwd"],
                     what="previous selective scan", fallback="nothing: the bench needs it",
                     cflags=CFLAGS + ["-fno-trapping-math", "-fopenmp"], ldflags=["-fopenmp"])


def _scan_ext():
    ext = _SCAN.load()
    if ext is None:
        raise RuntimeError("the previous C++ selective scan did not build (see the warning)")
    return ext


class _CppScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, Bm, Cm):
        args = [z.contiguous() for z in (u, delta, A, Bm, Cm)]
        ctx.save_for_backward(*args)
        return _scan_ext().scan_fwd(*args)

    @staticmethod
    def backward(ctx, dy):
        return tuple(_scan_ext().scan_bwd(*ctx.saved_tensors, dy.contiguous()))


def causal_conv1d(x, weight, bias):
    """Depthwise causal conv. x: (B, C, T), weight: (C, 1, K) -> (B, C, T)."""
    k = weight.size(-1)
    return F.conv1d(F.pad(x, (k - 1, 0)), weight, bias, groups=x.size(1))


def segsum(x):
    t = x.size(-1)
    x = x[..., None].expand(*x.shape, t)
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
    a = a.reshape(b, c, chunk, h).permute(0, 3, 1, 2)
    a_cum = a.cumsum(dim=-1)
    decay = segsum(a).exp()
    scores = torch.einsum("bclhn,bcshn->bchls", C, B) * decay.permute(0, 2, 1, 3, 4)
    y_diag = torch.einsum("bchls,bcshp->bclhp", scores, x)
    decay_states = (a_cum[..., -1:] - a_cum).exp().permute(0, 2, 3, 1)
    states = torch.einsum("bclhn,bclhp->bchpn", B * decay_states[..., None], x)
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)
    decay_chunk = segsum(F.pad(a_cum[..., -1], (1, 0))).exp()
    states = torch.einsum("bhzc,bchpn->bzhpn", decay_chunk, states)[:, :-1]
    out_decay = a_cum.exp().permute(0, 2, 3, 1)
    y_off = torch.einsum("bclhn,bchpn->bclhp", C, states) * out_decay[..., None]
    return (y_diag + y_off).reshape(b, c * chunk, h, p)[:, :t]


def mamba2_forward(self, x):
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
    dt = F.softplus(dt.to(f) + self.dt_bias.to(f))
    A = -self.A_log.to(f).exp()
    rep = self.n_heads // self.n_groups
    Bh = Bm.to(f).repeat_interleave(rep, dim=2)
    Ch = Cm.to(f).repeat_interleave(rep, dim=2)
    y = ssd_chunked(xs.to(f) * dt[..., None], A * dt, Bh, Ch)
    y = y.to(f) + xs.to(f) * self.D.to(f)[:, None]
    y = y.reshape(b, t, self.d_inner).to(dtype)
    y = self.norm(y * F.silu(z))
    return self.out_proj(y)


def mamba_forward(self, x):
    dtype = x.dtype
    xi, z = self.in_proj(x).chunk(2, dim=-1)
    xi = F.silu(causal_conv1d(xi.transpose(1, 2), self.conv.weight, self.conv.bias))
    dt, Bm, Cm = self.x_proj(xi.transpose(1, 2)).split(
        [self.dt_rank, self.d_state, self.d_state], dim=-1)
    delta = F.softplus(self.dt_proj(dt)).transpose(1, 2)
    f = scan_dtype(dtype)
    A = -self.A_log.to(f).exp()
    xi = xi.to(f)
    y = _CppScan.apply(xi, delta.to(f), A, Bm.to(f), Cm.to(f))
    y = (y + xi * self.D.to(f)[:, None]).to(dtype)
    return self.out_proj(y.transpose(1, 2) * F.silu(z))


def conv_forward(self, x):
    u, g = self.in_proj(x).chunk(2, dim=-1)
    u = causal_conv1d(u.transpose(1, 2), self.conv.weight, self.conv.bias).transpose(1, 2)
    return self.out_proj(u * g)


FORWARDS = {Mamba2Mixer: mamba2_forward, MambaMixer: mamba_forward, GatedShortConv: conv_forward}


def before(model: torch.nn.Module) -> torch.nn.Module:
    """Give every Mamba-1, Mamba-2 and short-conv mixer of ``model`` its old forward."""
    for m in model.modules():
        fwd = FORWARDS.get(type(m))
        if fwd is not None:
            m.forward = fwd.__get__(m)
    return model
