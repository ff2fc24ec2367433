"""Kernel selection (which library runs which op, given what is importable), lazy imports, and
the fallback when a kernel fails. The kernels' values and gradients on CUDA are checked in
test_kernels_gpu.py."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from cambrian.architectures import kernels

ALL = set(kernels.LIBRARIES)


@pytest.mark.parametrize("op, available, dtype, want", [
    ("rms_norm", ALL, torch.float32, "liger"),
    ("rms_norm", ALL - {"liger"}, torch.float32, "torch"),
    ("swiglu", {"liger"}, torch.bfloat16, "liger"),
    ("rope", {"fla"}, torch.bfloat16, "torch"),
    ("linear_cross_entropy", {"liger"}, torch.bfloat16, "liger"),
    ("attention", ALL, torch.bfloat16, "flash_attn"),
    ("attention", ALL, torch.float32, "torch"),  # flash-attn takes half precision only: SDPA
    ("attention", ALL - {"flash_attn"}, torch.bfloat16, "torch"),
    ("ssd", ALL, torch.bfloat16, "mamba_ssm"),  # mamba-ssm first, then fla
    ("ssd", {"fla", "liger"}, torch.bfloat16, "fla"),
    ("ssd", {"liger"}, torch.bfloat16, "torch"),
    ("gla", {"fla"}, torch.float32, "fla"),
    ("selective_scan", {"fla"}, torch.float32, "torch"),
    ("selective_scan", {"mamba_ssm"}, torch.float32, "mamba_ssm"),
])
def test_choice_on_cuda_given_what_is_installed(op, available, dtype, want):
    assert kernels.choose(op, "cuda", dtype, available=available, value="auto") == want


def test_cpu_tensors_never_take_a_gpu_kernel():
    for op in kernels.OPS:
        assert kernels.choose(op, "cpu", torch.bfloat16, available=ALL, value="auto") == "torch"


def test_policy_limits_the_choice():
    assert kernels.choose("ssd", "cuda", torch.bfloat16, available=ALL, value="torch") == "torch"
    assert kernels.choose("ssd", "cuda", torch.bfloat16, available=ALL, value="fla,liger") == "fla"
    assert kernels.choose("rms_norm", "cuda", torch.float32, available=ALL, value="fla") == "torch"
    with kernels.policy("torch"):
        assert kernels.current_policy() == "torch"
        assert kernels.choose("rms_norm", "cuda", torch.float32, available=ALL) == "torch"
    assert kernels.current_policy() == os.environ.get("CAMBRIAN_KERNELS", "auto")


def test_every_op_falls_back_to_torch_when_nothing_is_installed():
    for op in kernels.OPS:
        assert kernels.choose(op, "cuda", torch.bfloat16, available=set(), value="auto") == "torch"


def test_a_failing_kernel_warns_once_falls_back_and_is_not_used_again(monkeypatch):
    monkeypatch.setattr(kernels, "_broken", {})
    kernels.reset_used()

    def bad():
        raise RuntimeError("triton could not compile")

    with pytest.warns(RuntimeWarning, match="liger kernel for rms_norm failed"):
        out = kernels._run("liger", "rms_norm", bad, lambda: "torch result")
    assert out == "torch result"
    assert "liger" in kernels.broken()
    assert "torch_rms_norm" in kernels.used()
    # broken libraries drop out of the default choice
    assert kernels.choose("rms_norm", "cuda", torch.float32) == "torch"
    assert kernels._run("liger", "swiglu", lambda: 1, lambda: 2) == 1 and "liger_swiglu" in kernels.used()


def test_out_of_memory_is_raised_not_hidden(monkeypatch):
    monkeypatch.setattr(kernels, "_broken", {})

    def oom():
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        kernels._run("liger", "rms_norm", oom, lambda: None)
    assert "liger" not in kernels.broken()


def test_kernel_libraries_are_not_imported_by_the_models_or_the_fork_server_preload(tmp_path):
    """Importing a kernel library may start the CUDA driver (fla asks triton for the device); the
    fork server must not, so nothing it preloads imports one. Fake libraries that record their
    import stand in for the real ones."""
    marker = tmp_path / "imported"
    for lib in kernels.LIBRARIES.values():
        pkg = tmp_path / "fake" / lib
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(f"open({str(marker)!r}, 'a').write({lib!r} + '\\n')\n")
    code = textwrap.dedent("""
        import importlib
        from cambrian.execution.forkserver import DEFAULT_PRELOAD
        from cambrian.plugins.domains.compose.domain import ComposeDomain
        for entry in DEFAULT_PRELOAD + ComposeDomain.preload:
            module, _, func = entry.partition(":")
            m = importlib.import_module(module)
            if func:
                getattr(m, func)()
        import torch
        from cambrian.architectures import build_model, kernels, reference_spec
        for name in ("llama", "hybrid"):
            m = build_model(reference_spec(name, d_model=32, n_layers=2, max_seq_len=16))
            m(torch.zeros(1, 8, dtype=torch.long))
        assert all(kernels.installed(lib) for lib in kernels.LIBRARIES), "the fakes are found"
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"), *sys.path])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert not marker.exists(), f"imported: {marker.read_text()}"


def _fla_naive(name: str):
    """fla's pure-torch reference module, loaded from its file (fla's package imports triton)."""
    spec = importlib.util.find_spec("fla")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("flash-linear-attention (fla-core) is not installed")
    pytest.importorskip("einops")
    path = os.path.join(spec.submodule_search_locations[0], "ops", name, "naive.py")
    loader = importlib.util.spec_from_file_location(f"fla_naive_{name}", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


def test_ssd_as_simple_gla_matches_fla_reference():
    """The mapping kernels.fla_ssd hands to fla (q = C, k = B, v = x dt, g = A dt, scale 1),
    checked on CPU through fla's own naive chunked simple-GLA against Cambrian's chunked SSD."""
    naive = _fla_naive("simple_gla").naive_chunk_simple_gla
    from cambrian.architectures.modules.mamba2 import ssd_chunked

    g = torch.Generator().manual_seed(0)
    b, t, h, p, n, groups = 2, 100, 4, 8, 16, 2
    x = torch.randn(b, t, h, p, generator=g, dtype=torch.float64)
    dt = torch.rand(b, t, h, generator=g, dtype=torch.float64) * 0.3
    A = -torch.rand(h, generator=g, dtype=torch.float64) * 3
    B = torch.randn(b, t, groups, n, generator=g, dtype=torch.float64)
    C = torch.randn(b, t, groups, n, generator=g, dtype=torch.float64)
    q, k, v, gate = kernels.ssd_as_simple_gla(x, dt, A, B, C)
    rep = h // groups
    ref = ssd_chunked(x * dt[..., None], A * dt, B.repeat_interleave(rep, 2), C.repeat_interleave(rep, 2))
    out, _ = naive(q.double(), k.double(), v.double(), gate.double(), scale=1.0)
    torch.testing.assert_close(out.double(), ref, atol=1e-4, rtol=1e-4)


def test_gla_layout_matches_fla_reference():
    """kernels.fla_gla's layout: Cambrian's (B, H, T, d) with q pre-scaled, fla's (B, T, H, d)."""
    naive = _fla_naive("gla").naive_recurrent_gla
    from cambrian.architectures.modules.linear_attention import gla_chunked

    g = torch.Generator().manual_seed(1)
    b, h, t, dk, dv = 2, 2, 70, 8, 8
    q, k = (torch.randn(b, h, t, dk, generator=g) for _ in range(2))
    v = torch.randn(b, h, t, dv, generator=g)
    gk = -torch.rand(b, h, t, dk, generator=g) * 0.5
    ref = gla_chunked(q, k, v, gk)
    tr = lambda z: z.transpose(1, 2)
    out, _ = naive(tr(q) * dk ** 0.5, tr(k), tr(v), tr(gk))  # the naive reference scales by dk^-0.5
    torch.testing.assert_close(tr(out), ref, atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------- the wrappers' layouts
# The wrappers in kernels.py against stand-ins for the libraries' functions that compute what
# their documentation says (liger: HF's RoPE on (B, H, T, hd) with (1, T, hd) tables, SiLU-mul,
# RMSNorm, linear + cross-entropy; fla: its own naive references behind the real signatures).
# This checks argument order, layouts and scales on CPU; the triton kernels themselves run in
# test_kernels_gpu.py.

def _fake_modules(monkeypatch, modules: dict[str, dict]):
    import types

    for name, attrs in modules.items():
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, mod)


def _fake_liger(monkeypatch):
    import torch.nn.functional as F

    def rotate_half(x):
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)

    def liger_rope(q, k, cos, sin, position_ids=None, unsqueeze_dim=1):
        # q (B, H, T, hd), cos (1, T, hd): transformers' apply_rotary_pos_emb, what liger computes
        assert q.dim() == 4 and cos.shape == (1, q.size(2), q.size(3))
        cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin

    def liger_rms_norm(X, W, eps, offset=0.0, casting_mode="llama", in_place=True):
        return F.rms_norm(X, (X.size(-1),), W + offset, eps)

    def liger_flce(input, weight, target, bias=None, ce_weight=None, ignore_index=-100, lse_square_scale=0.0,
                   label_smoothing=0.0, reduction="mean", **_):
        assert input.dim() == 2 and weight.shape[1] == input.shape[1] and target.dim() == 1
        return F.cross_entropy(input @ weight.t(), target, ignore_index=ignore_index, reduction=reduction)

    class FusedGateUp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, y, in_place=False):
            ctx.save_for_backward(y)
            g, u = y.chunk(2, dim=-1)  # gate first, as liger's kernel reads it
            return F.silu(g) * u

        @staticmethod
        def backward(ctx, dc):
            (y,) = ctx.saved_tensors
            with torch.enable_grad():
                y = y.detach().requires_grad_()
                g, u = y.chunk(2, dim=-1)
                (F.silu(g) * u).backward(dc)
            return y.grad, None

    _fake_modules(monkeypatch, {
        "liger_kernel": {}, "liger_kernel.transformers": {}, "liger_kernel.ops": {},
        "liger_kernel.transformers.functional": {"liger_rope": liger_rope, "liger_rms_norm": liger_rms_norm,
                                                 "liger_fused_linear_cross_entropy": liger_flce},
        "liger_kernel.ops.swiglu": {"LigerFusedGateUpSiLUMulFunction": FusedGateUp},
    })


def test_liger_wrappers_layouts(monkeypatch):
    _fake_liger(monkeypatch)
    import torch.nn.functional as F

    from cambrian.architectures.modules.attention import CausalSelfAttention
    from cambrian.architectures.modules.mlp import _swiglu

    g = torch.Generator().manual_seed(0)
    attn = CausalSelfAttention(64, 4, 2, 16, rope=True)
    qkv = torch.randn(2, 12, 4 + 2 * 2, 16, generator=g)
    cos, sin = attn.rotary.half_tables(12, qkv.device, qkv.dtype)
    for ours, ref in zip(kernels.liger_rope_qkv(qkv, cos, sin, 4, 2), attn._heads_torch(qkv)):
        assert ours.shape == ref.shape
        torch.testing.assert_close(ours, ref)
    gu = torch.randn(2, 5, 2 * 24, generator=g)
    torch.testing.assert_close(kernels.liger_swiglu(gu), _swiglu(gu))
    x, w = torch.randn(3, 7, 32, generator=g), torch.rand(32, generator=g) + 0.5
    torch.testing.assert_close(kernels.liger_rms_norm(x, w, 1e-5), F.rms_norm(x, (32,), w, 1e-5))
    h, head = torch.randn(20, 32, generator=g), torch.randn(50, 32, generator=g)
    t = torch.randint(0, 50, (20,), generator=g)
    t[:4] = -100
    torch.testing.assert_close(kernels.liger_linear_cross_entropy(h, head, t, -100),
                               F.cross_entropy(h @ head.t(), t, ignore_index=-100))


def test_fla_wrappers_call_the_real_signatures(monkeypatch):
    """fla_ssd and fla_gla call chunk_simple_gla / chunk_gla with fla's signatures (copied from
    fla-core 0.6) backed by fla's own naive references: layouts, keywords and scale."""
    simple = _fla_naive("simple_gla").naive_chunk_simple_gla
    recurrent = _fla_naive("gla").naive_recurrent_gla
    from cambrian.architectures.modules.linear_attention import gla_chunked
    from cambrian.architectures.modules.mamba2 import ssd_chunked

    def chunk_simple_gla(q, k, v, g=None, g_gamma=None, scale=None, initial_state=None,
                         output_final_state=False, state_v_first=False, cu_seqlens=None, cu_seqlens_cpu=None,
                         **kwargs):
        assert kwargs == {} and q.shape[:3] == g.shape  # [B, T, H, K] and [B, T, H]
        return simple(q, k, v, g, scale=scale)

    def chunk_gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False, state_v_first=False,
                  cu_seqlens=None, cu_seqlens_cpu=None):
        assert q.shape == g.shape  # [B, T, H, K]
        scale = q.size(-1) ** -0.5 if scale is None else scale
        return recurrent(q * scale * q.size(-1) ** 0.5, k, v, g)  # the naive one scales by K^-0.5 itself

    _fake_modules(monkeypatch, {"fla.ops.simple_gla": {"chunk_simple_gla": chunk_simple_gla},
                                "fla.ops.gla": {"chunk_gla": chunk_gla}})
    gen = torch.Generator().manual_seed(0)
    b, t, h, p, n, groups = 2, 70, 4, 8, 16, 2
    x = torch.randn(b, t, h, p, generator=gen)
    dt = torch.rand(b, t, h, generator=gen) * 0.3
    A = -torch.rand(h, generator=gen) * 3
    B, C = torch.randn(b, t, groups, n, generator=gen), torch.randn(b, t, groups, n, generator=gen)
    rep = h // groups
    ref = ssd_chunked(x * dt[..., None], A * dt, B.repeat_interleave(rep, 2), C.repeat_interleave(rep, 2))
    torch.testing.assert_close(kernels.fla_ssd(x, dt, A, B, C).float(), ref, atol=1e-4, rtol=1e-4)

    q, k = (torch.randn(b, 2, t, 8, generator=gen) for _ in range(2))
    v = torch.randn(b, 2, t, 8, generator=gen)
    gk = -torch.rand(b, 2, t, 8, generator=gen) * 0.5
    torch.testing.assert_close(kernels.fla_gla(q, k, v, gk), gla_chunked(q, k, v, gk), atol=1e-4, rtol=1e-4)
