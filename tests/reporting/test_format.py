"""How the report writes numbers, dates and design labels."""

from __future__ import annotations

import pytest

from cambrian.plugins.domains.compose.domain import ComposeDomain
from cambrian.plugins.reporting.format import Labels, date, duration, metric, shorten, si, wrap
from cambrian.plugins.reporting.summary import design_summary
from tests.conftest import with_options


@pytest.mark.parametrize("value, text", [(232_123, "232k"), (1.5e9, "1.5G"), (12, "12"), (3_400_000, "3.4M"),
                                         (None, "-"), (float("nan"), "-")])
def test_si(value, text):
    assert si(value) == text


def test_metrics_read_as_a_person_expects():
    assert metric("params", 232_123) == "232k" and metric("flops_per_token", 81_920) == "81.9k"
    assert metric("bpb", 2.1234567) == "2.123" and metric("mqar_acc", 0.0596) == "0.0596"


def test_dates_and_durations():
    assert date(0) == "1970-01-01 00:00:00 UTC"
    assert (duration(3.25), duration(75), duration(4000)) == ("3.2 s", "1 min 15 s", "1 h 6 min")


def test_text_is_shortened_and_wrapped_between_words_never_inside_one():
    text = "a hybrid of gated linear attention and sliding-window softmax attention with shared keys"
    short = shorten(text, 40)
    assert len(short) <= 40 and short.endswith(" …")
    assert all(word in text.split() for word in short[:-2].split())
    assert all(word in text.split() for line in wrap(text, 20).splitlines() for word in line.split())


def test_patterns_get_codes_folded_repeats_and_a_legend():
    labels = Labels()
    assert labels.design({"layers": ["attention", "mlp"] * 4}) == "(A·M)×4"
    assert labels.design({"layers": [{"primitive": "mamba"}, "mlp", "mlp", "mlp", "attention"]}) == "Ma·M×3·A"
    assert labels.design("attention,swiglu x2") == "(A·S)×2"  # a phase summary's pattern string
    assert labels.design({"layers": ["mamba2", "mlp"]}) == "M2·M"
    assert labels.legend() == [("A", "attention"), ("M", "mlp"), ("M2", "mamba2"), ("Ma", "mamba"),
                               ("S", "swiglu")]
    assert labels.design([-2.932279, 2.071003, 0.062914]) == "[-2.93, 2.07, 0.0629]"
    assert labels.design("# Gated attention that remembers\nimport torch") == "Gated attention that remembers"


def test_a_design_edited_only_in_its_options_is_labelled_apart_from_the_one_it_edits():
    """The Nemotron-style reference with its first Mamba-2 at expand 4 has the reference's layer
    pattern; its labels (the report's codes, `show`'s names) carry the options each layer sets
    beyond what its primitive derives (the reference's 2-head attention too), so the two differ."""
    d = ComposeDomain(family="hybrid")
    ref = d.validate(d.baselines()["nemotron"]).content
    edit = with_options(ref, 0, expand=4)
    labels = Labels()
    assert labels.design(ref) == "M2·S·M2·S·A(n_heads=2)·S·M2·S"
    assert labels.design(edit) == "M2(expand=4)·S·M2·S·A(n_heads=2)·S·M2·S"
    assert design_summary(edit) == "mamba2(expand=4),swiglu,mamba2,swiglu,attention(n_heads=2),swiglu,mamba2,swiglu"
    assert labels.legend() == [("A", "attention"), ("M2", "mamba2"), ("S", "swiglu")]
