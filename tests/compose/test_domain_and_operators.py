"""The compose domain and its structured operators: always-valid specs, canonical dedup, prompts."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cambrian import Candidate, MetricSpec, Node, OperatorContext, hookimpl
from cambrian.architectures import ArchSpec
from cambrian.architectures.primitives.base import Flops, Option, Primitive
from cambrian.plugins.domains.compose.domain import ComposeDomain
from cambrian.plugins.domains.compose.operators import SpecCrossover, SpecMutate, SpecRandom
from cambrian.plugins.domains.compose.phases import rung_spec
from cambrian.scaling.ladder import minimal_layers, resize
from tests.conftest import with_options

DOMAINS = {"former": ComposeDomain(family="former"), "hybrid": ComposeDomain(family="hybrid", n_layers=6)}


def ctx(domain, parents, seed):
    return OperatorContext(domain=domain, parents=parents, rng=random.Random(seed),
                           objective=MetricSpec(name="score"), leaderboard=[], notes=[], budget_left={})


def node(cand: Candidate, nid: str) -> Node:
    return Node(id=nid, agent="a", operator="o", candidate=cand)


def check_valid(domain, cand: Candidate) -> None:
    spec = ArchSpec.from_dict(cand.content)
    assert cand.content == spec.to_dict()  # canonical: defaults filled in
    assert domain.s["min_layers"] <= spec.n_layers <= domain.s["max_layers"]
    assert {layer.primitive for layer in spec.layers} <= set(domain.primitives)
    assert domain.validate(cand).hash == cand.hash


@settings(max_examples=60, deadline=None)
@example(seed=20000, family="former")  # parents that differ at one layer only
@given(seed=st.integers(0, 2**32 - 1), family=st.sampled_from(sorted(DOMAINS)))
def test_operators_always_produce_valid_new_specs(seed, family):
    d = DOMAINS[family]
    a = SpecRandom().apply(ctx(d, [], seed))[0]
    b = SpecRandom().apply(ctx(d, [], seed + 1))[0]
    for cand in (a, b):
        check_valid(d, cand)
        assert len(cand.content["layers"]) == d.s["n_layers"]
    pa, pb = node(a, "a"), node(b, "b")
    for op, parents in ((SpecMutate(), [pa]), (SpecMutate(edits=3), [pa]), (SpecCrossover(), [pa, pb]),
                        (SpecCrossover(mode="uniform"), [pa, pb])):
        out = op.apply(ctx(d, parents, seed))
        differ = sum(x != y for x, y in zip(a.content["layers"], b.content["layers"]))
        if getattr(op.options, "mode", None) == "uniform" and differ < 2:
            assert out == []  # a uniform child of parents differing at one layer is a parent
            continue
        assert len(out) == 1, op.name
        check_valid(d, out[0])
        assert out[0].hash not in {p.candidate.hash for p in parents}


def test_crossover_of_identical_parents_gives_up_cleanly():
    d = DOMAINS["former"]
    a = d.spec(["attention", "swiglu"] * 4)
    assert SpecCrossover(mode="uniform").apply(ctx(d, [node(a, "a"), node(a, "b")], 0)) == []


def test_equivalent_specs_deduplicate_by_canonical_hash():
    d = DOMAINS["former"]
    short = d.spec(["attention", "swiglu"] * 4)
    explicit = d.validate(Candidate(kind="spec", content={
        "d_model": 64, "layers": [{"primitive": "attention", "options": {"n_heads": 4, "head_dim": 16}},
                                  {"primitive": "swiglu", "options": {"hidden": 176}}] * 4}))
    assert short.hash == explicit.hash
    llama = d.baselines()["llama"]
    assert d.validate(llama).hash == llama.hash  # baselines are canonical: they dedup against search
    assert d.spec(["attention", "mlp"] * 4).hash != short.hash


@pytest.mark.parametrize("content, reason", [
    ({"d_model": 96, "layers": ["attention", "swiglu"] * 4}, "d_model must be 64"),
    ({"layers": ["attention", "mamba"] * 4}, "not in this campaign's set"),
    ({"layers": ["attention", "swiglu"]}, "allows 6 to 10"),
    ({"layers": [{"primitive": "attention", "options": {"n_heads": 5}}] * 8}, "not divisible"),
    ([1, 2], "JSON object"),
])
def test_validate_rejects_with_a_readable_reason(content, reason):
    with pytest.raises(ValueError, match=reason):
        DOMAINS["former"].validate(Candidate(kind="spec", content=content))


def test_llm_reply_parses_through_the_domain():
    d = DOMAINS["former"]
    desc = d.describe()
    for word in ("attention", "swiglu", "mlp", "```json", "bits per byte", "d_model 64"):
        assert word in desc
    reply = "Here is my design.\n```json\n" + json.dumps(
        {"d_model": 64, "vocab_size": 256, "max_seq_len": 128,
         "layers": [{"primitive": "attention"}, {"primitive": "mlp", "options": {"activation": "relu2"}}] * 4}) + "\n```"
    cand = d.parse(reply)
    check_valid(d, cand)
    assert d.render(cand).startswith("```json")
    with pytest.raises(ValueError, match="no ```json"):
        d.parse("no block here")


def test_baselines_and_seeds():
    d = DOMAINS["hybrid"]
    base = d.baselines()
    assert set(base) == {"llama", "composer", "nemotron", "jamba"}
    prims = [layer["primitive"] for layer in base["nemotron"].content["layers"]]
    assert "mamba2" in prims and "attention" in prims
    assert [layer["primitive"] for layer in base["composer"].content["layers"][:3]] == ["attention", "mlp", "mlp"]
    assert {c.hash for c in d.seeds(random.Random(0))} <= {c.hash for c in base.values()}


def test_rungs_stack_and_stretch_rederive_options():
    d = DOMAINS["former"]
    cand = d.spec(["attention", "swiglu", "mlp"] + ["attention", "swiglu"] * 2 + ["mlp"])
    layers = minimal_layers(cand.content)
    assert layers[0] == {"primitive": "attention", "options": {}}
    names = [x["primitive"] for x in layers]
    assert [x["primitive"] for x in resize(layers, 16, "stack")] == names * 2
    assert [x["primitive"] for x in resize(layers, 16, "stretch")] == [n for n in names for _ in (0, 1)]
    big = rung_spec(cand.content, {"name": "x", "d_model": 128, "depth": 1.5})
    spec = ArchSpec.from_dict(big)
    assert spec.d_model == 128 and spec.n_layers == 12
    heads = ArchSpec.from_dict(cand.content).layers[0].options["n_heads"]
    # the ladder's one rule: head size kept (16), so twice the heads at twice the width
    assert spec.layers[0].options["head_dim"] == 16 and spec.layers[0].options["n_heads"] == 2 * heads


class Gain(Primitive):
    name = "gain-compose-test"
    kind = "channel"
    description = "A learned per-channel gain."
    options = (Option("init", float, 1.0, "initial gain"),)

    def params(self, o, d):
        return d

    def flops(self, o, d, seq_len):
        return Flops(0, other=d)

    def build(self, o, spec, layer_index):  # pragma: no cover - never built here
        raise NotImplementedError


class GainPlugin:
    @hookimpl
    def cambrian_primitives(self):
        return [Gain]


def test_third_party_primitive_joins_the_search_space(fresh_pm):
    from cambrian.architectures import unregister_primitive

    fresh_pm.register(GainPlugin(), "gain-compose")
    try:
        d = ComposeDomain(primitives=["attention", "gain-compose-test"], n_layers=4)
        assert "gain-compose-test" in d.describe()
        seen = set()
        for seed in range(10):
            cand = SpecRandom().apply(ctx(d, [], seed))[0]
            check_valid(d, cand)
            seen |= {layer["primitive"] for layer in cand.content["layers"]}
            mutated = SpecMutate().apply(ctx(d, [node(cand, "p")], seed))[0]
            check_valid(d, mutated)
        assert seen == {"attention", "gain-compose-test"}
    finally:
        fresh_pm.unregister("gain-compose")
        unregister_primitive("gain-compose-test")


def test_llm_improve_operator_works_on_specs_and_repairs_bad_replies():
    from cambrian import LLMBackend, LLMResponse
    from cambrian.plugins.operators.llm import LLMImprove

    good = {"d_model": 64, "layers": [{"primitive": "attention"}, {"primitive": "swiglu"}] * 3
            + [{"primitive": "mlp"}] * 2}

    class Scripted(LLMBackend):
        name = "scripted"

        def __init__(self):
            super().__init__()
            self.replies = ["```json\n{\"d_model\": 64, \"layers\": [\"mamba\"]}\n```",  # invalid: repaired
                            "Better:\n```json\n" + json.dumps(good) + "\n```"]
            self.prompts = []

        def complete(self, messages, **kw):
            self.prompts.append(messages)
            return LLMResponse(text=self.replies.pop(0), prompt_tokens=10, completion_tokens=5)

    d = DOMAINS["former"]
    parent = node(d.baselines()["llama"], "p")
    llm = Scripted()
    c = ctx(d, [parent], 0)
    c.llm = llm
    out = LLMImprove().apply(c)
    check_valid(d, out[0])
    assert out[0].hash == d.spec([x["primitive"] for x in good["layers"]]).hash
    first_user = llm.prompts[0][-1]["content"]
    assert "swiglu" in first_user and '"primitive"' in first_user  # task description and parent spec
    assert "the proxy allows 6 to 10" in llm.prompts[1][-1]["content"]  # the repair quotes the reason


def test_device_option_is_checked_and_decides_the_sandbox_address_space_limit():
    from cambrian import EvalJob
    from cambrian.execution.evaluation import CUDA_ADDRESS_SPACE_MB, job_limits
    from cambrian.plugins.domains.compose.evaluator import ComposeEvaluator

    with pytest.raises(ValueError, match=r"domain .compose. options: device: device must be auto, cpu, cuda or cuda:N"):
        ComposeDomain(device="gpu")
    spec = DOMAINS["former"].spec(["attention", "swiglu"] * 4)

    def job(domain_options, evaluator_options):
        return EvalJob(node_id="n", run_dir="/nonexistent", domain="compose", domain_options=domain_options,
                       evaluator="compose", evaluator_options=evaluator_options, candidate=spec,
                       limits={"memory_mb": 2048})

    on_cpu = job({"device": "cpu"}, {})
    assert not ComposeEvaluator().uses_gpu(on_cpu) and job_limits(on_cpu).memory_mb == 2048
    # a scaling rung's evaluator options put it on the GPU: no address-space cap for its worker
    scaled = job({"device": "cpu"}, {"device": "cuda", "train_tokens": 1000})
    assert ComposeEvaluator(device="cuda").uses_gpu(scaled)
    assert job_limits(scaled).memory_mb == CUDA_ADDRESS_SPACE_MB


def test_scaling_phase_estimates_what_approval_would_cost(tmp_path):
    """`approve: true` on scaling: the estimate counts the ladder's models without training them."""
    import types

    from cambrian import Campaign
    from cambrian.architectures import ArchSpec
    from cambrian.architectures.counting import count

    from .tiny import tiny_config

    cfg = tiny_config()
    cfg["phases"]["scaling"]["approve"] = True
    c = Campaign.from_config(cfg, tmp_path / "run")
    assert c.phases and c.approvals_needed == {"scaling"}
    c.executor = types.SimpleNamespace(workers=1)
    est = next(p for p in c.phases if p.name == "scaling").estimate(c)
    llama = c.domain.baselines()["llama"].content
    big = count(ArchSpec.from_dict(rung_spec(llama, {"d_model": 48, "depth": 2})))
    small = count(ArchSpec.from_dict(llama))
    assert est["evaluations"] == 2 and est["params"] == big.params  # llama at the proxy and at x2
    assert est["tokens"] == 12_000 + 16_000
    assert est["flops"] == small.training_flops_per_token * 12_000 + big.training_flops_per_token * 16_000


def test_spec_analyze_writes_primitive_insights_with_evidence():
    import random as _random

    from cambrian import Metric, NodeStatus
    from cambrian.core.plugins import get_plugin_manager

    from .tiny import TINY_DOMAIN

    pm = get_plugin_manager()
    domain = pm.get("domain", "compose")(**TINY_DOMAIN)
    op = pm.get("operator", "spec-analyze")(min_designs=2, top=1)
    prims = list(domain.primitives)
    good, other = prims[0], prims[1]
    nodes = []
    for i in range(6):  # specs with `good` score 1.0, those without 2.0
        layers = [good if i < 3 else other] + [other] * (domain.s["n_layers"] - 1)
        cand = domain.spec(layers)
        nodes.append(node(cand, f"n{i:011d}").model_copy(update={
            "status": NodeStatus.DONE, "metrics": {"score": Metric(name="score", value=1.0 if i < 3 else 2.0)}}))
    ctx = OperatorContext(domain=domain, parents=[], rng=_random.Random(0), objective=domain.objective,
                          leaderboard=[], notes=[], budget_left={}, shared=nodes)
    assert op.apply(ctx) == []
    [insight] = ctx.new_insights
    assert insight.about == {"primitive": good, "effect": 1.0} and f"better with {good}" in insight.text
    assert set(insight.evidence) == {"n00000000000", "n00000000001", "n00000000002"}


def test_spec_mutate_insight_bias_draws_primitives_the_board_finds_better():
    from cambrian import Insight
    from cambrian.core.plugins import get_plugin_manager

    from .tiny import TINY_DOMAIN

    pm = get_plugin_manager()
    domain = pm.get("domain", "compose")(**TINY_DOMAIN)
    prims = list(domain.primitives)
    good, other = prims[0], prims[1]
    parent = node(domain.spec([other] * domain.s["n_layers"]), "p0000000000a")
    board = [Insight(text=f"better with {good}", agent="x", evidence=("n1",), about={"primitive": good, "effect": 0.5}),
             Insight(text=f"worse with {prims[-1]}", agent="x", evidence=("n2",),
                     about={"primitive": prims[-1], "effect": -0.5})]

    def uses_good(bias, insights):
        op = pm.get("operator", "spec-mutate")(insight_bias=bias)
        hits = 0
        for seed in range(120):
            c = OperatorContext(domain=domain, parents=[parent], rng=random.Random(seed), objective=domain.objective,
                                leaderboard=[], notes=[], budget_left={}, insights=insights)
            [cand] = op.apply(c)
            hits += any(x["primitive"] == good for x in cand.content["layers"])
        return hits

    plain, biased = uses_good(0.0, board), uses_good(1.0, board)
    assert biased > 2 * plain and biased > 40  # the positive insight's primitive is drawn far more often
    assert uses_good(1.0, board[1:]) == plain  # a negative insight alone shifts nothing
    assert uses_good(0.0, []) == plain  # off: exactly the unbiased draws


NEMOTRON = ["mamba2", "swiglu", "mamba2", "swiglu", "attention", "swiglu", "mamba2", "swiglu"]


def nemotron_mutant_layers(op) -> tuple[list[dict], list[list[dict]]]:
    """The Nemotron-style stack's minimal layers and ``op``'s mutants of it, seeds 0-199 (each checked valid)."""
    d = ComposeDomain(family="hybrid")
    ref = d.validate(d.baselines()["nemotron"])
    parent = node(ref, "p0000000000a")
    out = []
    for seed in range(200):
        [cand] = op.apply(ctx(d, [parent], seed))
        check_valid(d, cand)
        out.append(minimal_layers(cand.content))
    return minimal_layers(ref.content), out


def nemotron_mutants(op) -> list[list[str]]:
    """The layer patterns of ``op``'s mutants of the Nemotron-style stack, seeds 0-199."""
    ref, mutants = nemotron_mutant_layers(op)
    assert [x["primitive"] for x in ref] == NEMOTRON
    return [[x["primitive"] for x in m] for m in mutants]


def test_spec_mutate_kinds_keeps_mixer_then_mlp_stacks_and_moves_whole_blocks():
    """With ``kinds``, 200 mutations of the Nemotron-style stack are all mixer-then-MLP stacks;
    the inserts and deletes among them add or take exactly one block; without it, some are not."""
    from cambrian.architectures import get_primitive

    def kinds_of(names):
        return [get_primitive(p).kind for p in names]

    kept = nemotron_mutants(SpecMutate(kinds=True))
    stack = ["token", "channel"]
    assert kinds_of(NEMOTRON) == stack * 4
    assert all(kinds_of(m) == stack * (len(m) // 2) for m in kept)  # every mutant is a stack of blocks
    assert {len(m) for m in kept} == {6, 8, 10}  # a block taken, none, a block added
    grown = [m for m in kept if len(m) == 10]
    assert any(m[-2:] != ["mamba2", "swiglu"] or m[:-2] != NEMOTRON for m in grown)  # new blocks vary
    assert any(m.count("mamba") == 1 and len(m) == 8 for m in kept)  # a Mamba-2 changed to a Mamba-1
    free = nemotron_mutants(SpecMutate())
    assert any(kinds_of(m) != stack * (len(m) // 2) for m in free)  # the plain edits break stacks


def test_spec_mutate_moves_draws_only_the_listed_edits():
    """Without ``option`` in ``moves``, 200 mutations of nemotron all change its layer pattern
    (with all five moves some keep the pattern and change an option); with only ``insert`` every
    mutant is one block deeper; a config naming an unknown move is refused."""
    assert any(p == NEMOTRON for p in nemotron_mutants(SpecMutate(kinds=True)))  # option edits keep the pattern
    assert all(p != NEMOTRON for p in nemotron_mutants(SpecMutate(kinds=True, moves=["swap", "primitive", "insert", "delete"])))
    assert {len(p) for p in nemotron_mutants(SpecMutate(kinds=True, moves=["insert"]))} == {len(NEMOTRON) + 2}
    with pytest.raises(ValueError, match="moves"):
        SpecMutate(moves=["grow"])
    with pytest.raises(ValueError, match="moves"):
        SpecMutate(moves=[])


def test_spec_mutate_width_changes_one_layers_width_and_a_move_listed_twice_is_drawn_twice_as_often():
    """A ``width`` edit keeps the pattern and changes one layer's Mamba-2 ``expand`` or SwiGLU
    ``hidden`` (never the attention layer, which has no width option), both up and down; with
    ``width`` listed twice beside ``insert``, about two thirds of 200 mutants keep the depth."""
    ref, mutants = nemotron_mutant_layers(SpecMutate(kinds=True, moves=["width"]))
    changed = []
    for m in mutants:
        assert [x["primitive"] for x in m] == NEMOTRON
        [(i, before, after)] = [(i, a.get("options", {}), b.get("options", {}))
                                for i, (a, b) in enumerate(zip(ref, m, strict=True)) if a != b]
        [key] = {k for k in {*before, *after} if before.get(k) != after.get(k)}
        assert key in ("expand", "hidden"), (i, before, after)
        changed.append((NEMOTRON[i], after.get(key)))
    assert {p for p, _ in changed} == {"mamba2", "swiglu"}
    assert {v for p, v in changed if p == "mamba2"} == {1, 4}  # from expand 2: halved and doubled
    _, mixed = nemotron_mutant_layers(SpecMutate(kinds=True, moves=["width", "width", "insert"]))
    kept = sum(len(m) == len(NEMOTRON) for m in mixed)
    assert 110 <= kept <= 155, kept  # 2/3 of 200 is 133; were the move drawn once, 100 would


def test_spec_mutate_width_all_sets_one_width_in_every_layer_of_a_primitive():
    """A ``width-all`` edit keeps the pattern and gives every layer of one primitive the same
    new width (every Mamba-2's ``expand`` or every SwiGLU's ``hidden``), the other layers
    untouched; from a parent whose Mamba-2s differ in width, they come out alike."""
    d = ComposeDomain(family="hybrid")
    ref, mutants = nemotron_mutant_layers(SpecMutate(kinds=True, moves=["width-all"]))
    seen = set()
    for m in mutants:
        assert [x["primitive"] for x in m] == NEMOTRON
        changed = {i for i, (a, b) in enumerate(zip(ref, m, strict=True)) if a != b}
        [prim] = {NEMOTRON[i] for i in changed}
        assert changed == {i for i, p in enumerate(NEMOTRON) if p == prim}  # all of them, no other
        [opts] = {tuple(sorted(m[i].get("options", {}).items())) for i in changed}
        assert dict(opts).keys() <= {"expand", "hidden"}, opts
        seen.add((prim, opts))
    assert {p for p, _ in seen} == {"mamba2", "swiglu"}
    assert {o for p, o in seen if p == "mamba2"} == {(("expand", 1),), (("expand", 4),)}
    wide_first = d.spec(with_options(d.baselines()["nemotron"].content, 0, expand=4)["layers"])
    op, alike = SpecMutate(kinds=True, moves=["width-all"]), 0
    for seed in range(40):
        [cand] = op.apply(ctx(d, [node(wide_first, "p0000000000b")], seed))
        layers = minimal_layers(cand.content)
        widths = {layer.get("options", {}).get("expand") for layer in layers if layer["primitive"] == "mamba2"}
        hidden = {layer.get("options", {}).get("hidden") for layer in layers if layer["primitive"] == "swiglu"}
        assert len(widths) == 1 or (widths == {4, None} and len(hidden) == 1), (widths, hidden)
        alike += len(widths) == 1
    assert alike >= 5, alike  # the Mamba-2s are the edit's pick about 3 times in 7
