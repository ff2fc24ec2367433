"""Built models: causal, deterministic from a seed, trainable, counted correctly."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from cambrian.architectures import ArchSpec, build_model, count, reference_spec

EVERYTHING = {
    "d_model": 32, "max_seq_len": 64, "norm": "layernorm", "tie_embeddings": False,
    "layers": [
        {"primitive": "attention", "options": {"n_heads": 4, "n_kv_heads": 2}},
        {"primitive": "attention", "options": {"n_heads": 2, "window": 4, "rope": False}},
        {"primitive": "linear_attention", "options": {"n_heads": 2}},
        {"primitive": "linear_attention", "options": {"n_heads": 2, "mode": "retention"}},
        {"primitive": "mamba", "options": {"d_state": 8}},
        {"primitive": "mamba2", "options": {"d_state": 8, "head_dim": 16}},
        {"primitive": "conv"}, {"primitive": "mlp"}, {"primitive": "swiglu"},
        {"primitive": "moe", "options": {"n_experts": 3, "top_k": 2, "hidden": 32}},
    ]}
SPECS = {name: reference_spec(name, d_model=32, n_layers=4, max_seq_len=64)
         for name in ("llama", "composer", "mamba", "hybrid")}
SPECS["everything"] = ArchSpec.from_dict(EVERYTHING)


@pytest.mark.parametrize("name", SPECS)
def test_built_model_is_causal(name):
    model = build_model(SPECS[name], seed=0).double()
    idx = torch.randint(0, 256, (2, 20), generator=torch.Generator().manual_seed(0))
    logits = model(idx)
    assert logits.shape == (2, 20, 256)
    for t in (0, 9, 19):
        idx2 = idx.clone()
        idx2[:, t] = (idx2[:, t] + 1) % 256
        logits2 = model(idx2)
        assert torch.allclose(logits[:, :t], logits2[:, :t], atol=1e-10)
        assert not torch.allclose(logits[:, t], logits2[:, t])


@pytest.mark.parametrize("name", SPECS)
def test_params_match_the_count(name):
    spec = SPECS[name]
    model = build_model(spec)
    c = count(spec)
    assert c.params == sum(p.numel() for p in model.parameters())  # tied weights counted once
    assert c.non_embedding_params == c.params - c.embedding_params
    assert c.params == sum(lc.params for lc in c.layers) + c.embedding_params + spec.d_model * (
        2 if spec.norm == "layernorm" else 1)


def test_model_flops_match_counted_matmuls():
    spec = reference_spec("composer", d_model=32, n_layers=2, max_seq_len=16)
    model = build_model(spec)
    for m in model.modules():
        if hasattr(m, "impl"):
            m.impl = "math"
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randint(0, 256, (3, 16)))
    assert counter.get_total_flops() == count(spec, seq_len=16).flops_per_token * 3 * 16


def test_same_seed_same_model_other_seed_other_model():
    spec = SPECS["everything"]
    state_a = build_model(spec, seed=7).state_dict()
    state_b = build_model(spec, seed=7).state_dict()
    state_c = build_model(spec, seed=8).state_dict()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert any(not torch.equal(state_a[k], state_c[k]) for k in state_a)
    before = torch.random.get_rng_state()
    build_model(spec, seed=1)
    assert torch.equal(before, torch.random.get_rng_state())  # the global RNG is left alone


def test_tied_and_untied_embeddings():
    tied = build_model(SPECS["llama"])
    assert tied.lm_head.weight is tied.embed.weight
    untied = build_model(SPECS["everything"])
    assert untied.lm_head.weight is not untied.embed.weight


@pytest.mark.parametrize("name", ["everything", "mamba"])
def test_gradients_flow_and_training_lowers_the_loss(name):
    torch.manual_seed(0)
    model = build_model(SPECS[name], seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = torch.randint(0, 16, (8, 33), generator=torch.Generator().manual_seed(1))  # learnable: a small alphabet
    losses = []
    for step in range(30):
        logits = model(data[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), data[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        if step == 0:
            for pname, p in model.named_parameters():
                assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 1.0
    assert model.aux_loss().dim() == 0
