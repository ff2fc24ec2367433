"""Mamba-1 selective scan: a compiled C++ scan on CPU, pure-torch paths as fallback.

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t      (per channel d, state n)
    y_t = sum_n C_t[n] * h_t[n]

``selective_scan`` picks mamba-ssm's CUDA kernel for CUDA tensors when installed,
else the C++ extension (compiled once with the system compiler through
``torch.utils.cpp_extension.load_inline`` and cached under
``$CAMBRIAN_EXT_DIR`` or ``~/.cache/cambrian/ext``), else the chunked pure-torch
scan. Its backward is a C++ reverse scan that recomputes the states of one
(batch, channel) row into a small buffer, so nothing of size B*D*T*N is stored.
Set ``CAMBRIAN_NO_CPP_EXT=1`` to force the pure-torch path.
"""

from __future__ import annotations

import torch

from cambrian.architectures import kernels
from cambrian.architectures.modules.cpp_ext import CFLAGS, CppExtension, read_source

CPP_SOURCE = read_source("selective_scan.cpp")  # csrc/selective_scan.cpp

# -fno-trapping-math: gcc 12 vectorises vexp's clamp and floor only with it (values are
# unchanged); -fopenmp: at::parallel_for is inline and runs its rows in parallel only
# when compiled with OpenMP (sharing torch's libgomp).
_EXT = CppExtension("cambrian_selective_scan", CPP_SOURCE, ["scan_fwd", "scan_bwd"],
                    what="selective scan", fallback="the slower pure-torch scan",
                    cflags=CFLAGS + ["-fno-trapping-math", "-fopenmp"], ldflags=["-fopenmp"])


def load_extension():
    """The compiled scan module, or None (with one warning) when it can't be built."""
    return _EXT.load()


class _CppScan(torch.autograd.Function):
    """The kernels take u, delta and dy in (B, L, D), the mixer's layout: the (B, D, L)
    views it passes (transposes of (B, L, D) tensors) then reach them without a copy,
    and y, du and ddelta go back as (B, D, L) views of (B, L, D) tensors."""

    @staticmethod
    def forward(ctx, u, delta, A, Bm, Cm):
        ext = load_extension()
        args = [u.transpose(1, 2).contiguous(), delta.transpose(1, 2).contiguous()]  # (B, L, D)
        args += [z.contiguous() for z in (A, Bm, Cm)]
        ctx.save_for_backward(*args)
        return ext.scan_fwd(*args).transpose(1, 2)  # (B, D, L)

    @staticmethod
    def backward(ctx, dy):
        du, ddelta, dA, dB, dC = load_extension().scan_bwd(*ctx.saved_tensors,
                                                           dy.transpose(1, 2).contiguous())
        return du.transpose(1, 2), ddelta.transpose(1, 2), dA, dB, dC


def scan_cpp(u, delta, A, Bm, Cm):
    """u, delta: (B, D, L), fastest as views of (B, L, D) tensors; A: (D, N); Bm, Cm: (B, L, N)
    -> y (B, D, L), a view of a (B, L, D) tensor."""
    return _CppScan.apply(u, delta, A, Bm, Cm)


def scan_sequential(u, delta, A, Bm, Cm):
    """Step-by-step reference, elementwise only (any dtype; slow)."""
    b, d, length = u.shape
    h = u.new_zeros(b, d, A.size(1))
    ys = []
    for t in range(length):
        dt = delta[:, :, t, None]  # (B, D, 1)
        h = (dt * A).exp() * h + dt * Bm[:, None, t] * u[:, :, t, None]
        ys.append((h * Cm[:, None, t]).sum(-1))
    return torch.stack(ys, dim=-1)


def scan_chunked(u, delta, A, Bm, Cm, chunk: int = 16):
    """Chunked pure-torch scan: closed form inside chunks of 16 steps, a loop across them.

    Inside a chunk h_t = exp(c_t) * (h_0 + sum_{s<=t} exp(-c_s) dB_s u_s) with c the
    running sum of delta*A; chunks of 32 or more overflow exp(-c) in fp32.
    """
    b, d, length = u.shape
    n = A.size(1)
    h = u.new_zeros(b, d, n)
    ys = []
    for s in range(0, length, chunk):
        dt = delta[:, :, s:s + chunk, None]  # (B, D, C, 1)
        cum = (dt * A[:, None, :]).cumsum(dim=2)  # (B, D, C, N), <= 0
        x = dt * Bm[:, None, s:s + chunk] * u[:, :, s:s + chunk, None]  # (B, D, C, N)
        hs = cum.exp() * (h[:, :, None] + (x * (-cum).exp()).cumsum(dim=2))
        ys.append((hs * Cm[:, None, s:s + chunk]).sum(-1))
        h = hs[:, :, -1]
    return torch.cat(ys, dim=-1)


def selective_scan(u, delta, A, Bm, Cm, impl: str = "auto"):
    """Dispatch: ``auto`` (kernel / C++ / chunked), or one of ``cuda``, ``cpp``,
    ``chunked``, ``sequential``."""
    if impl == "auto":
        if u.is_cuda:  # mamba-ssm's kernel where installed (see kernels.py), else the chunked scan
            return kernels.dispatch("selective_scan", u, {
                "mamba_ssm": lambda: kernels.mamba_ssm_selective_scan(u, delta, A, Bm, Cm)},
                lambda: scan_chunked(u, delta, A, Bm, Cm))
        impl = "cpp" if load_extension() is not None else "chunked"
    if impl == "cuda":
        # mamba-ssm layout: u, delta (B, D, L); A (D, N); B, C (B, N, L)
        return kernels.mamba_ssm_selective_scan(u, delta, A, Bm, Cm)
    if impl == "cpp":
        return scan_cpp(u, delta, A, Bm, Cm)
    if impl == "chunked":
        return scan_chunked(u, delta, A, Bm, Cm)
    if impl == "sequential":
        return scan_sequential(u, delta, A, Bm, Cm)
    raise ValueError(f"unknown scan implementation {impl!r}")
