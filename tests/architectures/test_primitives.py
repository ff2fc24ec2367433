"""Every primitive: causal, trainable, and true to its parameter and FLOP formulas."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cambrian.architectures import ArchSpec, get_primitive

D = 32
CASES = [
    ("attention", {"n_heads": 4}),
    ("attention", {"n_heads": 4, "n_kv_heads": 2, "rope": False}),
    ("attention", {"n_heads": 2, "window": 5}),
    ("linear_attention", {"n_heads": 2}),
    ("linear_attention", {"n_heads": 2, "mode": "retention"}),
    ("mamba", {"d_state": 8}),
    ("mamba2", {"d_state": 8, "head_dim": 16}),
    ("mamba2", {"d_state": 8, "head_dim": 8, "n_groups": 2}),
    ("conv", {"kernel_size": 3}),
    ("mlp", {}),
    ("mlp", {"activation": "relu2", "hidden": 48}),
    ("swiglu", {}),
    ("moe", {"n_experts": 4, "top_k": 2, "hidden": 24}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items())}" for n, o in CASES]


def make(name, given, seq=64):
    spec = ArchSpec.from_dict({"d_model": D, "max_seq_len": seq,
                               "layers": [{"primitive": name, "options": given}]})
    layer = spec.layers[0]
    torch.manual_seed(0)
    module = get_primitive(name).build(layer.options, spec, 0)
    for p in module.parameters():  # non-trivial values everywhere (biases and gates too)
        if p.dim() < 2 and name not in ("mamba", "mamba2"):
            torch.nn.init.normal_(p, std=0.3)
    return get_primitive(name), layer.options, module.double()


def use_reference_paths(module):
    """Attention: explicit products (FLOP counters don't see SDPA on CPU); recurrent
    mixers: the step-by-step scans (no matmuls hidden inside the scan)."""
    for m in module.modules():
        if hasattr(m, "impl"):
            m.impl = "math"
        if hasattr(m, "scan_impl"):
            m.scan_impl = "sequential"
        if hasattr(m, "ssd_impl"):
            m.ssd_impl = "sequential"
        if hasattr(m, "chunked"):
            m.chunked = False


@pytest.mark.parametrize("name, given", CASES, ids=IDS)
def test_causal(name, given):
    _, _, module = make(name, given)
    x = torch.randn(2, 24, D, dtype=torch.float64)
    y = module(x)
    for t in (0, 7, 16, 23):
        x2 = x.clone()
        x2[:, t] += torch.randn(D, dtype=torch.float64)
        y2 = module(x2)
        assert torch.allclose(y[:, :t], y2[:, :t], atol=1e-12), f"future token {t} leaked"
        assert not torch.allclose(y[:, t], y2[:, t]), f"token {t} does not affect itself"


@pytest.mark.parametrize("name, given", CASES, ids=IDS)
def test_gradients_reach_every_parameter(name, given):
    _, _, module = make(name, given)
    x = torch.randn(2, 24, D, dtype=torch.float64, requires_grad=True)
    module(x).square().mean().backward()
    assert x.grad.abs().sum() > 0
    for pname, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} gets no gradient"


@pytest.mark.parametrize("name, given", CASES, ids=IDS)
def test_param_formula_is_exact(name, given):
    prim, opts, module = make(name, given)
    assert prim.params(opts, D) == sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name, given", CASES, ids=IDS)
def test_flop_formula_matches_counted_matmuls(name, given, monkeypatch):
    """Counted matmuls (linear layers, convs, attention products) equal the formula's
    ``matmul`` part exactly; recurrent scans run their elementwise reference here, and
    short convs F.conv1d (the counter does not see the CPU path's shifted multiply-adds)."""
    from cambrian.architectures.modules import common

    monkeypatch.setattr(common, "SHIFTED_CONV_MAX_K", 0)
    prim, opts, module = make(name, given, seq=32)
    use_reference_paths(module)
    b, t = 2, 32 if opts.get("window") is None else 5  # the formula counts min(window, T) keys
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(torch.randn(b, t, D, dtype=torch.float64))
    flops = prim.flops(opts, D, t)
    assert counter.get_total_flops() == flops.matmul * b * t
    assert flops.total >= flops.matmul


def test_window_attention_sees_only_the_window():
    _, _, module = make("attention", {"n_heads": 2, "window": 4})
    x = torch.randn(1, 20, D, dtype=torch.float64)
    y = module(x)
    x2 = x.clone()
    x2[:, 3] += 1.0
    y2 = module(x2)
    assert not torch.allclose(y[:, 6], y2[:, 6])  # 6 - 3 < 4: inside the window
    assert torch.allclose(y[:, 7:], y2[:, 7:], atol=1e-12)  # outside the window from t = 7


def test_moe_aux_loss_is_finite():
    _, _, module = make("moe", {"n_experts": 4, "top_k": 1})
    module(torch.randn(2, 16, D, dtype=torch.float64))
    assert torch.isfinite(module.aux_loss) and module.aux_loss > 0


def test_rmsnorm_matches_torch_values_and_gradients():
    from cambrian.architectures.modules.common import RMSNorm

    norm = RMSNorm(6).double()
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 6, dtype=torch.float64))
    x = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.rms_norm(x, (6,), norm.weight, norm.eps)
    torch.testing.assert_close(norm(x), ref)
    assert torch.autograd.gradcheck(lambda a: norm(a), (x,))
    dy = torch.randn_like(ref)
    g = torch.autograd.grad(norm(x), (x, norm.weight), dy)
    g_ref = torch.autograd.grad(ref, (x, norm.weight), dy)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b)
