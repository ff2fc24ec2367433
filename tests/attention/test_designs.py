"""Seed designs keep the interface and are causal; a passing design registers as a primitive
that the architectures builder (and so the compose pack) can use; the domain rejects bad sources."""

from __future__ import annotations

import pytest
import torch

from cambrian import Candidate
from cambrian.plugins.domains.attention.domain import SEED_NAMES, AttentionDomain, seed_source
from cambrian.plugins.domains.attention.primitive import MixerPrimitive


@pytest.mark.parametrize("name", SEED_NAMES)
def test_seed_designs_keep_shape_and_causality(name, tmp_path):
    path = tmp_path / f"{name}.py"
    path.write_text(seed_source(name))
    mixer = MixerPrimitive(name, path).mixer_class()(32, 2).eval()
    x = torch.randn(2, 24, 32)
    x2 = x.clone()
    x2[:, 12:] = torch.randn(2, 12, 32)
    with torch.no_grad():
        y, y2 = mixer(x), mixer(x2)
    assert y.shape == x.shape
    assert torch.allclose(y[:, :12], y2[:, :12], atol=1e-5)
    assert not torch.allclose(y[:, 12:], y2[:, 12:])


def test_a_registered_design_builds_in_a_spec(tmp_path, monkeypatch, fresh_pm):
    from cambrian.architectures import ArchSpec, build_model, count, primitive_names
    from cambrian.plugins.domains.attention.designs import register_design

    monkeypatch.setenv("CAMBRIAN_PRIMITIVES_DIR", str(tmp_path / "designs"))
    register_design(seed_source("linear"), "my_linear")
    from cambrian.core.plugins import get_plugin_manager, reset_plugin_manager

    reset_plugin_manager()
    try:
        assert "my_linear" in get_plugin_manager().names("primitive")
        assert "my_linear" in primitive_names()  # usable in specs: no sync step
        spec = ArchSpec.from_dict({"d_model": 32, "vocab_size": 256, "max_seq_len": 64,
                                   "layers": [{"primitive": "my_linear", "options": {"n_heads": 2}},
                                              {"primitive": "swiglu"}]})
        model = build_model(spec, seed=0)
        assert model(torch.randint(0, 256, (2, 16))).shape == (2, 16, 256)
        assert count(spec).params == sum(p.numel() for p in model.parameters())
    finally:
        reset_plugin_manager()
    with pytest.raises(ValueError, match="already a primitive"):
        register_design(seed_source("linear"), "attention")


def test_the_domain_rejects_a_module_without_a_mixer():
    d = AttentionDomain()
    with pytest.raises(ValueError, match="class `Mixer"):
        d.validate(Candidate(kind="code", content="import torch\nclass Attention: pass\n"))
    with pytest.raises(ValueError, match="does not compile"):
        d.validate(Candidate(kind="code", content="class Mixer(:\n"))
    assert [c.meta["seed"] for c in d.seeds(None)] == list(SEED_NAMES)
    assert set(d.baselines()) == {"softmax"}
