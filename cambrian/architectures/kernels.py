"""Fused GPU kernels from well-kept libraries, each optional, the pure-torch path the fallback.

| op | kernels, in order of preference (CUDA tensors) | fallback |
|---|---|---|
| rms_norm | liger-kernel ``liger_rms_norm`` | ``F.rms_norm`` |
| swiglu | liger-kernel fused gate-up SiLU-mul (``LigerFusedGateUpSiLUMulFunction``, or ``liger_swiglu``) | ``F.silu(g) * u`` |
| rope | liger-kernel ``liger_rope`` (Llama rotate-half layout) | :class:`Rotary` |
| linear_cross_entropy | liger-kernel ``liger_fused_linear_cross_entropy`` (no (N, V) logits) | head + ``F.cross_entropy`` |
| attention | flash-attn ``flash_attn_func`` (fp16/bf16) | SDPA (its own flash backend on CUDA) |
| ssd (Mamba-2) | mamba-ssm ``mamba_chunk_scan_combined``, then fla ``chunk_simple_gla`` | chunked SSD in torch |
| gla | fla ``chunk_gla`` | chunked GLA in torch |
| selective_scan (Mamba-1) | mamba-ssm ``selective_scan_fn`` | C++ scan (CPU), chunked scan |

Nothing here imports a kernel library at import time: they are found with
``importlib.util.find_spec`` and imported on first use, in the process that trains. Some
of them touch the CUDA driver when imported (fla asks triton for the current device), and a
process that forks CUDA workers must not have (docs/sandbox.md).

``CAMBRIAN_KERNELS`` (or :func:`policy`) limits the choice: ``auto`` (default: every
installed library), ``torch`` (pure torch only: the references the GPU tests compare with),
or a comma list of libraries (``liger,fla``). A kernel that raises on first use (a triton
build failure, an unsupported shape) is reported once as a warning and its library is not
used again in this process; out-of-memory errors are raised, not hidden.

What ran is recorded: :func:`note` is called on every dispatch, and :func:`used` gives the
set of kernel names since :func:`reset_used` (the trainer puts it in the run's record).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import inspect
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch

# library -> the module that has to import for it
LIBRARIES = {"liger": "liger_kernel", "fla": "fla", "flash_attn": "flash_attn", "mamba_ssm": "mamba_ssm"}
# op -> the libraries that provide it, best first
OPS: dict[str, tuple[str, ...]] = {
    "rms_norm": ("liger",),
    "swiglu": ("liger",),
    "rope": ("liger",),
    "linear_cross_entropy": ("liger",),
    "attention": ("flash_attn",),
    "ssd": ("mamba_ssm", "fla"),
    "gla": ("fla",),
    "selective_scan": ("mamba_ssm",),
}
HALF_ONLY = {("attention", "flash_attn")}  # kernels that take fp16/bf16 inputs only

_policy: str | None = None  # None: read CAMBRIAN_KERNELS
_broken: dict[str, str] = {}  # library -> why it is not used any more in this process
_used: set[str] = set()


def current_policy() -> str:
    return _policy if _policy is not None else os.environ.get("CAMBRIAN_KERNELS", "auto").strip() or "auto"


@contextlib.contextmanager
def policy(value: str) -> Iterator[None]:
    """Within the block, use only the kernels ``value`` allows (``auto``, ``torch``, ``liger,fla``)."""
    global _policy
    old, _policy = _policy, value
    try:
        yield
    finally:
        _policy = old


def allowed(library: str, value: str | None = None) -> bool:
    value = current_policy() if value is None else value
    if value == "auto":
        return True
    if value == "torch":
        return False
    return library in {v.strip() for v in value.split(",")}


@functools.cache
def installed(library: str) -> bool:
    """Is the library's package on the path? (Found, not imported.)"""
    try:
        return importlib.util.find_spec(LIBRARIES[library]) is not None
    except (ImportError, ValueError):
        return False


def choose(op: str, device_type: str, dtype: torch.dtype, *, available: set[str] | None = None,
           value: str | None = None) -> str:
    """The library that runs ``op`` for tensors on ``device_type`` of ``dtype``, or ``"torch"``.

    Pure given ``available`` (default: installed and not broken here) and the policy
    ``value``: the CPU tests check the choice with made-up sets of installed libraries.
    """
    if device_type != "cuda":
        return "torch"
    if available is None:
        available = {lib for lib in LIBRARIES if installed(lib) and lib not in _broken}
    for lib in OPS[op]:
        if lib not in available or not allowed(lib, value):
            continue
        if (op, lib) in HALF_ONLY and dtype not in (torch.float16, torch.bfloat16):
            continue
        return lib
    return "torch"


def note(name: str) -> None:
    _used.add(name)


def used() -> set[str]:
    return set(_used)


def reset_used() -> None:
    _used.clear()


def broken() -> dict[str, str]:
    return dict(_broken)


def _run(library: str, op: str, kernel: Callable[[], Any], fallback: Callable[[], Any],
         fallback_name: str = "torch") -> Any:
    """Run ``kernel``; on its first failure, warn, stop using ``library`` and run ``fallback``."""
    try:
        out = kernel()
    except torch.OutOfMemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - an optional kernel never fails a run the torch path can do
        _broken[library] = f"{op}: {type(exc).__name__}: {exc}"
        warnings.warn(f"{library} kernel for {op} failed ({type(exc).__name__}: {exc}); "
                      "using the pure-torch path from now on", RuntimeWarning, stacklevel=3)
        note(f"{fallback_name}_{op}")
        return fallback()
    note(f"{library}_{op}")
    return out


def dispatch(op: str, x: torch.Tensor, kernels: dict[str, Callable[[], Any]],
             fallback: Callable[[], Any], fallback_name: str = "torch") -> Any:
    """Run ``op`` on the chosen library's kernel (``kernels[library]``) or on ``fallback``.

    CUDA runs are recorded either way (``liger_rms_norm``, ``torch_rms_norm``, ...).
    """
    lib = choose(op, x.device.type, x.dtype)
    if lib == "torch" or lib not in kernels:
        if x.is_cuda:
            note(f"{fallback_name}_{op}")
        return fallback()
    return _run(lib, op, kernels[lib], fallback, fallback_name)


# ----------------------------------------------------------------------------- the kernels

def _module(name: str):
    return importlib.import_module(name)


def liger_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    from liger_kernel.transformers.functional import liger_rms_norm as fn

    # "llama" casting: the norm in fp32, the output in x's dtype (as F.rms_norm under autocast)
    return fn(x, weight, eps, 0.0, "llama", False)


def liger_swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    """gate_up (..., 2H), gate first -> silu(gate) * up (..., H)."""
    ops = _module("liger_kernel.ops.swiglu")
    fused = getattr(ops, "LigerFusedGateUpSiLUMulFunction", None)  # liger-kernel >= 0.8
    if fused is not None:
        return fused.apply(gate_up)
    gate, up = gate_up.chunk(2, dim=-1)
    return ops.LigerSiLUMulFunction.apply(gate, up)


def liger_rope_qkv(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, h: int, hkv: int):
    """qkv (B, T, h + 2 hkv, hd); cos, sin (T, hd / 2) -> q (B, h, T, hd), k, v (B, hkv, T, hd)."""
    from liger_kernel.transformers.functional import liger_rope

    q = qkv[:, :, :h].transpose(1, 2)  # (B, h, T, hd), liger's logical layout
    k = qkv[:, :, h:h + hkv].transpose(1, 2)
    v = qkv[:, :, h + hkv:].transpose(1, 2)
    # liger reads the first half of full-width (1, T, hd) tables: HF's [c, c] and [s, s]
    cos_full = torch.cat([cos, cos], dim=-1)[None]
    sin_full = torch.cat([sin, sin], dim=-1)[None]
    q, k = liger_rope(q, k, cos_full, sin_full)
    return q, k, v


def liger_linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                               ignore_index: int) -> torch.Tensor:
    """Mean cross-entropy of ``hidden @ weight.T`` (N, V) against targets (N,), logits never stored."""
    from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy as fn

    # one dtype for both: under autocast the master weight is fp32 and the hidden state bf16
    return fn(hidden, weight.to(hidden.dtype), targets, None, ignore_index=ignore_index, reduction="mean")


def flash_attn(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int | None) -> torch.Tensor:
    """q (B, T, H, hd), k, v (B, T, Hkv, hd), causal -> (B, T, H, hd)."""
    from flash_attn import flash_attn_func

    size = (-1, -1) if window is None else (window - 1, 0)
    return flash_attn_func(q, k, v, causal=True, window_size=size)


def mamba_ssm_ssd(x, dt, A, B, C, chunk: int):
    """x (b, T, h, p), dt (b, T, h) after softplus, A (h,), B, C (b, T, g, n) -> y (b, T, h, p)."""
    from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined

    return mamba_chunk_scan_combined(x, dt.to(x.dtype), A, B, C, chunk_size=chunk)


def ssd_as_simple_gla(x, dt, A, B, C):
    """Mamba-2's SSD inputs as simple-GLA inputs: q = C, k = B, v = x * dt, g = A * dt.

    y_t = sum_{s <= t} (C_t . B_s) exp(sum_{s < r <= t} A dt_r) dt_s x_s is simple GLA
    (per-head scalar log decay g) with scale 1. Shapes as in :func:`mamba_ssm_ssd`; B and C
    are repeated from their groups to the heads. -> q, k (b, T, h, n), v (b, T, h, p), g (b, T, h).
    """
    rep = x.size(2) // B.size(2)
    q = C.repeat_interleave(rep, dim=2).to(x.dtype)
    k = B.repeat_interleave(rep, dim=2).to(x.dtype)
    v = x * dt[..., None].to(x.dtype)
    g = A.float() * dt.float()  # <= 0, kept in fp32 (fla accumulates it in fp32)
    return q, k, v, g


def fla_ssd(x, dt, A, B, C):
    """Mamba-2's SSD through fla's ``chunk_simple_gla`` (its default scale is 1 / sqrt(K): pass 1)."""
    from fla.ops.simple_gla import chunk_simple_gla

    q, k, v, g = ssd_as_simple_gla(x, dt, A, B, C)
    o, _ = chunk_simple_gla(q, k, v, g=g, scale=1.0, **_layout_kwargs(chunk_simple_gla))
    return o


def fla_gla(q, k, v, g):
    """q, k, g (B, H, T, dk), v (B, H, T, dv), q already scaled -> (B, H, T, dv)."""
    from fla.ops.gla import chunk_gla

    t = lambda z: z.transpose(1, 2)  # fla's layout: (B, T, H, d)
    o, _ = chunk_gla(t(q), t(k), t(v), t(g).float(), scale=1.0, **_layout_kwargs(chunk_gla))
    return o.transpose(1, 2)


def mamba_ssm_selective_scan(u, delta, A, Bm, Cm):
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

    return selective_scan_fn(u, delta, A, Bm.transpose(1, 2).contiguous(), Cm.transpose(1, 2).contiguous())


@functools.cache
def _layout_kwargs(fn: Callable) -> dict[str, Any]:
    """fla before 0.3 took (B, H, T, d) by default (``head_first=True``): ask for (B, T, H, d)."""
    params = inspect.signature(inspect.unwrap(fn)).parameters
    return {"head_first": False} if "head_first" in params else {}
