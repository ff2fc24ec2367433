"""Spec validation, canonical hashing, file formats, reference specs, counting without torch."""

import json
import subprocess
import sys

import pytest

from cambrian.architectures import (ArchSpec, LayerSpec, SpecError, count, primitive_names,
                                    reference_spec)


def spec_dict(layers, **dims):
    return {"d_model": 64, "vocab_size": 256, "max_seq_len": 64, **dims, "layers": layers}


@pytest.mark.parametrize("layers, dims, message", [
    ([{"primitive": "mamab"}], {}, "layer 0: unknown primitive 'mamab' (known: attention"),
    ([{"primitive": "swiglu"}, {"primitive": "attention", "options": {"n_head": 4}}], {},
     "layer 1 (attention): unknown option 'n_head' (options: n_heads, n_kv_heads"),
    ([{"primitive": "attention", "options": {"n_heads": "4"}}], {},
     "layer 0 (attention): option 'n_heads' must be int, got str '4'"),
    ([{"primitive": "attention", "options": {"n_heads": True}}], {},
     "option 'n_heads' must be int, got bool True"),
    ([{"primitive": "attention", "options": {"n_heads": 5}}], {},
     "layer 0 (attention): d_model 64 is not divisible by n_heads 5"),
    ([{"primitive": "attention", "options": {"n_heads": 4, "n_kv_heads": 3}}], {},
     "n_heads 4 is not divisible by n_kv_heads 3"),
    ([{"primitive": "mamba2", "options": {"head_dim": 48}}], {},
     "inner width 128 (expand*d_model) is not divisible by head_dim 48"),
    ([{"primitive": "linear_attention", "options": {"mode": "fast"}}], {},
     "option 'mode' must be one of 'gla', 'retention', got 'fast'"),
    ([{"primitive": "moe", "options": {"top_k": 5}}], {}, "top_k 5 exceeds n_experts 4"),
    ([{"primitive": "mlp", "options": {"hidden": 0}}], {}, "option 'hidden' must be >= 1"),
    ([{"primitive": "mlp", "extra": 1}], {}, "layer 0: unknown field 'extra'"),
    ([], {}, "'layers' must be a non-empty list"),
    ([{"primitive": "mlp"}], {"n_embd": 3}, "spec: unknown field 'n_embd'"),
    ([{"primitive": "mlp"}], {"norm": "batchnorm"}, "option 'norm' must be one of"),
    ([{"primitive": "mlp"}], {"d_model": None}, "'d_model' is required"),
])
def test_validation_errors_are_readable(layers, dims, message):
    with pytest.raises(SpecError) as err:
        ArchSpec.from_dict(spec_dict(layers, **dims))
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert isinstance(err.value, ValueError)


def test_defaults_are_filled_and_derived_values_resolved():
    spec = ArchSpec.from_dict(spec_dict(["attention", {"primitive": "swiglu"}]))
    attn, ffn = spec.layers
    assert attn == LayerSpec("attention", {"n_heads": 4, "n_kv_heads": 4, "head_dim": 16,
                                           "rope": True, "window": None})
    assert ffn.options == {"hidden": 176}
    assert spec.tie_embeddings and spec.norm == "rmsnorm" and spec.vocab_size == 256


def test_equivalent_specs_share_a_hash():
    terse = spec_dict([{"primitive": "attention"}, {"primitive": "mlp"}])
    explicit = {"layers": [
        {"options": {"window": None, "rope": True, "head_dim": 16, "n_kv_heads": 4, "n_heads": 4},
         "primitive": "attention"},
        {"primitive": "mlp", "options": {"activation": "gelu", "hidden": 256}}],
        "tie_embeddings": True, "norm": "rmsnorm", "max_seq_len": 64, "vocab_size": 256,
        "d_model": 64, "pos": "rope"}
    a, b = ArchSpec.from_dict(terse), ArchSpec.from_dict(explicit)
    assert a.canonical_hash() == b.canonical_hash() and a == b
    assert len(a.canonical_hash()) == 16 and int(a.canonical_hash(), 16) >= 0
    assert len({a, b}) == 1
    # the global `pos` decides an attention layer's default rope
    nope = ArchSpec.from_dict({**terse, "pos": "none"})
    assert nope.layers[0].options["rope"] is False
    assert nope.canonical_hash() != a.canonical_hash()
    other = ArchSpec.from_dict(spec_dict([{"primitive": "attention"}, {"primitive": "swiglu"}]))
    assert other.canonical_hash() != a.canonical_hash()


def test_hash_is_stable_across_processes():
    code = ("from cambrian.architectures import reference_spec;"
            "print(reference_spec('hybrid', d_model=64, n_layers=4).canonical_hash())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == reference_spec("hybrid", d_model=64, n_layers=4).canonical_hash()


def test_json_and_yaml_round_trip(tmp_path):
    spec = reference_spec("hybrid", d_model=64, n_layers=4, max_seq_len=128)
    assert ArchSpec.from_json(spec.to_json()) == spec
    assert ArchSpec.from_yaml(spec.to_yaml()) == spec
    (tmp_path / "a.json").write_text(spec.to_json())
    (tmp_path / "a.yaml").write_text(spec.to_yaml())
    assert ArchSpec.from_file(tmp_path / "a.json") == ArchSpec.from_file(tmp_path / "a.yaml") == spec
    assert json.loads(spec.to_json())["layers"][0]["primitive"] == "mamba2"
    with pytest.raises(SpecError, match="not valid JSON"):
        ArchSpec.from_json("{")


@pytest.mark.parametrize("name", ["llama", "composer", "mamba", "hybrid"])
def test_reference_specs(name):
    spec = reference_spec(name, d_model=128, n_layers=4, vocab_size=256, max_seq_len=256)
    assert spec.d_model == 128 and spec.vocab_size == 256 and spec.max_seq_len == 256
    per_block = {"llama": 2, "composer": 3, "mamba": 1, "hybrid": 2}[name]
    assert spec.n_layers == 4 * per_block
    prims = {layer.primitive for layer in spec.layers}
    assert prims == {"llama": {"attention", "swiglu"}, "composer": {"attention", "mlp"},
                     "mamba": {"mamba"}, "hybrid": {"mamba2", "attention", "swiglu"}}[name]
    with pytest.raises(SpecError, match="unknown reference spec"):
        reference_spec("gpt5")


def test_llama_reference_is_about_0_9m_params():
    c = count(reference_spec("llama", d_model=128, n_layers=4, max_seq_len=256))
    assert 0.8e6 < c.params < 1.0e6
    assert c.params == c.non_embedding_params + c.embedding_params


def test_counts_caches():
    spec = ArchSpec.from_dict(spec_dict([
        {"primitive": "attention", "options": {"n_heads": 4, "n_kv_heads": 2}},
        {"primitive": "attention", "options": {"window": 16}},
        {"primitive": "mamba"}], max_seq_len=64))
    c = count(spec, seq_len=64)
    kv_full, kv_window = 2 * 2 * 16, 2 * 4 * 16
    mamba_state = 128 * 16 + 128 * 3
    assert c.kv_cache_bytes_per_token == kv_full * 2  # only the full-attention cache grows
    assert c.state_bytes == 2 * (kv_full * 64 + kv_window * 16 + mamba_state)
    assert c.state_bytes_per_token == c.state_bytes / 64
    assert [lc.primitive for lc in c.layers] == ["attention", "attention", "mamba"]
    longer = count(spec, seq_len=128)
    assert longer.flops_per_token > c.flops_per_token  # full attention grows with context
    assert longer.training_flops_per_token == 3 * longer.flops_per_token


def test_validating_and_counting_need_no_torch():
    code = ("import sys\nfrom cambrian.architectures import reference_spec, count\n"
            "count(reference_spec('hybrid', d_model=64, n_layers=2))\n"
            "import cambrian.plugins.primitives\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry_names():
    assert {"attention", "linear_attention", "mamba", "mamba2", "conv", "mlp", "swiglu",
            "moe"} <= set(primitive_names())
