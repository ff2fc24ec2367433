"""GPU checks (skipped without CUDA): the fused kernels against the pure-torch references, and
every torch path on CUDA against the CPU, bf16 training, and the transformers export on CUDA."""

import contextlib
import copy
import os

import numpy as np
import pytest
import torch

from tests.architectures.test_primitives import CASES, IDS

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


# ----------------------------------------------------------------------------- what runs without
# the optional kernels: every primitive's torch path on CUDA, PyTorch's SDPA (its flash backend on
# Hopper), bf16 training through the scaling trainer, and the transformers export.
#
# CAMBRIAN_GPU_TEST_DEVICE=cpu runs the same checks on the CPU (with the CUDA skip lifted by hand),
# so their logic can be tried on a machine without a GPU before a GPU run.

DEVICE = os.environ.get("CAMBRIAN_GPU_TEST_DEVICE", "cuda")
D = 32


@pytest.fixture(autouse=True)
def true_fp32():
    """fp32 agreement with the CPU needs fp32 matmuls and convs, not TF32, on the GPU."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def assert_near(actual: torch.Tensor, expected: torch.Tensor, rel: float, what: str = "") -> None:
    """||actual - expected|| <= rel * ||expected||, on the CPU in fp64."""
    a, e = actual.detach().cpu().double(), expected.detach().cpu().double()
    assert a.shape == e.shape, what
    assert torch.isfinite(a).all(), f"{what}: non-finite values"
    err = float((a - e).norm() / e.norm().clamp_min(1e-12))
    assert err <= rel, f"{what}: relative error {err:.2e} > {rel:.0e}"


def fp32_primitive(name: str, given: dict, seq: int = 64):
    from cambrian.architectures import ArchSpec, get_primitive

    spec = ArchSpec.from_dict({"d_model": D, "max_seq_len": seq,
                               "layers": [{"primitive": name, "options": given}]})
    torch.manual_seed(0)
    module = get_primitive(name).build(spec.layers[0].options, spec, 0)
    for p in module.parameters():  # non-trivial biases and gates, as in test_primitives
        if p.dim() < 2 and name not in ("mamba", "mamba2"):
            torch.nn.init.normal_(p, std=0.3)
    for m in module.modules():  # the C++ scan is CPU-only; its chunked form is the CUDA path
        if hasattr(m, "scan_impl"):
            m.scan_impl = "chunked"
    return module


@pytest.fixture
def torch_kernels():
    """The torch paths only: the fused kernels are compared with them in test_kernels_gpu.py."""
    from cambrian.architectures import kernels

    with kernels.policy("torch"):
        yield


@pytest.mark.parametrize("name, given", CASES, ids=IDS)
def test_primitive_on_cuda_matches_cpu_values_and_gradients(name, given, torch_kernels):
    cpu = fp32_primitive(name, given)
    dev = copy.deepcopy(cpu).to(DEVICE)
    g = torch.Generator().manual_seed(1)
    x, dy = torch.randn(2, 48, D, generator=g), torch.randn(2, 48, D, generator=g)
    x_cpu, x_dev = x.clone().requires_grad_(), x.to(DEVICE).requires_grad_()
    y_cpu, y_dev = cpu(x_cpu), dev(x_dev)
    assert y_dev.device.type == torch.device(DEVICE).type
    assert_near(y_dev, y_cpu, 1e-4, "output")  # fp32, other summation orders
    (y_cpu * dy).sum().backward()
    (y_dev * dy.to(DEVICE)).sum().backward()
    assert_near(x_dev.grad, x_cpu.grad, 1e-4, "input gradient")
    for (pname, p_cpu), (_, p_dev) in zip(cpu.named_parameters(), dev.named_parameters()):
        assert_near(p_dev.grad, p_cpu.grad, 1e-3, pname)


@pytest.mark.parametrize("name, given", CASES, ids=IDS)
def test_primitive_is_causal_on_cuda(name, given):
    module = fp32_primitive(name, given).to(DEVICE)
    x = torch.randn(2, 40, D, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    with torch.no_grad():
        y = module(x)
        for t in (0, 9, 17, 39):  # 17 sits inside a GLA chunk, past its middle
            x2 = x.clone()
            x2[:, t] += torch.randn(D, generator=torch.Generator().manual_seed(t)).to(DEVICE)
            y2 = module(x2)
            # GLA rescales within a chunk around its middle step: exact in math, not in fp32
            torch.testing.assert_close(y2[:, :t], y[:, :t], atol=1e-4, rtol=1e-4,
                                       msg=f"future token {t} leaked")
            assert not torch.allclose(y2[:, t], y[:, t]), f"token {t} does not affect itself"


@pytest.mark.parametrize("window", [None, 8, 200])
@pytest.mark.parametrize("n_kv_heads", [4, 2])
def test_sdpa_in_bf16_matches_the_math_path(window, n_kv_heads):
    """The SDPA path under bf16 autocast (as the trainer runs it) against the explicit
    products in fp32: values and gradients. Without a window on CUDA it must run
    PyTorch's flash-attention backend."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from cambrian.architectures.modules.attention import CausalSelfAttention

    torch.manual_seed(0)
    ref = CausalSelfAttention(128, 4, n_kv_heads, 32, rope=True, window=window).to(DEVICE)
    ref.impl = "math"
    fast = copy.deepcopy(ref)
    fast.impl = "sdpa"
    x = torch.randn(2, 96, 128, generator=torch.Generator().manual_seed(3)).to(DEVICE)
    dy = torch.randn(2, 96, 128, generator=torch.Generator().manual_seed(4)).to(DEVICE)
    x_ref, x_fast = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref = ref(x_ref)
    (y_ref * dy).sum().backward()
    only_flash = DEVICE == "cuda" and (window is None or window >= 96)
    with torch.autocast(torch.device(DEVICE).type, dtype=torch.bfloat16), \
            sdpa_kernel(SDPBackend.FLASH_ATTENTION) if only_flash else contextlib.nullcontext():
        y_fast = fast(x_fast)
        assert y_fast.dtype == torch.bfloat16
        (y_fast.float() * dy).sum().backward()
    assert_near(y_fast, y_ref, 2e-2, "output")
    assert_near(x_fast.grad, x_ref.grad, 3e-2, "input gradient")
    assert_near(fast.qkv_proj.weight.grad, ref.qkv_proj.weight.grad, 3e-2, "qkv gradient")


def bigram_batches(i: int, batch: int = 16, seq: int = 64, vocab: int = 32):
    """Every sequence follows one fixed bigram rule from a random start: learnable by any mixer."""
    x = np.empty((batch, seq + 1), dtype=np.int64)
    x[:, 0] = np.random.default_rng([7, i]).integers(0, vocab, size=batch)
    for t in range(seq):  # x[t+1] = 5 x[t] + 3 (mod vocab): a full-period rule
        x[:, t + 1] = (5 * x[:, t] + 3) % vocab
    return x[:, :-1], x[:, 1:]


@pytest.mark.parametrize("name", ["llama", "composer", "mamba", "hybrid"])
def test_reference_spec_trains_in_bf16_on_cuda(name):
    from cambrian.architectures import build_model, count, reference_spec
    from cambrian.scaling.trainer import TrainConfig, accuracy, mean_loss, train

    spec = reference_spec(name, d_model=64, n_layers=2, vocab_size=32, max_seq_len=64)
    model = build_model(spec, seed=0)
    config = TrainConfig(lr=1e-2, warmup_steps=5, max_steps=40, log_every=10, device=DEVICE,
                         precision="bf16")
    r = train(model, bigram_batches, config, flops_per_token=count(spec, seq_len=64).flops_per_token)
    assert r.status == "completed" and r.steps == 40
    assert next(model.parameters()).device.type == torch.device(DEVICE).type
    first, last = r.history[0][1], r.history[-1][1]
    assert last < first - 1.0, r.history
    x, y = bigram_batches(10_000)
    loss, n = mean_loss(model, [(x, y)], DEVICE, bf16=True)
    assert n == x.size and loss < first
    assert accuracy(model, x, y, device=DEVICE) > 0.5


def test_auto_precision_is_bf16_on_cuda():
    from cambrian.scaling.trainer import use_bf16

    if DEVICE == "cuda":
        assert use_bf16("auto", torch.device("cuda"), 1000)
    assert not use_bf16("fp32", torch.device(DEVICE), 10**9)


def test_train_lm_on_cuda_scores_the_stdlib_corpus(tmp_path):
    from cambrian.architectures import reference_spec
    from cambrian.scaling.data import load_corpus
    from cambrian.scaling.runs import train_lm
    from cambrian.scaling.trainer import TrainConfig

    corpus = load_corpus("stdlib", cache_dir=tmp_path)
    spec = reference_spec("hybrid", d_model=64, n_layers=4, max_seq_len=64)
    config = TrainConfig(lr=3e-3, max_steps=100, warmup_steps=10, device=DEVICE, precision="auto")
    run = train_lm(spec, corpus, config, batch_size=16, seq_len=64, val_tokens=8192)
    assert run.train.status == "completed" and run.metrics["steps"] == 100
    assert run.metrics["bpb"] < 5.0  # uniform bytes: 8 bits per byte


def test_attention_learns_mqar_on_cuda():
    from cambrian.scaling.runs import train_task
    from cambrian.scaling.synthetic import make_task
    from cambrian.scaling.trainer import TrainConfig

    task = make_task("mqar", num_kv_pairs=4, num_queries=4, num_keys=8, num_values=8)
    config = TrainConfig(lr=3e-3, max_steps=200, warmup_steps=20, weight_decay=0.0, device=DEVICE,
                         precision="auto")
    spec = {"d_model": 64, "layers": [{"primitive": "conv"},
                                      {"primitive": "attention", "options": {"n_heads": 2}},
                                      {"primitive": "swiglu"}]}
    assert train_task(spec, task, config, n_train=10000, n_eval=300, batch_size=64)["accuracy"] > 0.8


HF_SPECS = {
    "hybrid": {"ref": "hybrid"},
    "untied": {"d_model": 32, "max_seq_len": 64, "tie_embeddings": False, "norm": "layernorm",
               "layers": [{"primitive": "mamba", "options": {"d_state": 4}},
                          {"primitive": "attention", "options": {"n_heads": 2, "window": 8}},
                          {"primitive": "linear_attention", "options": {"n_heads": 2}},
                          {"primitive": "moe", "options": {"n_experts": 2, "top_k": 1, "hidden": 16}}]},
}


@pytest.mark.parametrize("which", sorted(HF_SPECS))
def test_hf_export_round_trip_and_generate_on_cuda(which, tmp_path):
    from transformers import AutoModelForCausalLM

    from cambrian.architectures import build_model, reference_spec
    from cambrian.architectures.hf import CambrianForCausalLM, to_hf

    given = HF_SPECS[which]
    spec = reference_spec("hybrid", d_model=32, n_layers=4, max_seq_len=64) if "ref" in given else given
    model = build_model(spec, seed=5).to(DEVICE).eval()
    to_hf(model).save_pretrained(tmp_path)  # saved from device tensors
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).to(DEVICE).eval()
    assert isinstance(loaded, CambrianForCausalLM)
    assert next(loaded.parameters()).device.type == torch.device(DEVICE).type
    idx = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0)).to(DEVICE)
    with torch.no_grad():
        torch.testing.assert_close(loaded(idx).logits, model(idx), atol=1e-6, rtol=1e-6)
    prompt = torch.tensor([[72, 101, 108, 108, 111]], device=DEVICE)
    out = loaded.generate(prompt, max_new_tokens=6, do_sample=False)
    assert out.device.type == torch.device(DEVICE).type
    ids = prompt
    with torch.no_grad():
        for _ in range(6):  # greedy decoding by hand with the original model
            ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, ids)
    # bf16 weights on the device: generation runs and returns valid tokens
    half = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16).to(DEVICE).eval()
    assert next(half.parameters()).dtype == torch.bfloat16
    out16 = half.generate(prompt, max_new_tokens=6, do_sample=False)
    assert out16.shape == (1, 11) and int(out16.max()) < 256 and torch.equal(out16[:, :5], prompt)


def test_checkpoint_resume_on_cuda_equals_an_uninterrupted_run(tmp_path):
    """The checkpoint is loaded onto the device; the CPU RNG state in it must go back to the CPU."""
    from dataclasses import replace

    from cambrian.architectures import build_model, reference_spec
    from cambrian.scaling.trainer import TrainConfig, train

    spec = reference_spec("llama", d_model=32, n_layers=1, vocab_size=32, max_seq_len=64)
    cfg = TrainConfig(lr=1e-2, max_steps=12, warmup_steps=3, log_every=1, device=DEVICE,
                      checkpoint_path=str(tmp_path / "ckpt.pt"), checkpoint_every=6)
    straight = build_model(spec, seed=0)
    train(straight, bigram_batches, replace(cfg, checkpoint_path=None))

    class Crash(Exception):
        pass

    def crashing(i):  # dies fetching step 7's batch, after the step-6 checkpoint
        if i == 7:
            raise Crash
        return bigram_batches(i)

    with pytest.raises(Crash):
        train(build_model(spec, seed=0), crashing, cfg)
    resumed = build_model(spec, seed=99)  # everything must come from the checkpoint
    r = train(resumed, bigram_batches, cfg)
    assert r.status == "completed" and r.steps == 12
    for (n, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5, msg=n)  # CUDA sums may reorder
