"""Named GPU scales as campaign rungs (``preset``): dims, device and a Chinchilla budget."""

from pathlib import Path

import pytest

from cambrian.architectures import ArchSpec, count, reference_spec
from cambrian.plugins.domains.compose.phases import rung_options, rung_spec
from cambrian.scaling.ladder import SCALES, at_scale, rung_at_scale


def test_a_preset_rung_gets_the_scales_dims_device_and_chinchilla_budget():
    r = rung_at_scale({"name": "125m", "preset": "125m", "warmup_steps": 200})
    s = SCALES["125m"]
    assert (r["d_model"], r["n_layers"], r["seq_len"], r["batch_size"], r["lr"]) == \
        (s.d_model, s.n_layers, s.seq_len, s.batch_size, s.lr)
    assert r["device"] == "cuda" and r["warmup_steps"] == 200 and "preset" not in r
    llama = at_scale(reference_spec("llama", d_model=64, n_layers=1, max_seq_len=s.seq_len), "125m")
    params = count(ArchSpec.from_dict(llama), seq_len=s.seq_len).params
    assert r["train_tokens"] == int(20 * params) and 1.4e9 < r["train_tokens"] < 2.0e9


def test_the_rungs_own_keys_win():
    r = rung_at_scale({"name": "x", "preset": "125m", "train_tokens": 4_000_000, "device": "cuda:1",
                       "batch_size": 8})
    assert r["train_tokens"] == 4_000_000 and r["device"] == "cuda:1" and r["batch_size"] == 8
    half = rung_at_scale({"name": "x", "preset": "125m", "tokens_per_param": 10})
    assert half["train_tokens"] == pytest.approx(rung_at_scale({"name": "x", "preset": "125m"})["train_tokens"] / 2,
                                                 rel=1e-6)
    with pytest.raises(ValueError, match="unknown scale"):
        rung_at_scale({"name": "x", "preset": "125M-typo"})


@pytest.mark.parametrize("name", ["llama", "hybrid"])
def test_every_design_is_rebuilt_at_the_scale_and_trains_the_same_tokens(name):
    proxy = reference_spec(name, d_model=64, n_layers=4, max_seq_len=128).to_dict()
    rung = {"name": "125m", "preset": "125m", "checkpoint_every": 200}
    big = ArchSpec.from_dict(rung_spec(proxy, rung))
    assert big.d_model == 768 and big.n_layers == 24 and big.max_seq_len >= 1024
    opts = rung_options(rung)
    assert opts["device"] == "cuda" and opts["seq_len"] == 1024 and opts["checkpoint_every"] == 200
    assert opts["train_tokens"] == rung_at_scale(rung)["train_tokens"]  # one budget per rung
    assert "d_model" not in opts and "n_layers" not in opts  # dims go into the spec, not the options


def test_the_gpu_example_config_loads_and_its_rung_is_125m_on_cuda():
    from cambrian.core.config import load_config

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "examples" / "compose-gpu.yaml")
    rung = cfg.phases["scaling"]["ladder"][-1]
    opts = rung_options(rung)
    assert opts["device"] == "cuda" and opts["checkpoint_every"] == 200 and opts["train_tokens"] > 1e9
    assert cfg.domain.options["device"] == "auto"  # the search: GPU when there is one, else CPU


def test_an_unknown_preset_fails_the_config_naming_the_key(tmp_path):
    import yaml

    from cambrian.core.config import load_config
    from cambrian.core.errors import ConfigError

    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / "examples" / "compose-gpu.yaml").read_text())
    data["phases"]["scaling"]["ladder"][-1]["preset"] = "125M-typo"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"ladder.*unknown scale '125M-typo'"):
        load_config(bad)
