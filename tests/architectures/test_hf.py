"""transformers export: save, load (in-process and fresh-process remote code), generate."""

import json
import subprocess
import sys

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from cambrian.architectures import ArchSpec, build_model, reference_spec
from cambrian.architectures.hf import CambrianConfig, CambrianForCausalLM, to_hf

UNTIED = ArchSpec.from_dict({
    "d_model": 32, "max_seq_len": 64, "tie_embeddings": False, "norm": "layernorm",
    "layers": [{"primitive": "mamba", "options": {"d_state": 4}},
               {"primitive": "attention", "options": {"n_heads": 2, "window": 8}},
               {"primitive": "linear_attention", "options": {"n_heads": 2}},
               {"primitive": "moe", "options": {"n_experts": 2, "top_k": 1, "hidden": 16}}]})


@pytest.fixture(scope="module", params=["hybrid", "untied"])
def saved(request, tmp_path_factory):
    spec = UNTIED if request.param == "untied" else reference_spec(
        "hybrid", d_model=32, n_layers=4, max_seq_len=64)
    model = build_model(spec, seed=5).eval()
    path = tmp_path_factory.mktemp(request.param)
    to_hf(model).save_pretrained(path)
    return spec, model, path


def test_round_trip_gives_identical_logits(saved):
    spec, model, path = saved
    idx = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0))
    loaded = AutoModelForCausalLM.from_pretrained(path).eval()
    assert isinstance(loaded, CambrianForCausalLM)
    assert loaded.config.spec == spec
    with torch.no_grad():
        assert torch.equal(loaded(idx).logits, model(idx))
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "cambrian" and config["auto_map"]["AutoModelForCausalLM"]
    assert isinstance(AutoConfig.from_pretrained(path), CambrianConfig)


def test_generate_is_greedy_decoding(saved):
    _, model, path = saved
    loaded = AutoModelForCausalLM.from_pretrained(path).eval()
    prompt = torch.tensor([[72, 101, 108, 108, 111]])
    out = loaded.generate(prompt, max_new_tokens=6, do_sample=False)
    idx = prompt
    with torch.no_grad():
        for _ in range(6):  # the same by hand with the original model
            idx = torch.cat([idx, model(idx)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, idx)


def test_fresh_process_loads_with_trust_remote_code(tmp_path):
    model = build_model(UNTIED, seed=5).eval()  # one spec: the subprocess is the slow part
    path = tmp_path / "export"
    to_hf(model).save_pretrained(path)
    idx = torch.arange(10).view(1, 10)
    with torch.no_grad():
        expected = model(idx)
    torch.save(expected, tmp_path / "expected.pt")
    code = (
        "import sys, torch\n"
        "from transformers import AutoModelForCausalLM\n"
        f"m = AutoModelForCausalLM.from_pretrained({str(path)!r}, trust_remote_code=True).eval()\n"
        "assert 'cambrian' in type(m).__module__ or 'modeling_cambrian' in type(m).__module__\n"
        "with torch.no_grad():\n"
        "    logits = m(torch.arange(10).view(1, 10)).logits\n"
        f"assert torch.equal(logits, torch.load({str(tmp_path / 'expected.pt')!r}))\n"
        "print(m.generate(torch.arange(4).view(1, 4), max_new_tokens=3, do_sample=False).shape)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "torch.Size([1, 7])" in out.stdout


def test_labels_give_the_shifted_loss():
    model = build_model(reference_spec("llama", d_model=32, n_layers=1, max_seq_len=32))
    hf = to_hf(model)
    idx = torch.randint(0, 256, (2, 9))
    out = hf(idx, labels=idx)
    ref = torch.nn.functional.cross_entropy(model(idx)[:, :-1].flatten(0, 1), idx[:, 1:].flatten())
    torch.testing.assert_close(out.loss, ref)


def test_transformers_init_is_the_builders_init_moe_experts_included():
    """One weight-init rule: a module transformers initialises (weights not loaded) gets
    what build_model gives it, the MoE's stacked expert weights and the norms included."""
    from cambrian.architectures.model import init_stds

    hf = CambrianForCausalLM(CambrianConfig(arch=UNTIED.to_dict()))
    std, res_std = init_stds(UNTIED)
    with torch.no_grad():
        for p in hf.parameters():
            p.zero_()  # as if nothing were loaded and nothing initialised
            p._is_hf_initialized = False
    torch.manual_seed(0)
    hf.model.apply(hf._init_weights)  # children before parents, as transformers does
    moe = next(m for m in hf.modules() if hasattr(m, "w_gate"))
    assert abs(moe.w_gate.std().item() - std) < 0.2 * std
    assert abs(moe.w_down.std().item() - res_std) < 0.2 * res_std
    norms = [m for m in hf.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in norms)
    mamba = next(m for m in hf.modules() if hasattr(m, "A_log"))
    assert (mamba.A_log != 0).any()  # the mixer's special init ran after its layers'
    built = build_model(UNTIED, seed=0)
    built_moe = next(m for m in built.modules() if hasattr(m, "w_gate"))
    assert abs(built_moe.w_gate.std().item() - std) < 0.2 * std
