"""The optional fused kernels on CUDA against the pure-torch paths (values and gradients), the
kernels a CUDA run records, torch.compile per block, and a GPU evaluation through the fork server.

Each kernel test skips when its library is not installed; ``bench/gpu_check.sh`` installs the
``cuda`` extra's wheels first. The torch side of each comparison runs under
``kernels.policy("torch")``, the kernel side under a policy that allows only that library.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch

from cambrian.architectures import kernels

pytestmark = pytest.mark.gpu

DEVICE = "cuda"


def needs(library: str) -> None:
    if not kernels.installed(library):
        pytest.skip(f"{kernels.LIBRARIES[library]} is not installed")


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    assert torch.isfinite(a).all()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def compare(module: torch.nn.Module, x: torch.Tensor, library: str, tol: float, *, autocast: bool = False):
    """module(x) and its gradients with only ``library``'s kernels allowed vs pure torch."""
    runs = []
    for value in (library, "torch"):
        m = copy.deepcopy(module)
        xi = x.clone().requires_grad_()
        kernels.reset_used()
        with kernels.policy(value), torch.autocast("cuda", torch.bfloat16, enabled=autocast):
            y = m(xi)
        dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(3)).to(y)
        (y.float() * dy.float()).sum().backward()
        runs.append((y, xi.grad, {n: p.grad for n, p in m.named_parameters()}, kernels.used()))
    (y_k, gx_k, gp_k, used_k), (y_t, gx_t, gp_t, _) = runs
    assert any(u.startswith(library + "_") for u in used_k), f"{library} did not run: {used_k}"
    assert rel_err(y_k, y_t) <= tol, ("output", rel_err(y_k, y_t))
    assert rel_err(gx_k, gx_t) <= tol, ("input gradient", rel_err(gx_k, gx_t))
    for name in gp_t:
        if gp_t[name] is not None:
            assert rel_err(gp_k[name], gp_t[name]) <= 10 * tol, (name, rel_err(gp_k[name], gp_t[name]))


@pytest.fixture(autouse=True)
def no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def x_for(d: int, t: int = 64, b: int = 2) -> torch.Tensor:
    return torch.randn(b, t, d, generator=torch.Generator().manual_seed(1)).to(DEVICE)


# ----------------------------------------------------------------------------- liger-kernel

@pytest.mark.parametrize("autocast", [False, True])
def test_liger_rms_norm(autocast):
    needs("liger")
    from cambrian.architectures.modules.common import RMSNorm

    norm = RMSNorm(96).to(DEVICE)
    torch.nn.init.normal_(norm.weight, 1.0, 0.2)
    dtype = torch.bfloat16 if autocast else torch.float32  # bf16: weights and inputs, as under FSDP-style casts
    compare(norm.to(dtype), x_for(96).to(dtype), "liger", 1e-2 if autocast else 1e-5)


@pytest.mark.parametrize("autocast", [False, True])
def test_liger_swiglu(autocast):
    needs("liger")
    from cambrian.architectures.modules.mlp import SwiGLU

    torch.manual_seed(0)
    compare(SwiGLU(64, 160).to(DEVICE), x_for(64), "liger", 2e-2 if autocast else 1e-5, autocast=autocast)


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_liger_rope_in_attention(kv_heads):
    needs("liger")
    from cambrian.architectures.modules.attention import CausalSelfAttention

    torch.manual_seed(0)
    attn = CausalSelfAttention(64, 4, kv_heads, 16, rope=True).to(DEVICE)
    compare(attn, x_for(64), "liger", 1e-5)  # SDPA on both sides (flash-attn is not allowed)


@pytest.mark.parametrize("autocast", [False, True])
def test_liger_fused_linear_cross_entropy(autocast):
    needs("liger")
    from cambrian.architectures import build_model, reference_spec

    model = build_model(reference_spec("llama", d_model=64, n_layers=2, max_seq_len=64), seed=0).to(DEVICE)
    idx = torch.randint(0, 256, (4, 64), generator=torch.Generator().manual_seed(0)).to(DEVICE)
    targets = torch.randint(0, 256, (4, 64), generator=torch.Generator().manual_seed(1)).to(DEVICE)
    targets[:, :5] = -100
    losses, grads = [], []
    for value in ("liger", "torch"):
        m = copy.deepcopy(model)
        kernels.reset_used()
        with kernels.policy(value), torch.autocast("cuda", torch.bfloat16, enabled=autocast):
            loss = m(idx, targets=targets)
        loss.backward()
        if value == "liger":
            assert "liger_linear_cross_entropy" in kernels.used()
        losses.append(float(loss))
        grads.append({n: p.grad for n, p in m.named_parameters()})
    assert abs(losses[0] - losses[1]) <= (2e-2 if autocast else 1e-4) * abs(losses[1])
    for name, g in grads[1].items():
        assert rel_err(grads[0][name], g) <= (5e-2 if autocast else 1e-3), name


# ----------------------------------------------------------------------------- flash-linear-attention

@pytest.mark.parametrize("autocast", [False, True])
def test_fla_ssd_in_mamba2(autocast):
    needs("fla")
    from cambrian.architectures.modules.mamba2 import Mamba2Mixer

    torch.manual_seed(0)
    mixer = Mamba2Mixer(64, d_state=32, head_dim=16).to(DEVICE)
    # fla's dots may run in TF32 on fp32 inputs: 2e-3 relative
    compare(mixer, x_for(64, t=200), "fla", 3e-2 if autocast else 2e-3, autocast=autocast)


def test_fla_gated_linear_attention():
    needs("fla")
    from cambrian.architectures.modules.linear_attention import GatedLinearAttention

    torch.manual_seed(0)
    compare(GatedLinearAttention(64, 4, 64, 64).to(DEVICE), x_for(64, t=150), "fla", 2e-3)


# ----------------------------------------------------------------------------- flash-attn, mamba-ssm

@pytest.mark.parametrize("window", [None, 16])
def test_flash_attn_against_sdpa_values_and_gradients(window):
    needs("flash_attn")
    from cambrian.architectures.modules.attention import CausalSelfAttention

    torch.manual_seed(0)
    attn = CausalSelfAttention(64, 4, 2, 16, rope=True, window=window).to(DEVICE)
    compare(attn, x_for(64), "flash_attn", 3e-2, autocast=True)


def test_mamba_ssm_ssd_in_mamba2():
    needs("mamba_ssm")
    from cambrian.architectures.modules.mamba2 import Mamba2Mixer

    torch.manual_seed(0)
    compare(Mamba2Mixer(64, d_state=32, head_dim=16).to(DEVICE), x_for(64, t=128), "mamba_ssm", 2e-3)


def test_mamba_ssm_selective_scan_in_mamba():
    needs("mamba_ssm")
    from cambrian.architectures.modules.mamba import MambaMixer

    torch.manual_seed(0)
    compare(MambaMixer(64).to(DEVICE), x_for(64, t=128), "mamba_ssm", 2e-3)


# ----------------------------------------------------------------------------- training on CUDA

@pytest.mark.parametrize("name", ["llama", "hybrid"])
def test_bf16_training_on_cuda_records_its_kernels(name):
    from cambrian.architectures import build_model, reference_spec
    from cambrian.scaling.trainer import TrainConfig, train

    rng = np.random.default_rng(0)
    data = rng.integers(0, 64, size=(64, 65))
    data[:, 1::2] = data[:, 0:-1:2]  # learnable: every other token repeats

    def batches(i):
        rows = data[(np.arange(8) + 8 * i) % 64]
        return rows[:, :-1], rows[:, 1:]

    model = build_model(reference_spec(name, d_model=64, n_layers=2, max_seq_len=64, vocab_size=64), seed=0)
    r = train(model, batches, TrainConfig(max_steps=40, warmup_steps=5, lr=3e-3, device="cuda", log_every=5))
    assert r.status == "completed" and r.history[-1][1] < r.history[0][1] - 0.5
    rt = r.runtime
    assert rt["device"].startswith("cuda") and rt["dtype"] == "bfloat16" and rt["device_name"]
    want = {"liger": "liger_rms_norm", "flash_attn": "flash_attn_attention"}
    for lib, kernel in want.items():
        assert (kernel in rt["kernels"]) == kernels.installed(lib), rt["kernels"]
    if not kernels.installed("flash_attn"):
        assert "sdpa_attention" in rt["kernels"]
    if name == "hybrid":
        ssd = next(k for k in rt["kernels"] if k.endswith("_ssd"))
        assert ssd == f"{kernels.choose('ssd', 'cuda', torch.bfloat16)}_ssd"


def test_compiled_blocks_train_like_eager_on_cuda():
    from cambrian.architectures import build_model, reference_spec
    from cambrian.scaling.trainer import TrainConfig, train

    def batches(i):
        x = np.random.default_rng([0, i]).integers(0, 64, size=(8, 65))
        return x[:, :-1], x[:, 1:]

    results = []
    for compile_ in (False, True):
        model = build_model(reference_spec("llama", d_model=64, n_layers=2, max_seq_len=64, vocab_size=64), seed=0)
        results.append(train(model, batches, TrainConfig(max_steps=10, warmup_steps=2, device="cuda",
                                                         precision="fp32", compile=compile_, log_every=1)))
    assert results[1].runtime["compiled"] is True
    eager, compiled = (np.array([loss for _, loss in r.history]) for r in results)
    np.testing.assert_allclose(compiled, eager, rtol=1e-3)


def test_gpu_evaluation_through_the_fork_server(tmp_path):
    """The fork server never starts CUDA; the forked worker does, trains on the GPU and says so."""
    from cambrian import Candidate, EvalJob, NodeStatus
    from cambrian.execution.evaluation import finish_job, start_job
    from cambrian.execution.forkserver import DEFAULT_PRELOAD, ForkServer
    from cambrian.plugins.domains.compose.domain import ComposeDomain
    from tests.compose.tiny import TINY_DOMAIN

    domain = ComposeDomain(**TINY_DOMAIN, family="hybrid")
    spec = domain.spec(["attention", "swiglu", "mamba2", "swiglu"])
    server = ForkServer(preload=list(DEFAULT_PRELOAD) + list(ComposeDomain.preload))
    try:
        outs = []
        for i, device in enumerate(("cuda", "cpu")):
            job = EvalJob(node_id=f"n{i}", run_dir=str(tmp_path), domain="compose",
                          domain_options={**TINY_DOMAIN, "family": "hybrid", "device": device}, evaluator="compose",
                          candidate=Candidate(kind="spec", content=spec.content),
                          limits={"timeout_s": 300, "threads": 1, "memory_mb": 4096})
            outs.append(finish_job(job, start_job(job, server)))
    finally:
        server.close()
    gpu, cpu = outs
    assert gpu.status == NodeStatus.DONE, gpu.error
    assert gpu.metrics["on_cuda"].value == 1.0 and gpu.metrics["bf16"].value == 1.0 and gpu.cost.gpu_s > 0
    assert cpu.status == NodeStatus.DONE, cpu.error  # and the server still forks CPU workers
    assert cpu.metrics["on_cuda"].value == 0.0
    assert os.path.isfile(tmp_path / "evals" / "n0" / "work" / "runtime.json")
