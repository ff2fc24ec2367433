"""The fused C++ CPU kernels (RMSNorm, residual add + RMSNorm, SwiGLU gate, RoPE + head split)
against pure torch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from cambrian.architectures import build_model, reference_spec
from cambrian.architectures.modules import fused
from cambrian.architectures.modules.common import Rotary

pytestmark = pytest.mark.skipif(not fused.available(), reason="fused C++ kernels did not compile")


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # rows split between threads (the RMSNorm dw partials)
    yield
    torch.set_num_threads(before)


def _rope_reference(qkv, rot, h, hkv):
    qk = rot.apply(qkv[:, :, :h + hkv], seq_dim=1)
    q, k = qk.split([h, hkv], dim=2)
    return q.transpose(1, 2), k.transpose(1, 2), qkv[:, :, h + hkv:].transpose(1, 2)


def test_gradcheck_float64(two_threads):
    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: fused.rms_norm(a, b, 1e-5), (x, w))
    gu = torch.randn(3, 5, 2 * 7, dtype=torch.float64, requires_grad=True) * 4
    assert torch.autograd.gradcheck(fused.swiglu, (gu,))
    rot = Rotary(8, 10000.0)
    cos, sin = rot.half_tables(5, torch.device("cpu"), torch.float64)
    qkv = torch.randn(2, 5, 4 + 2 * 2, 8, dtype=torch.float64, requires_grad=True)  # GQA 4:2
    assert torch.autograd.gradcheck(lambda t: fused.rope_qkv(t, cos, sin, 4, 2), (qkv,))


def test_float32_matches_pure_torch(two_threads):
    torch.manual_seed(0)
    x = torch.randn(4, 70, 48, requires_grad=True)  # 280 rows: two blocks of dw partials
    w = (1 + 0.1 * torch.randn(48)).requires_grad_()
    gy = torch.randn(4, 70, 48)
    out = [fused.rms_norm(x, w, 1e-5), F.rms_norm(x, (48,), w, 1e-5)]
    grads = [torch.autograd.grad(y, (x, w), gy) for y in out]
    torch.testing.assert_close(out[0], out[1])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)

    gu = (3 * torch.randn(4, 50, 2 * 40)).requires_grad_()  # gates well into both tails
    gy = torch.randn(4, 50, 40)
    gate, up = gu.chunk(2, dim=-1)
    out = [fused.swiglu(gu), F.silu(gate) * up]
    grads = [torch.autograd.grad(y, gu, gy)[0] for y in out]
    torch.testing.assert_close(out[0], out[1])
    torch.testing.assert_close(grads[0], grads[1])

    rot = Rotary(16, 10000.0)
    qkv = torch.randn(3, 20, 2 + 2 * 1, 16, requires_grad=True)  # MQA: 2 query heads, 1 kv
    cos, sin = rot.half_tables(20, qkv.device, qkv.dtype)
    outs = [fused.rope_qkv(qkv, cos, sin, 2, 1), _rope_reference(qkv, rot, 2, 1)]
    gys = [torch.randn_like(z) for z in outs[1]]
    for a, b in zip(*outs):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b)
    grads = [torch.autograd.grad(o, qkv, gys)[0] for o in outs]
    torch.testing.assert_close(grads[0], grads[1])


def test_add_rms_norm_gradcheck_float64(two_threads):
    torch.manual_seed(0)
    x, y = (torch.randn(2, 5, 6, dtype=torch.float64, requires_grad=True) for _ in range(2))
    w = torch.randn(6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: fused.add_rms_norm(a, b, c, 1e-5), (x, y, w))
    # only the normed output used (the last layer): the residual gradient comes as None
    assert torch.autograd.gradcheck(lambda a, b, c: fused.add_rms_norm(a, b, c, 1e-5)[1], (x, y, w))
    # only h used
    assert torch.autograd.gradcheck(lambda a, b, c: fused.add_rms_norm(a, b, c, 1e-5)[0], (x, y, w))


def test_add_rms_norm_float32_matches_pure_torch(two_threads):
    torch.manual_seed(0)
    x, y = (torch.randn(4, 70, 48, requires_grad=True) for _ in range(2))  # 280 rows: two dw blocks
    w = (1 + 0.1 * torch.randn(48)).requires_grad_()
    gh, gn = torch.randn(4, 70, 48), torch.randn(4, 70, 48)
    h_ref = x + y
    outs = [fused.add_rms_norm(x, y, w, 1e-5), (h_ref, F.rms_norm(h_ref, (48,), w, 1e-5))]
    grads = [torch.autograd.grad(o, (x, y, w), (gh, gn)) for o in outs]
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_rope_qkv_hands_v_back_as_a_view():
    qkv = torch.randn(2, 8, 4 + 2 * 2, 16)
    cos, sin = Rotary(16, 10000.0).half_tables(8, qkv.device, qkv.dtype)
    q, k, v = fused.rope_qkv(qkv, cos, sin, 4, 2)
    assert v.data_ptr() == qkv[:, :, 6:].data_ptr()
    torch.testing.assert_close(v, qkv[:, :, 6:].transpose(1, 2), rtol=0, atol=0)


def test_llama_training_step_matches_the_pure_torch_path(monkeypatch):
    torch.manual_seed(0)
    spec = reference_spec("llama", d_model=32, n_layers=2, vocab_size=64, max_seq_len=16)
    idx = torch.randint(0, 64, (2, 17))

    def loss_and_grads(model):
        loss = F.cross_entropy(model(idx[:, :-1]).flatten(0, 1), idx[:, 1:].flatten())
        loss.backward()
        return loss.detach(), {n: p.grad for n, p in model.named_parameters()}

    fast = loss_and_grads(build_model(spec, seed=1))
    monkeypatch.setattr(fused, "usable", lambda *tensors: False)
    ref = loss_and_grads(build_model(spec, seed=1))
    torch.testing.assert_close(fast[0], ref[0])
    for name, g in ref[1].items():
        torch.testing.assert_close(fast[1][name], g, rtol=1e-4, atol=1e-5, msg=name)


def test_not_used_for_other_dtypes():
    x = torch.randn(2, 3, 8, dtype=torch.bfloat16)
    assert not fused.usable(x)
    assert not fused.usable(torch.randn(2, 8), torch.randn(8, dtype=torch.float64))
    assert fused.usable(torch.randn(2, 8), torch.randn(8))


def test_failed_build_falls_back_to_pure_torch_with_a_warning(tmp_path):
    code = (
        "import warnings, torch\n"
        "from cambrian.architectures import reference_spec, build_model\n"
        "from cambrian.architectures.modules import fused\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    m = build_model(reference_spec('llama', d_model=32, n_layers=1))\n"
        "    m(torch.randint(0, 256, (1, 20))).sum().backward()\n"
        "assert not fused.available()\n"
        "assert any('fused RMSNorm' in str(x.message) for x in w), [str(x.message) for x in w]\n"
        "print('fallback ok')\n")
    env = {**os.environ, "CAMBRIAN_EXT_DIR": str(tmp_path), "CXX": "/bin/false"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "fallback ok" in out.stdout


def test_builds_into_an_empty_cache_in_seconds(tmp_path):
    # sandboxed workers build into their own cache: no torch headers, so this is quick
    code = ("from cambrian.architectures.modules import fused\n"
            "assert fused.available()\n"
            "print(fused._LIB.name())\n")
    env = {**os.environ, "CAMBRIAN_EXT_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert list(tmp_path.rglob(out.stdout.strip() + ".so"))
