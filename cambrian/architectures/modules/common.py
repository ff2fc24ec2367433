"""Small shared pieces: norms, rotary embeddings, causal depthwise conv."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from cambrian.architectures import kernels
from cambrian.architectures.modules import fused


class _RMSNormFn(torch.autograd.Function):
    """RMSNorm with a hand-written backward: F.rms_norm on CPU runs as a chain of
    small ops (pow, mean, rsqrt, muls) each differentiated separately; this saves
    x / rms and does about half the passes over the activations."""

    @staticmethod
    def forward(ctx, x, weight, eps: float):
        r = torch.linalg.vector_norm(x, dim=-1, keepdim=True).square_().div_(x.size(-1)).add_(eps).rsqrt_()
        xhat = x * r  # (..., d)
        ctx.save_for_backward(xhat, weight, r)
        return xhat * weight

    @staticmethod
    def backward(ctx, grad):
        xhat, weight, r = ctx.saved_tensors
        gx = grad * weight
        dw = (grad * xhat).flatten(0, -2).sum(0)
        dx = (gx - xhat * (gx * xhat).mean(-1, keepdim=True)) * r
        return dx, dw, None


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if fused.usable(x, self.weight):  # CPU: the C++ kernel, one pass each way
            return fused.rms_norm(x, self.weight, self.eps)
        if x.is_cuda:  # liger-kernel's triton RMSNorm where installed (kernels.py)
            return kernels.dispatch("rms_norm", x, {
                "liger": lambda: kernels.liger_rms_norm(x, self.weight, self.eps)},
                lambda: F.rms_norm(x, (x.size(-1),), self.weight, self.eps))
        if x.dtype not in (torch.float32, torch.float64):  # autocast on CPU
            return F.rms_norm(x, (x.size(-1),), self.weight, self.eps)
        return _RMSNormFn.apply(x, self.weight, self.eps)


def make_norm(kind: str, dim: int, eps: float) -> nn.Module:
    return RMSNorm(dim, eps) if kind == "rmsnorm" else nn.LayerNorm(dim, eps=eps)


class Rotary:
    """cos/sin tables for RoPE, computed on demand and cached per (T, device, dtype).

    Not a buffer on purpose: nothing to save, and nothing for meta-device loading
    (transformers' from_pretrained) to leave uninitialized. The tables are stored
    full width, with the sign of rotate-half folded into ``sin``, so applying RoPE
    costs two multiplies, one add and one cat of halves; the fused CPU kernel takes
    the half-width ``cos`` and ``sin`` (``half_tables``).
    """

    def __init__(self, head_dim: int, theta: float):
        self.head_dim, self.theta = head_dim, theta
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def tables(self, t: int, device: torch.device, dtype: torch.dtype):
        """(cos, signed sin), each (T, hd): [cos, cos] and [-sin, sin]."""
        return self._tables(t, device, dtype)[:2]

    def half_tables(self, t: int, device: torch.device, dtype: torch.dtype):
        """(cos, sin), each (T, hd / 2), contiguous."""
        return self._tables(t, device, dtype)[2:]

    def _tables(self, t: int, device: torch.device, dtype: torch.dtype):
        key = (t, device, dtype)
        if key not in self._cache:
            inv = 1.0 / (self.theta ** (torch.arange(0, self.head_dim, 2, device=device,
                                                     dtype=torch.float32) / self.head_dim))
            freqs = torch.outer(torch.arange(t, device=device, dtype=torch.float32), inv)
            cos, sin = freqs.cos(), freqs.sin()
            self._cache = {key: (torch.cat([cos, cos], -1).to(dtype),
                                 torch.cat([-sin, sin], -1).to(dtype),
                                 cos.to(dtype).contiguous(), sin.to(dtype).contiguous())}
        return self._cache[key]

    def apply(self, x: torch.Tensor, seq_dim: int = -2) -> torch.Tensor:
        """Rotate the two halves of each head (GPT-NeoX / Llama layout).

        x: (B, H, T, hd) with ``seq_dim=-2``, or (B, T, H, hd) with ``seq_dim=1``.
        """
        cos, sin = self.tables(x.size(seq_dim), x.device, x.dtype)  # (T, hd)
        if seq_dim in (1, -3):
            cos, sin = cos[:, None], sin[:, None]  # (T, 1, hd)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.addcmul(x * cos, torch.cat([x2, x1], dim=-1), sin)


class _ShortCausalConvFn(torch.autograd.Function):
    """Depthwise causal conv in (B, T, C) layout as K shifted multiply-adds.

    On CPU, F.conv1d's depthwise path (mkldnn) spends most of its time in a slow
    backward, and needs (B, C, T) inputs, so a transpose each way. Here each tap is
    one vectorised pass over a contiguous (B, T, C) tensor (the weight is read per
    tap as a contiguous (C,) row), forward and backward.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        t, k = x.size(1), weight.size(-1)
        w = weight.view(-1, k).t().contiguous()  # (K, C): w[j] contiguous, tap j sees x[t - (K-1) + j]
        y = torch.mul(x, w[k - 1]) if bias is None else torch.addcmul(bias, x, w[k - 1])  # (B, T, C)
        for s in range(1, min(k, t)):  # tap k-1-s reads s steps back
            y[:, s:].addcmul_(x[:, :t - s], w[k - 1 - s])
        ctx.save_for_backward(x, w)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        k, t = w.size(0), x.size(1)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = dy * w[k - 1]  # (B, T, C)
            for s in range(1, min(k, t)):
                dx[:, :t - s].addcmul_(dy[:, s:], w[k - 1 - s])
        if ctx.needs_input_grad[1]:
            dw = w.new_zeros(w.shape)  # (K, C); taps further back than T stay 0
            for s in range(min(k, t)):
                dw[k - 1 - s] = (dy[:, s:] * x[:, :t - s]).sum((0, 1))
            dw = dw.t().reshape(w.size(1), 1, k)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = dy.sum((0, 1))
        return dx, dw, db


SHIFTED_CONV_MAX_K = 64  # measured (8 x 128 x 256, 1 thread): 5-10x faster fwd+bwd at K 2-8, 2x at 64


def causal_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Depthwise causal conv. x: (B, T, C), weight: (C, 1, K) -> (B, T, C)."""
    k = weight.size(-1)
    if k <= SHIFTED_CONV_MAX_K and not x.is_cuda and x.dtype == weight.dtype:  # not under autocast
        return _ShortCausalConvFn.apply(x.contiguous(), weight, bias)
    y = F.conv1d(F.pad(x.transpose(1, 2), (k - 1, 0)), weight, bias, groups=x.size(2))  # (B, C, T)
    return y.transpose(1, 2)


def scan_dtype(dtype: torch.dtype) -> torch.dtype:
    """Recurrent states accumulate in fp32 (fp64 stays fp64, for references)."""
    return torch.float64 if dtype == torch.float64 else torch.float32
