"""Fast paths against their references: the C++ scan, chunked scans, SDPA vs explicit math."""

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from cambrian.architectures.modules.common import causal_conv1d
from cambrian.architectures.modules.linear_attention import gla_chunked, gla_sequential
from cambrian.architectures.modules.mamba2 import ssd_chunked, ssd_sequential
from cambrian.architectures.modules.selective_scan import (
    load_extension,
    scan_chunked,
    scan_cpp,
    scan_sequential,
)

needs_ext = pytest.mark.skipif(load_extension() is None, reason="C++ scan did not compile")


def scan_inputs(b=2, d=5, length=40, n=4, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(b, d, length, generator=g, dtype=dtype)
    delta = torch.rand(b, d, length, generator=g, dtype=dtype) * 0.5 + 0.01
    A = -torch.rand(d, n, generator=g, dtype=dtype) * 3 - 0.1
    Bm = torch.randn(b, length, n, generator=g, dtype=dtype)
    Cm = torch.randn(b, length, n, generator=g, dtype=dtype)
    return [z.requires_grad_() for z in (u, delta, A, Bm, Cm)]


def values_and_grads(fn, inputs, seed=1):
    y = fn(*inputs)
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=y.dtype)
    grads = torch.autograd.grad(y, inputs, dy)
    return y.detach(), grads


@needs_ext
def test_cpp_scan_matches_reference_values_and_gradients():
    inputs = scan_inputs()
    y_ref, g_ref = values_and_grads(scan_sequential, inputs)
    y, g = values_and_grads(scan_cpp, inputs)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@needs_ext
def test_cpp_scan_gradcheck():
    inputs = scan_inputs(b=2, d=2, length=7, n=3)
    assert torch.autograd.gradcheck(scan_cpp, inputs)


@needs_ext
def test_cpp_scan_fp32_matches_fp64_reference():
    inputs64 = scan_inputs(b=2, d=8, length=256, n=16)
    y_ref = scan_sequential(*inputs64)
    y = scan_cpp(*[z.detach().float() for z in inputs64])
    torch.testing.assert_close(y.double(), y_ref.detach(), rtol=1e-4, atol=1e-4)


@needs_ext
def test_cpp_scan_fp32_gradients_match_fp64_reference():
    # fp32 runs the vectorised polynomial exp (fp64 keeps std::exp): check its gradients too,
    # including large decays (delta * A down to about -40) that underflow towards zero
    inputs64 = scan_inputs(b=2, d=8, length=128, n=16)
    with torch.no_grad():
        inputs64[1].mul_(4.0)
    y_ref = scan_sequential(*inputs64)
    dy = torch.randn(y_ref.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    g_ref = torch.autograd.grad(y_ref, inputs64, dy)
    inputs32 = [z.detach().float().requires_grad_() for z in inputs64]
    y = scan_cpp(*inputs32)
    g = torch.autograd.grad(y, inputs32, dy.float())
    torch.testing.assert_close(y.double(), y_ref.detach(), rtol=1e-4, atol=1e-4)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a.double(), b, rtol=1e-3, atol=1e-3)


def test_chunked_scan_matches_reference():
    inputs = scan_inputs(length=45)  # not a multiple of the chunk
    y_ref, g_ref = values_and_grads(scan_sequential, inputs)
    y, g = values_and_grads(scan_chunked, inputs)
    torch.testing.assert_close(y, y_ref)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("length", [16, 37])
def test_gla_chunked_matches_sequential(length):
    g = torch.Generator().manual_seed(0)
    b, h, dk, dv = 2, 2, 4, 6
    q, k = (torch.randn(b, h, length, dk, generator=g, dtype=torch.float64) for _ in range(2))
    v = torch.randn(b, h, length, dv, generator=g, dtype=torch.float64)
    decay = -torch.rand(b, h, length, dk, generator=g, dtype=torch.float64) * 5  # the clamp range
    inputs = [z.requires_grad_() for z in (q, k, v, decay)]
    y_ref, g_ref = values_and_grads(gla_sequential, inputs)
    y, gr = values_and_grads(gla_chunked, inputs)
    torch.testing.assert_close(y, y_ref)
    for a, c in zip(gr, g_ref):
        torch.testing.assert_close(a, c)


@pytest.mark.parametrize("length, chunk, heads, groups", [
    (32, 8, 3, 1), (29, 8, 3, 3), (29, 8, 4, 2), (12, 64, 2, 1), (70, 16, 4, 4), (64, 64, 6, 2),
    (24, 16, 2, 1), (40, 16, 4, 2)])
def test_ssd_chunked_matches_sequential(length, chunk, heads, groups):
    # T not a multiple of the chunk (29, 70, 24, 40), one chunk (12, 64), two and more, and B, C
    # shared by groups of heads (g < h) against the step-by-step scan: values and gradients
    g = torch.Generator().manual_seed(0)
    b, p, n = 2, 4, 5
    x = torch.randn(b, length, heads, p, generator=g, dtype=torch.float64)
    a = -torch.rand(b, length, heads, generator=g, dtype=torch.float64) * 2
    B, C = (torch.randn(b, length, groups, n, generator=g, dtype=torch.float64) for _ in range(2))
    inputs = [z.requires_grad_() for z in (x, a, B, C)]
    y_ref, g_ref = values_and_grads(ssd_sequential, inputs)
    y, gr = values_and_grads(lambda *z: ssd_chunked(*z, chunk=chunk), inputs)
    torch.testing.assert_close(y, y_ref)
    for u, w in zip(gr, g_ref):
        torch.testing.assert_close(u, w)


def test_decay_matrix_values_and_gradcheck():
    from cambrian.architectures.modules.mamba2 import decay_matrix

    a_cum = (-torch.rand(2, 3, 7, dtype=torch.float64)).cumsum(-1).requires_grad_()
    L = decay_matrix(a_cum)  # (2, 3, 7, 7)
    i, j = torch.tril_indices(7, 7)
    torch.testing.assert_close(L[..., i, j], (a_cum[..., i] - a_cum[..., j]).exp())
    assert (L.triu(1) == 0).all()
    assert torch.autograd.gradcheck(decay_matrix, (a_cum,))


def test_ssd_chunked_fp32_matches_fp64_reference():
    # the decays as differences of running sums (decay_matrix) stay accurate in fp32 at the
    # mixer's chunk (64) with strong decay (a down to -4 per step)
    g = torch.Generator().manual_seed(0)
    b, t, h, p, n, groups = 2, 100, 4, 8, 16, 2
    x = torch.randn(b, t, h, p, generator=g, dtype=torch.float64)
    a = -torch.rand(b, t, h, generator=g, dtype=torch.float64) * 4
    B, C = (torch.randn(b, t, groups, n, generator=g, dtype=torch.float64) for _ in range(2))
    inputs = [z.requires_grad_() for z in (x, a, B, C)]
    y_ref = ssd_sequential(*inputs)
    dy = torch.randn(y_ref.shape, generator=g, dtype=torch.float64)
    g_ref = torch.autograd.grad(y_ref, inputs, dy)
    inputs32 = [z.detach().float().requires_grad_() for z in inputs]
    y = ssd_chunked(*inputs32)
    gr = torch.autograd.grad(y, inputs32, dy.float())
    torch.testing.assert_close(y.double(), y_ref.detach(), rtol=1e-4, atol=1e-4)
    for u, w in zip(gr, g_ref):
        torch.testing.assert_close(u.double(), w, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k, length", [(4, 20), (1, 9), (3, 2), (7, 30)])
def test_causal_conv1d_matches_conv1d(k, length):
    # the shifted multiply-adds (with their hand-written backward) against F.conv1d,
    # including a kernel longer than the sequence
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, length, 6, generator=g, dtype=torch.float64)
    w = torch.randn(6, 1, k, generator=g, dtype=torch.float64)
    bias = torch.randn(6, generator=g, dtype=torch.float64)
    inputs = [z.requires_grad_() for z in (x, w, bias)]

    def reference(x, w, bias):
        return F.conv1d(F.pad(x.transpose(1, 2), (k - 1, 0)), w, bias, groups=6).transpose(1, 2)

    y_ref, g_ref = values_and_grads(reference, inputs)
    y, gr = values_and_grads(causal_conv1d, inputs)
    torch.testing.assert_close(y, y_ref)
    for u, v in zip(gr, g_ref):
        torch.testing.assert_close(u, v)
    assert torch.autograd.gradcheck(causal_conv1d, inputs)
    x_only = [inputs[0], w.detach(), None]  # no bias, weight frozen
    torch.testing.assert_close(causal_conv1d(*x_only), reference(*x_only))


@pytest.mark.parametrize("window", [None, 3])
def test_sdpa_matches_explicit_attention(window):
    from cambrian.architectures.modules.attention import CausalSelfAttention

    torch.manual_seed(0)
    attn = CausalSelfAttention(32, 4, 2, 8, rope=True, window=window).double()
    x = torch.randn(2, 12, 32, dtype=torch.float64)
    y = attn(x)
    attn.impl = "math"
    torch.testing.assert_close(y, attn(x))


def test_failed_compilation_falls_back_to_pure_torch_with_a_warning(tmp_path):
    code = (
        "import warnings, torch\n"
        "from cambrian.architectures import reference_spec, build_model\n"
        "from cambrian.architectures.modules import selective_scan as s\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    m = build_model(reference_spec('mamba', d_model=32, n_layers=1))\n"
        "    m(torch.randint(0, 256, (1, 20))).sum().backward()\n"
        "assert s.load_extension() is None\n"
        "assert any('failed to compile' in str(x.message) for x in w), [str(x.message) for x in w]\n"
        "print('fallback ok')\n")
    env = {**os.environ, "CAMBRIAN_EXT_DIR": str(tmp_path), "CXX": "/bin/false", "CC": "/bin/false"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "fallback ok" in out.stdout
