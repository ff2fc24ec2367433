"""The one verdict, on fixed numbers."""

from __future__ import annotations

import pytest
from scipy import stats

from cambrian.scaling.verdict import Row, compare, verdict

NEW = [2.00, 2.01, 2.02, 1.99, 2.00]


def test_the_strongest_baseline_is_named_and_every_baseline_is_compared():
    v = verdict({"found": NEW, "runner-up": [2.30, 2.31, 2.29, 2.30, 2.32]},
                {"llama": [2.40, 2.41, 2.39, 2.42, 2.40], "nemotron": [2.10, 2.11, 2.09, 2.12, 2.10]})
    assert v.best == "found" and v.strongest_baseline == "nemotron" and v.beats_all_baselines is True
    assert [c.baseline for c in v.comparisons] == ["llama", "nemotron"]
    c = v.comparisons[1]
    assert c.margin == pytest.approx(2.104 - 2.004)
    sd_new, sd_nem = stats.tstd(NEW), stats.tstd([2.10, 2.11, 2.09, 2.12, 2.10])
    assert c.spread == pytest.approx(sd_new + sd_nem)
    assert c.welch_p == pytest.approx(stats.ttest_ind(NEW, [2.10, 2.11, 2.09, 2.12, 2.10], equal_var=False).pvalue)
    assert "beats every baseline" in v.text and "strongest baseline, nemotron" in v.text
    assert "Welch p" in v.text and "spread" in v.text
    names = {r["name"]: r for r in v.rows}
    assert names["nemotron"]["seeds"] == 5 and names["nemotron"]["baseline"] is True
    assert names["found"]["mean"] == pytest.approx(2.004) and names["found"]["sd"] == pytest.approx(sd_new)


def test_the_line_gives_the_size_against_the_strongest_baseline_when_both_are_known():
    found = Row(name="found", values=NEW, params=333_000)
    nem = Row(name="nemotron", values=[2.10, 2.11, 2.09, 2.12, 2.10], params=272_000)
    llama = Row(name="llama", values=[2.40, 2.41, 2.39, 2.42, 2.40], params=100_000)
    assert "; 1.22x its parameters" in verdict([found], [llama, nem]).text  # against nemotron, not llama
    assert "parameters" not in verdict([found.model_copy(update={"params": None})], [llama, nem]).text


def test_beating_a_weak_baseline_is_not_beating_the_strongest():
    v = verdict({"found": NEW}, {"llama": [2.4, 2.41, 2.42, 2.4, 2.39], "nemotron": [1.95, 1.96, 1.94, 1.95, 1.97]})
    assert v.strongest_baseline == "nemotron" and v.beats_all_baselines is False
    assert v.text.startswith("found") and "does not beat the strongest baseline, nemotron" in v.text
    assert [c.beats for c in v.comparisons] == [True, False]


def test_a_margin_inside_the_seed_spread_is_no_win_even_with_a_small_p():
    # margin 0.05, sds 0.04 + 0.04: p is small with many seeds, but margin < spread
    a = [1.96, 2.04] * 10
    b = [2.01, 2.09] * 10
    c = compare(Row(name="a", values=a), Row(name="b", values=b))
    assert c.welch_p < 0.05 and c.margin < c.spread and c.beats is False


def test_direction_max_and_single_seeds():
    v = verdict({"d": [0.9, 0.92]}, {"softmax": [0.5, 0.52]}, direction="max", metric="acc")
    assert v.beats_all_baselines is True and v.comparisons[0].margin == pytest.approx(0.4)
    one = verdict({"d": [0.9]}, {"softmax": [0.5]}, direction="max")
    assert one.beats_all_baselines is False and "n/a" in one.text  # one seed: no statistic, no claim


def test_missing_results_give_no_claim():
    v = verdict({"d": NEW}, {"llama": [], "composer": [3.0, 3.1]})
    assert v.beats_all_baselines is None and "no valid hidden result for llama" in v.text
    assert verdict({"d": []}, {"llama": [1.0, 1.1]}).text.startswith("no verdict")
    with pytest.raises(ValueError, match="non-finite"):
        verdict({"d": [1.0, float("nan")]}, {"llama": [1.0, 1.1]})


def test_the_simulated_rule_is_the_rule_draw_by_draw():
    """The vectorised rule behind rerun_beats calls each simulated rerun as compare() does."""
    import numpy as np

    from cambrian.scaling.verdict import _rule

    rng = np.random.default_rng(1)
    a = rng.normal(2.31, 0.015, (300, 5))
    b = rng.normal(2.35, 0.016, (300, 4))
    fast = _rule(a, b, 1.0, 0.05)
    slow = [compare(Row(name="a", values=list(x)), Row(name="b", values=list(y))).beats for x, y in zip(a, b)]
    assert list(fast) == slow and 0 < sum(slow) < 300  # both outcomes occur, and agree everywhere
    assert list(_rule(-a, -b, -1.0, 0.05)) == slow  # direction max: the same calls on negated scores


def test_rerun_beats_says_how_much_the_verdict_hangs_on_the_seeds():
    nem = Row(name="nemotron", values=[2.3258, 2.3544, 2.3532, 2.3701, 2.3552])
    def rerun(shift):
        return compare(Row(name="d", values=[v - shift for v in nem.values]), nem).rerun_beats

    same, edge, far = rerun(0.0), rerun(0.0322), rerun(0.1)  # 0.0322: margin = spread (2 x sd)
    assert same < 0.01 and far > 0.99 and 0.3 < edge < 0.7  # a margin at the spread: a coin toss
    assert rerun(0.02) < edge < rerun(0.045)
    assert rerun(0.0322) == edge  # seeded: the same rows give the same share
    v = verdict({"d": [v - 0.1 for v in nem.values]}, [nem])
    assert "a rerun on fresh seeds beats in 100% (simulated)" in v.text
    assert compare(Row(name="d", values=[2.0]), nem).rerun_beats is None  # one seed: nothing to simulate
