"""Fused CPU kernels for the llama-style block: RMSNorm, SwiGLU's silu(g) * u, RoPE.

On CPU, torch runs each of these as a chain of small elementwise ops (and their
autograd as more of them, plus zero-fills and cats for chunk/slice backwards);
these C++ kernels do each in one pass over the activations, forward and backward:

- ``rms_norm(x, w, eps)``: y = x / sqrt(mean(x^2) + eps) * w; saves x and the (N,)
  reciprocal rms, recomputes x_hat in the backward.
- ``add_rms_norm(x, y, w, eps)``: a pre-norm model's residual add and the next norm,
  h = x + y and rms_norm(h, w), in one pass; its backward adds the residual path's
  gradient in the same pass (no separate add forward, no gradient accumulation).
- ``swiglu(gu)``: gu (..., 2H), gate then up, -> silu(gate) * up (..., H); keeps
  sigmoid(gate) so the backward computes no exp, and writes d(gu) as one tensor (no
  cat of the two halves).
- ``rope_qkv(qkv, cos, sin, h, hkv)``: the fused projection's output (B, T, h + 2 hkv,
  hd) -> q (B, h, T, hd), k, v (B, hkv, T, hd), q and k rotated (Llama's rotate-half
  layout); q and k are stored (B, T, heads, hd), as nanoGPT's views are, so attention's
  output comes back in that layout and merging heads needs no copy; v is a view of
  qkv (no copy). The backward writes d(qkv) as one tensor.

float32 and float64 only (float64 serves gradcheck). The C++ includes no torch
header: ``SharedLibrary`` compiles it in about a second (so sandboxed workers, each
with its own cache, can build it) and calls it through ctypes on contiguous
tensors' pointers, with OpenMP loops over rows on ``torch.get_num_threads()``
threads. ``available()`` is False where the build failed or ``CAMBRIAN_NO_CPP_EXT``
is set; callers keep their pure-torch path for that case, for CUDA and for other
dtypes.
"""

from __future__ import annotations

import ctypes

import torch

from cambrian.architectures.modules.cpp_ext import CFLAGS, read_source, SharedLibrary

CPP_SOURCE = read_source("fused_ops.cpp")  # csrc/fused_ops.cpp

# -fopenmp: the row loops run on OpenMP threads, as many as torch's intra-op threads
# (the process shares torch's own libgomp). -fno-trapping-math: without it gcc 12 won't
# vectorise vexp's clamp and floor (values are unchanged).
_P, _I, _D, _N = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double, ctypes.c_int
_SIGNATURES = {}
for _sfx in ("f32", "f64"):
    _SIGNATURES.update({
        f"rms_norm_fwd_{_sfx}": (None, [_P, _P, _P, _P, _I, _I, _D, _N]),
        f"rms_norm_bwd_{_sfx}": (None, [_P, _P, _P, _P, _P, _P, _P, _I, _I, _I]),
        f"add_rms_norm_fwd_{_sfx}": (None, [_P, _P, _P, _P, _P, _P, _I, _I, _D, _N]),
        f"swiglu_fwd_{_sfx}": (None, [_P, _P, _P, _I, _I, _N]),
        f"swiglu_bwd_{_sfx}": (None, [_P, _P, _P, _P, _I, _I, _N]),
        f"rope_qk_fwd_{_sfx}": (None, [_P, _P, _P, _P, _P, _I, _I, _I, _I, _I, _N]),
        f"rope_qkv_bwd_{_sfx}": (None, [_P, _P, _P, _P, _P, _P, _I, _I, _I, _I, _I, _N]),
    })
_LIB = SharedLibrary("cambrian_fused_ops", CPP_SOURCE, _SIGNATURES,
                     what="fused RMSNorm / SwiGLU / RoPE kernels", fallback="their pure-torch versions",
                     cflags=CFLAGS + ["-fno-trapping-math", "-fopenmp"])


def available() -> bool:
    return _LIB.load() is not None


def usable(*tensors: torch.Tensor) -> bool:
    """True when the kernels apply: CPU tensors of one dtype, float32 or float64, built library."""
    dtype = tensors[0].dtype
    return (dtype in (torch.float32, torch.float64)
            and all(t.device.type == "cpu" and t.dtype == dtype for t in tensors)
            and available())


def _fn(name: str, t: torch.Tensor):
    return getattr(_LIB.load(), f"{name}_{'f64' if t.dtype == torch.float64 else 'f32'}")


def _ptr(t: torch.Tensor) -> int:
    return t.data_ptr()


class _RMSNormFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps: float):
        x2 = x.contiguous().view(-1, x.size(-1))  # (N, D)
        w = weight.contiguous()
        y, rstd = torch.empty_like(x2), x2.new_empty(x2.size(0))
        _fn("rms_norm_fwd", x2)(_ptr(x2), _ptr(w), _ptr(y), _ptr(rstd), *x2.shape, eps,
                                torch.get_num_threads())
        ctx.save_for_backward(x2, w, rstd)
        return y.view(x.shape)

    @staticmethod
    def backward(ctx, dy):
        x2, w, rstd = ctx.saved_tensors
        dy2 = dy.contiguous().view(x2.shape)
        n, d = x2.shape
        blocks = max(1, min(torch.get_num_threads(), n // 128))  # a dw partial row per block
        dx, dw_part = torch.empty_like(x2), x2.new_zeros(blocks, d)
        _fn("rms_norm_bwd", x2)(_ptr(dy2), None, _ptr(x2), _ptr(w), _ptr(rstd), _ptr(dx),
                                _ptr(dw_part), n, d, blocks)
        return dx.view(dy.shape), dw_part.sum(0), None


class _AddRMSNormFn(torch.autograd.Function):
    """(x, y) -> (h = x + y, rmsnorm(h) * w): a pre-norm model's residual add and the next
    layer's norm. Both of x's and y's gradients are dh + the norm's dx, computed as one."""

    @staticmethod
    def forward(ctx, x, y, weight, eps: float):
        shape = x.shape
        x2, y2 = x.contiguous().view(-1, shape[-1]), y.contiguous().view(-1, shape[-1])  # (N, D)
        w = weight.contiguous()
        h, out, rstd = torch.empty_like(x2), torch.empty_like(x2), x2.new_empty(x2.size(0))
        _fn("add_rms_norm_fwd", x2)(_ptr(x2), _ptr(y2), _ptr(w), _ptr(h), _ptr(out), _ptr(rstd),
                                    *x2.shape, eps, torch.get_num_threads())
        ctx.save_for_backward(h, w, rstd)
        ctx.shape = shape
        ctx.set_materialize_grads(False)  # the last layer's h is unused: no zeros to add
        return h.view(shape), out.view(shape)

    @staticmethod
    def backward(ctx, dh, dout):
        h, w, rstd = ctx.saved_tensors
        n, d = h.shape
        if dout is None:
            dout = h.new_zeros(n, d)
        dout = dout.contiguous().view(n, d)
        dres = None if dh is None else dh.contiguous().view(n, d)
        blocks = max(1, min(torch.get_num_threads(), n // 128))
        dx, dw_part = torch.empty_like(h), h.new_zeros(blocks, d)
        _fn("rms_norm_bwd", h)(_ptr(dout), None if dres is None else _ptr(dres), _ptr(h), _ptr(w),
                               _ptr(rstd), _ptr(dx), _ptr(dw_part), n, d, blocks)
        dx = dx.view(ctx.shape)
        return dx, dx, dw_part.sum(0), None  # one tensor for both, as AddBackward does


class _SwiGLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gu):
        gu2 = gu.contiguous().view(-1, gu.size(-1))  # (N, 2H)
        n, hidden = gu2.size(0), gu2.size(1) // 2
        out, sig = gu2.new_empty(n, hidden), gu2.new_empty(n, hidden)
        _fn("swiglu_fwd", gu2)(_ptr(gu2), _ptr(out), _ptr(sig), n, hidden, torch.get_num_threads())
        ctx.save_for_backward(gu2, sig)  # what torch's silu * mul keeps too: three (N, H)
        return out.view(*gu.shape[:-1], hidden)

    @staticmethod
    def backward(ctx, dout):
        gu2, sig = ctx.saved_tensors
        n, hidden = gu2.size(0), gu2.size(1) // 2
        d = dout.contiguous().view(n, hidden)
        dgu = torch.empty_like(gu2)
        _fn("swiglu_bwd", gu2)(_ptr(d), _ptr(gu2), _ptr(sig), _ptr(dgu), n, hidden,
                               torch.get_num_threads())
        return dgu.view(*dout.shape[:-1], gu2.size(-1))


class _RopeQKVFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, qkv, cos, sin, h: int, hkv: int):  # -> (B, T, heads, hd) x 3
        qkv = qkv.contiguous()
        b, t, _, hd = qkv.shape
        q, k = qkv.new_empty(b, t, h, hd), qkv.new_empty(b, t, hkv, hd)
        _fn("rope_qk_fwd", qkv)(_ptr(qkv), _ptr(cos), _ptr(sin), _ptr(q), _ptr(k),
                                b * t, t, h, hkv, hd, torch.get_num_threads())
        ctx.save_for_backward(cos, sin)
        ctx.heads = (h, hkv)
        return q, k, qkv[:, :, h + hkv:]  # v: a view of the projection, no copy (as nanoGPT's split)

    @staticmethod
    def backward(ctx, dq, dk, dv):
        cos, sin = ctx.saved_tensors
        h, hkv = ctx.heads
        # outputs the loss didn't use come as zeros (autograd materialises them)
        dq, dk, dv = (g.contiguous() for g in (dq, dk, dv))
        b, t, _, hd = dq.shape
        dqkv = dq.new_empty(b, t, h + 2 * hkv, hd)
        _fn("rope_qkv_bwd", dq)(_ptr(dq), _ptr(dk), _ptr(dv), _ptr(cos), _ptr(sin), _ptr(dqkv),
                                b * t, t, h, hkv, hd, torch.get_num_threads())
        return dqkv, None, None, None, None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last dim. x: (..., D), weight: (D,)."""
    return _RMSNormFn.apply(x, weight, eps)


def add_rms_norm(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor,
                 eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """x, y: (..., D) -> (h = x + y, rms_norm(h, weight, eps)), each (..., D)."""
    return _AddRMSNormFn.apply(x, y, weight, eps)


def swiglu(gu: torch.Tensor) -> torch.Tensor:
    """(..., 2H) gate then up -> silu(gate) * up (..., H)."""
    return _SwiGLUFn.apply(gu)


def rope_qkv(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, h: int, hkv: int):
    """qkv (B, T, h + 2 hkv, hd); cos, sin (T, hd/2) -> q (B, h, T, hd), k, v (B, hkv, T, hd)."""
    return tuple(z.transpose(1, 2) for z in _RopeQKVFn.apply(qkv, cos, sin, h, hkv))
