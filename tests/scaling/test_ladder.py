import pytest

from cambrian.architectures import ArchSpec, count, reference_spec
from cambrian.scaling.ladder import (
    SCALES,
    Rung,
    analyse_ladder,
    at_scale,
    cluster_of_best,
    compare_fits,
    extrapolate,
    fit_scaling,
    majority_vote,
    promote,
    rank_agreement,
    resize,
    scale_budget,
)


def test_stack_and_stretch():
    assert resize(["a", "b"], 6, "stack") == ["a", "b"] * 3
    assert resize(["a", "b"], 4, "stretch") == ["a", "a", "b", "b"]
    assert resize(["a", "b", "c"], 4, "stack") == ["a", "b", "c", "a"]  # cut to the depth asked


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
            rungs.append(Rung(name, scale, 1e5, C, 40 * C ** -b, 1.0, floor=10.0))
    res = analyse_ladder(rungs, baseline="base", n_boot=100)
    assert res.fits["fast"].resolved and res.fits["fast"].fit.b == pytest.approx(0.13, rel=1e-6)
    assert res.vs_baseline["fast"]["percent_faster"] == pytest.approx(30.0, rel=1e-3)
    assert "vs base" in res.vs_baseline["fast"]["text"]
    assert res.agreement[("s", "l")].spearman == pytest.approx(1.0)
    assert not res.agreement[("s", "l")].resolved  # 2 designs: a correlation, not a claim
    proxy = reference_spec("llama", d_model=64, n_layers=2, max_seq_len=128)
    C, pred, lo, hi = extrapolate(res.fits["base"].fit, proxy, "350m")
    assert C > 1e18 and lo <= pred <= hi


def test_exponents_are_fitted_only_where_the_data_resolve_them():
    law = lambda C: 40 * C ** -0.1  # 2.5 bpb at 1e12, 1.6 at 1e14
    ok = fit_scaling("d", [(C, law(C), 5.0) for C in (1e12, 1e13, 1e14)], n_boot=50)
    assert ok.resolved and ok.fit.b == pytest.approx(0.1) and ok.reason is None
    two = fit_scaling("d", [(C, law(C), 5.0) for C in (1e12, 1e14)], n_boot=50)
    assert not two.resolved and two.reason.startswith("not resolved: 2 rung(s)")
    narrow = fit_scaling("d", [(C, law(C), 5.0) for C in (1e12, 2e12, 4e12)], n_boot=50)
    assert not narrow.resolved and "span 4.0x" in narrow.reason
    # the cheapest rung sits on the unigram plateau (loss >= floor): dropped, so 2 rungs remain
    plateau = fit_scaling("d", [(1e12, 4.8, 4.7), (1e13, law(1e13), 4.7), (1e14, law(1e14), 4.7)], n_boot=50)
    assert not plateau.resolved and plateau.dropped == [(1e12, 4.8)] and len(plateau.points) == 2
    cmp = compare_fits(ok, plateau)
    assert cmp["resolved"] is False and cmp["text"].startswith("not resolved") and "percent_faster" not in cmp
    assert plateau.summary()["resolved"] is False and "b" not in plateau.summary()


def test_rank_agreement_over_six_designs_has_exact_p_values():
    from scipy import stats

    a = {n: float(i) for i, n in enumerate("abcdef")}
    b = {"a": 0.0, "b": 2.0, "c": 1.0, "d": 3.0, "e": 5.0, "f": 4.0}
    r = rank_agreement(a, b)
    assert r.n == 6 and r.resolved and r.summary()["resolved"]
    x, y = list(a.values()), [b[k] for k in a]
    assert r.kendall_p == pytest.approx(stats.kendalltau(x, y, method="exact").pvalue)
    # exact Spearman p: the share of all 720 pairings with |rho| at least as large
    import itertools

    rho = stats.spearmanr(x, y).statistic
    hits = sum(abs(stats.spearmanr(x, p).statistic) >= abs(rho) - 1e-9 for p in itertools.permutations(y))
    assert r.spearman_p == pytest.approx(hits / 720)


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
