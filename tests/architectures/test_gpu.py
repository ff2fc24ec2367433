"""Fused CUDA kernels against the pure-torch references (skipped without CUDA)."""

import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("window", [None, 8])
def test_flash_attention_matches_sdpa(window):
    pytest.importorskip("flash_attn")
    from cambrian.architectures.modules.attention import CausalSelfAttention

    torch.manual_seed(0)
    attn = CausalSelfAttention(64, 4, 2, 16, rope=True, window=window).cuda().bfloat16()
    x = torch.randn(2, 40, 64, device="cuda", dtype=torch.bfloat16)
    y_kernel = attn(x)
    attn.impl = "math"
    torch.testing.assert_close(y_kernel.float(), attn(x).float(), atol=2e-2, rtol=2e-2)


def test_mamba_ssm_selective_scan_matches_reference():
    pytest.importorskip("mamba_ssm")
    from cambrian.architectures.modules.selective_scan import selective_scan

    g = torch.Generator().manual_seed(0)
    b, d, length, n = 2, 16, 64, 8
    u = torch.randn(b, d, length, generator=g)
    delta = torch.rand(b, d, length, generator=g) * 0.5
    A = -torch.rand(d, n, generator=g) * 2
    Bm, Cm = torch.randn(b, length, n, generator=g), torch.randn(b, length, n, generator=g)
    ref = selective_scan(u, delta, A, Bm, Cm, impl="sequential")
    out = selective_scan(*(z.cuda() for z in (u, delta, A, Bm, Cm)), impl="cuda")
    torch.testing.assert_close(out.cpu(), ref, atol=1e-3, rtol=1e-3)


def test_mamba2_kernel_matches_chunked_ssd():
    pytest.importorskip("mamba_ssm")
    from cambrian.architectures.modules.mamba2 import Mamba2Mixer

    torch.manual_seed(0)
    mixer = Mamba2Mixer(64, d_state=16, head_dim=16).cuda()
    x = torch.randn(2, 128, 64, device="cuda")
    y_kernel = mixer(x)
    mixer.ssd_impl = "chunked"
    torch.testing.assert_close(y_kernel, mixer(x), atol=1e-3, rtol=1e-3)


def test_models_run_on_cuda_and_match_cpu():
    from cambrian.architectures import build_model, reference_spec

    spec = reference_spec("hybrid", d_model=64, n_layers=4, max_seq_len=64)
    model = build_model(spec, seed=0)
    idx = torch.randint(0, 256, (2, 32))
    with torch.no_grad():
        cpu = model(idx)
        gpu = model.cuda()(idx.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-3, rtol=1e-3)
