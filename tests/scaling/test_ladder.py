import pytest

from cambrian.architectures import ArchSpec, count, reference_spec
from cambrian.scaling.ladder import (
    SCALES,
    Rung,
    analyse_ladder,
    at_scale,
    cluster_of_best,
    extrapolate,
    majority_vote,
    promote,
    rank_agreement,
    scale_budget,
    stack,
    stretch,
)


def test_stack_and_stretch():
    assert stack(["a", "b"], 3) == ["a", "b"] * 3
    assert stretch(["a", "b"], 2) == ["a", "a", "b", "b"]


def test_cpu_scales_are_about_their_nominal_size_for_a_llama_pattern():
    proxy = reference_spec("llama", d_model=32, n_layers=2, max_seq_len=64)
    sizes = {name: count(ArchSpec.from_dict(at_scale(proxy, name))).params for name in SCALES}
    assert 0.07e6 < sizes["cpu-0.1m"] < 0.15e6
    assert 0.3e6 < sizes["cpu-0.5m"] < 0.7e6
    assert 1.4e6 < sizes["cpu-2m"] < 2.8e6
    assert 0.07e9 < sizes["125m"] < 0.1e9  # byte vocabulary: GPT-3 Small less its 38M embedding
    assert 0.25e9 < sizes["350m"] < 0.45e9 and 0.7e9 < sizes["1b"] < 1.3e9 and 2.5e9 < sizes["3b"] < 3.8e9


def test_at_scale_rederives_dims_and_keeps_head_size():
    proxy = reference_spec("llama", d_model=128, n_layers=2, max_seq_len=64)
    head_dim = proxy.layers[0].options["head_dim"]
    big = at_scale(proxy, "350m", mode="stretch")
    attn = big["layers"][0]
    assert big["d_model"] == 1024 and attn["options"]["head_dim"] == head_dim
    assert attn["options"]["n_heads"] == 1024 // head_dim
    assert big["layers"][-1]["options"]["hidden"] > 2 * 1024  # the MLP re-derived its width
    assert [layer["primitive"] for layer in big["layers"][:24]] == ["attention"] * 12 + ["swiglu"] * 12
    tokens, flops = scale_budget(big, "350m")
    assert tokens == pytest.approx(20 * count(ArchSpec.from_dict(big)).params, rel=1e-6) and flops > 6e18


def test_promote_majority_vote_and_clusters():
    assert promote({"a": 2.0, "b": 1.0, "c": 3.0, "d": float("nan")}, 2, baselines=["llama", "b"]) == \
        ["b", "a", "llama"]
    assert promote({"a": 0.2, "b": 0.9}, 1, direction="max") == ["b"]
    att, mlp, mamba = ({"primitive": p, "options": {}} for p in ("attention", "swiglu", "mamba"))
    base = {"d_model": 64, "vocab_size": 256, "max_seq_len": 64}
    designs = [{**base, "layers": [att, mlp, att, mlp]}, {**base, "layers": [mamba, mlp, att, mlp]},
               {**base, "layers": [att, mlp, mamba, mlp]}, {**base, "layers": [mamba, mamba, mamba]}]
    voted = majority_vote(designs)
    assert [layer["primitive"] for layer in voted["layers"]] == ["attention", "swiglu", "attention", "swiglu"]
    assert len(cluster_of_best(designs, max_distance=1)) == 3
    ArchSpec.from_dict(voted)  # the vote is a valid spec


def test_rank_agreement():
    a = {"x": 1.0, "y": 2.0, "z": 3.0, "w": 4.0}
    assert rank_agreement(a, {k: 10 * v for k, v in a.items()}).spearman == pytest.approx(1.0)
    r = rank_agreement(a, {"x": 4.0, "y": 3.0, "z": 2.0, "w": 1.0})
    assert r.spearman == pytest.approx(-1.0) and r.kendall == pytest.approx(-1.0) and r.n == 4
    # exact: 2 of the 24 pairings rank 4 designs perfectly (either way), not scipy's p = 0
    assert r.spearman_p == pytest.approx(2 / 24)
    r = rank_agreement(a, {"x": 1.0, "y": 3.0, "z": 2.0, "w": 4.0})
    assert r.spearman == pytest.approx(0.8) and 0.2 < r.spearman_p < 0.5


def test_analyse_ladder_fits_compares_and_extrapolates():
    rungs = []
    for name, b in (("base", 0.10), ("fast", 0.13)):
        for scale, C in (("s", 1e12), ("m", 1e13), ("l", 1e14)):
            rungs.append(Rung(name, scale, 1e5, C, 40 * C ** -b, 1.0))
    res = analyse_ladder(rungs, baseline="base", n_boot=100)
    assert res.fits["fast"].b == pytest.approx(0.13, rel=1e-6)
    assert res.vs_baseline["fast"].percent_faster == pytest.approx(30.0, rel=1e-3)
    assert res.agreement[("s", "l")].spearman == pytest.approx(1.0)
    proxy = reference_spec("llama", d_model=64, n_layers=2, max_seq_len=128)
    C, pred, lo, hi = extrapolate(res.fits["base"], proxy, "350m")
    assert C > 1e18 and lo <= pred <= hi


def test_run_ladder_grows_each_spec_to_each_scale():
    from cambrian.scaling.ladder import run_ladder

    seen = []

    def train_fn(spec, scale):  # stands in for training: loss falls with width
        seen.append((scale.name, spec["d_model"], len(spec["layers"])))
        return 10.0 / spec["d_model"], float(spec["d_model"]) ** 3

    specs = {"llama": reference_spec("llama", d_model=32, n_layers=2, max_seq_len=64).to_dict(),
             "composer": reference_spec("composer", d_model=32, n_layers=1, max_seq_len=64).to_dict()}
    shown = []
    rungs = run_ladder(specs, ["cpu-0.1m", "cpu-0.5m"], train_fn, mode="stretch", on_rung=shown.append)
    assert [(r.spec_name, r.scale) for r in rungs] == [("llama", "cpu-0.1m"), ("composer", "cpu-0.1m"),
                                                       ("llama", "cpu-0.5m"), ("composer", "cpu-0.5m")]
    assert seen[0] == ("cpu-0.1m", 64, 4) and seen[2] == ("cpu-0.5m", 96, 8) and shown == rungs
    assert all(r.params > 0 for r in rungs)
