"""Multi-fidelity search, noise-aware selection and the bo scaffold, on the toy domain."""

from __future__ import annotations

import random

import pytest

from cambrian import Campaign, Candidate, Metric, MetricSpec, Node, NodeStatus, SearchView, standings
from cambrian.core.errors import ConfigError
from cambrian.core.plugins import get_plugin_manager
from cambrian.campaign.standings import unconfirmed_note
from cambrian.campaign.search_yield import best_reference, operator_yield
from cambrian.plugins.reporting.tables import leaderboard_table, yield_table
from cambrian.scaling.verdict import fresh_seeds, hidden_seeds

LOSS = MetricSpec(name="loss")
ROLES = ("draft", "improve")
_clock = [0.0]


def node(cid, loss, fidelity=1.0, seed=0, operator="op", parents=(), status=NodeStatus.DONE, nid=None):
    _clock[0] += 1
    return Node(id=nid or f"{cid}-{fidelity}-{seed}", agent="a", operator=operator, parents=tuple(parents),
                candidate=Candidate(kind="vector", content=[float(cid)]), status=status,
                metrics={} if loss is None else {"loss": Metric(name="loss", value=loss)},
                fidelity=fidelity, seed=seed, created_at=_clock[0])


def view(nodes, budget_left=None, seed=0):
    return SearchView("a", list(nodes), list(nodes), LOSS, ROLES,
                      sum(not n.status.finished for n in nodes), random.Random(seed),
                      seed=0, budget_left=budget_left or {})


def halving(**options):
    s = get_plugin_manager().get("scaffold", "halving")(**options)
    return s


# -- the leaderboard -----------------------------------------------------------------------

def test_standings_rank_by_the_mean_at_the_highest_fidelity_reached():
    nodes = [node(1, 1.0, 0.1), node(1, 3.0, 1.0, seed=0), node(1, 3.2, 1.0, seed=1),
             node(2, 0.5, 0.1),  # best at screening, never promoted
             node(3, 2.9, 1.0), node(4, None, 1.0, status=NodeStatus.FAILED)]
    rows = standings(nodes, LOSS, confirmed=False)  # by the mean alone
    assert [(r.hash, r.fidelity) for r in rows] == [
        (nodes[4].candidate.hash, 1.0), (nodes[1].candidate.hash, 1.0), (nodes[3].candidate.hash, 0.1)]
    # confirmed (the default): 3's one draw (2.9) does not outrank 1's mean of two (3.1)
    assert [r.hash for r in standings(nodes, LOSS)] == [nodes[1].candidate.hash, nodes[4].candidate.hash,
                                                        nodes[3].candidate.hash]
    a = rows[1]
    assert a.n == 2 and a.seeds == (0, 1) and a.mean == pytest.approx(3.1) and a.sd == pytest.approx(0.1414, abs=1e-4)
    assert "±" in a.text() and "2 seeds" in a.text() and "±" not in rows[0].text()
    assert a.fidelities == (0.1, 1.0) and rows[2].fidelities == (0.1,) and rows[0].fidelities == (1.0,)
    screening = standings(nodes, LOSS, fidelity=0.1)  # compared where both were measured
    assert [r.hash for r in screening] == [nodes[3].candidate.hash, nodes[0].candidate.hash]


def test_campaign_best_is_chosen_by_the_mean_not_one_lucky_seed():
    lucky = [node(1, 1.0, seed=0), node(1, 5.0, seed=1)]  # mean 3.0
    steady = [node(2, 2.0, seed=0), node(2, 2.2, seed=1)]  # mean 2.1
    assert standings(lucky + steady, LOSS)[0].hash == steady[0].candidate.hash
    unconfirmed = [node(3, 1.5, seed=0)]  # one draw, better than any mean: its seeds never came
    ranked = [r.hash for r in standings(lucky + steady + unconfirmed, LOSS)]
    assert ranked == [steady[0].candidate.hash, lucky[0].candidate.hash, unconfirmed[0].candidate.hash]
    # the leaderboard says so where it reordered rows, and only there
    assert "one seed" in unconfirmed_note(standings(lucky + unconfirmed, LOSS))
    assert unconfirmed_note(standings(lucky + steady, LOSS)) is None
    title = leaderboard_table(lucky + steady + unconfirmed, LOSS).title
    assert "one seed ranks after" in title


# -- successive halving --------------------------------------------------------------------

def test_halving_promotes_the_best_fraction_of_each_rung_then_screens_new_candidates():
    h = halving(inner="random", rungs=[0.1, 0.3, 1.0], eta=3, reseed_top=0)
    nodes = [node(i, loss, 0.1) for i, loss in enumerate([5.0, 1.0, 4.0, 2.0, 6.0, 3.0])]
    p = h.propose(view(nodes))  # 6 results at rung 0: the best 2 go up, best first
    assert (p.role, p.parents, p.fidelity, p.seed) == ("promote", (nodes[1].id,), 0.3, 0)
    nodes.append(node(1, 0.9, 0.3, operator="promote", parents=[nodes[1].id]))
    p = h.propose(view(nodes))
    assert (p.role, p.parents, p.fidelity) == ("promote", (nodes[3].id,), 0.3)
    nodes.append(node(3, 0.7, 0.3, operator="promote", parents=[nodes[3].id], status=NodeStatus.RUNNING))
    p = h.propose(view(nodes))  # 1 result at rung 1 (< eta): nothing due; the inner scaffold drafts
    assert p.role in ("draft", "improve") and p.fidelity == 0.1
    nodes[-1] = nodes[-1].model_copy(update={"status": NodeStatus.DONE})
    nodes.append(node(0, 4.5, 0.3, operator="promote", parents=[nodes[0].id]))  # 3 results at rung 1
    p = h.propose(view(nodes))  # the highest rung is served first
    assert (p.role, p.parents, p.fidelity) == ("promote", (nodes[7].id,), 1.0)


def test_halving_reseeds_the_leading_finalists_before_one_is_called_best():
    h = halving(inner="random", rungs=[0.1, 1.0], eta=2, reseed_top=2, seeds=3)
    nodes = [node(1, 1.0, 0.1), node(2, 2.0, 0.1), node(1, 3.0, 1.0, operator="promote"),
             node(2, 3.5, 1.0, operator="promote"), node(3, 9.0, 1.0, operator="promote")]
    asked = []
    for _ in range(4):
        p = h.propose(view(nodes))
        assert p.role == "reseed" and p.fidelity == 1.0
        parent = next(n for n in nodes if n.id == p.parents[0])
        asked.append((parent.candidate.content[0], p.seed))
        nodes.append(node(parent.candidate.content[0], parent.metrics["loss"].value, 1.0, seed=p.seed,
                          operator="reseed", parents=p.parents))
    assert asked == [(1.0, 1), (1.0, 2), (2.0, 1), (2.0, 2)]  # the leader, then its rival; never #3
    assert h.propose(view(nodes)).role in ("draft", "improve")
    best = standings(nodes, LOSS)[0]
    assert best.n == 3 and best.seeds == (0, 1, 2)


def test_halving_promotes_and_reseeds_the_best_reference_whatever_its_rank():
    """promote_seeds: the strongest hand-built starting design (operator ``seeds``) meets the
    finalists at their budget and seeds, even when it is slow at the screening budget."""
    h = halving(inner="random", rungs=[0.1, 1.0], eta=3, reseed_top=1, seeds=2, promote_seeds=True)
    nodes = [node(1, 1.0, 0.1), node(2, 2.0, 0.1), node(3, 3.0, 0.1),
             node(7, 6.0, 0.1, operator="seeds"), node(8, 5.0, 0.1, operator="seeds"),  # references, ranked last
             node(4, 4.0, 0.1), node(5, 4.5, 0.1), node(6, 4.8, 0.1)]
    p = h.propose(view(nodes))  # 6 finds at rung 0: the best 2 (1, 2), then the best reference (8), never 7
    assert (p.role, p.parents, p.fidelity) == ("promote", (nodes[0].id,), 1.0)
    nodes.append(node(1, 3.0, 1.0, operator="promote", parents=p.parents))
    nodes.append(node(2, 3.5, 1.0, operator="promote", parents=[nodes[1].id]))
    p = h.propose(view(nodes))
    assert p.role == "reseed" and p.parents == (nodes[8].id,)  # the leader first
    nodes.append(node(1, 3.1, 1.0, seed=p.seed, operator="reseed", parents=p.parents))
    p = h.propose(view(nodes))
    assert (p.role, p.parents, p.fidelity) == ("promote", (nodes[4].id,), 1.0)  # the best reference
    nodes.append(node(8, 3.4, 1.0, operator="promote", parents=p.parents))
    p = h.propose(view(nodes))  # reseeded like a leader although #3 at the top rung
    assert p.role == "reseed" and p.parents == (nodes[-1].id,)
    nodes.append(node(8, 3.3, 1.0, seed=p.seed, operator="reseed", parents=p.parents))
    assert h.propose(view(nodes)).role in ("draft", "improve")
    plain = halving(inner="random", rungs=[0.1, 1.0], eta=3, reseed_top=1, seeds=2)
    assert plain.reserve == 2 and h.reserve == 4  # the reference's promotion and reseed are kept too


def test_a_leading_reference_takes_no_finalist_place():
    """promote_seeds: the best reference climbs and is reseeded besides the eta fraction and the
    reseed_top finalists, which go to finds: when it leads the top rung the best find still
    gets its seeds (with reseed_top 1 it used to take the only place, and a one-seed find was
    called best), and a weaker reference takes no place at all."""
    h = halving(inner="random", rungs=[0.1, 1.0], eta=3, reseed_top=1, seeds=2, promote_seeds=True)
    nodes = [node(8, 1.0, 0.1, operator="seeds"), node(9, 1.5, 0.1, operator="seeds"),  # 2 references
             node(1, 2.0, 0.1), node(2, 3.0, 0.1), node(3, 4.0, 0.1), node(4, 5.0, 0.1), node(5, 6.0, 0.1),
             node(6, 7.0, 0.1)]
    final = {8.0: 3.0, 1.0: 3.2, 2.0: 3.5, 9.0: 3.6}  # at the top rung the reference leads
    asked = []
    while (p := h.propose(view(nodes))).role in ("promote", "reseed"):
        parent = next(n for n in nodes if n.id == p.parents[0])
        x = parent.candidate.content[0]
        asked.append((p.role, x))
        nodes.append(node(x, final[x], 1.0, seed=p.seed, operator=p.role, parents=p.parents))
    # 6 finds at rung 0: the best 2 go up and the best reference besides them; the weaker
    # reference (9), second at screening, does not take a find's place
    assert sorted(x for r, x in asked if r == "promote") == [1.0, 2.0, 8.0]
    assert sorted(x for r, x in asked if r == "reseed") == [1.0, 8.0]  # the best find too; never 2.0
    best_find = next(r for r in standings(nodes, LOSS) if r.hash != nodes[0].candidate.hash)
    assert best_find.n == 2


def test_the_eta_fraction_is_of_the_finds_not_the_references():
    """promote_seeds: references do not count towards a rung's eta fraction. A lone find
    screened beside four references, worse than the best of them, is not promoted and
    reseeded for being the only find (it cost a default campaign three evaluations at the top
    budget); the best reference climbs alone until eta finds are screened."""
    h = halving(inner="random", rungs=[0.1, 1.0], eta=3, reseed_top=1, seeds=3, promote_seeds=True)
    refs = [node(x, loss, 0.1, operator="seeds") for x, loss in ((7, 2.9), (8, 3.5), (9, 3.6), (10, 4.0))]
    nodes = [node(1, 3.2, 0.1), *refs]
    p = h.propose(view(nodes))  # 5 results, 1 find: 1 // 3 = 0 finds go up; the best reference does
    assert (p.role, p.parents) == ("promote", (refs[0].id,))
    nodes.append(node(7, 2.2, 1.0, operator="promote", parents=p.parents))
    for seed in (1, 2):
        p = h.propose(view(nodes))
        assert (p.role, p.seed) == ("reseed", seed) and nodes[-1].candidate.content == [7.0]
        nodes.append(node(7, 2.2, 1.0, seed=p.seed, operator="reseed", parents=p.parents))
    assert h.propose(view(nodes)).fidelity == 0.1  # the find waits for company: screen more
    nodes += [node(2, 3.0, 0.1), node(3, 3.4, 0.1)]
    p = h.propose(view(nodes))  # 3 finds: the best of them goes up
    assert (p.role, p.parents) == ("promote", (nodes[-2].id,))


def test_promote_within_holds_finds_to_the_best_reference_at_each_rung():
    """promote_within: the eta fraction climbs only while within the fraction of the best
    reference at the rung (another agent's screening of it counts; its mean at the top)."""
    refs = [node(7, 2.0, 0.1, operator="seeds"), node(8, 3.0, 0.1, operator="seeds")]
    finds = [node(1, 2.1, 0.1), node(2, 2.5, 0.1), node(3, 2.6, 0.1), node(4, 2.7, 0.1), node(5, 2.8, 0.1),
             node(6, 2.9, 0.1)]

    def bo_view(own, others):  # an agent without the references: they come through shared
        return SearchView("a", list(own), list(own) + list(others), LOSS, ROLES, 0, random.Random(0),
                          budget_left={})

    plain = halving(inner="random", rungs=[0.1, 1.0], eta=3, reseed_top=1, seeds=2)
    held = halving(inner="random", rungs=[0.1, 1.0], eta=3, reseed_top=1, seeds=2, promote_within=0.1)
    # the best two finds (2.1, 2.5) are the eta fraction; only 2.1 is within 10% of 2.0
    assert plain.propose(bo_view(finds, refs)).parents == (finds[0].id,)
    with_first = finds + [node(1, 1.5, 1.0, operator="promote", parents=[finds[0].id])]
    assert plain.propose(bo_view(with_first, refs)).role == "reseed"  # plain ASHA would reseed, then promote 2
    assert held.propose(bo_view(finds, refs)).parents == (finds[0].id,)
    up = with_first + [node(1, 1.55, 1.0, seed=1, operator="reseed", parents=[finds[0].id])]
    assert plain.propose(bo_view(up, refs)).parents == (finds[1].id,)  # 2.5: 25% behind the reference
    assert held.propose(bo_view(up, refs)).role in ("draft", "improve")  # screens instead
    assert held.propose(bo_view(finds, [])).parents == (finds[0].id,)  # no reference measured: no bar
    # at the top rung the bar is the reference's mean there: a leader 20% behind it gets no reseed
    top_ref = [node(7, 1.0, 1.0, operator="promote"), node(7, 1.2, 1.0, seed=1, operator="reseed")]
    behind = finds + [node(1, 1.4, 1.0, operator="promote", parents=[finds[0].id])]
    assert plain.propose(bo_view(behind, refs + top_ref)).role == "reseed"
    assert held.propose(bo_view(behind, refs + top_ref)).role in ("draft", "improve")
    with pytest.raises(ValueError, match="promote_within"):
        halving(promote_within=-0.1)


def test_search_yield_counts_each_operators_designs_against_the_best_reference_there():
    """Each design's first evaluation against the best reference at its fidelity and seed;
    re-evaluations and the references are not designs; a seed with no reference is not compared."""
    refs = [node(7, 2.0, 0.1, operator="seeds"), node(8, 3.0, 0.1, operator="seeds"),
            node(7, 1.0, 1.0, operator="promote")]  # the reference's top-rung score is not a screening's bar
    drafts = [node(1, 1.98, 0.1, operator="draft"), node(2, 2.01, 0.1, operator="draft"),
              node(3, 2.5, 0.1, operator="draft"), node(4, None, 0.1, operator="draft", status=NodeStatus.FAILED)]
    up = [node(1, 0.99, 1.0, operator="promote", parents=[drafts[0].id]),
          node(1, 0.97, 1.0, seed=1, operator="reseed", parents=[drafts[0].id])]
    edits = [node(5, 2.1, 0.1, operator="improve"), node(6, 2.2, 0.1, seed=1, operator="improve")]
    edits = [e.model_copy(update={"agent": "b"}) for e in edits]
    rows = {(r.agent, r.operator): r for r in operator_yield(refs + drafts + up + edits, LOSS)}
    assert set(rows) == {("a", "draft"), ("b", "improve")}
    d = rows["a", "draft"]
    # the promoted draft's mean at the top (0.98) is ahead of the reference's there (1.0)
    assert (d.designs, d.failed, d.compared, d.near, d.ahead, d.climbed, d.climbed_ahead) == (4, 1, 3, 2, 1, 1, 1)
    behind = [n.model_copy(update={"metrics": {"loss": Metric(name="loss", value=1.05)}}) for n in up]
    assert [r.climbed_ahead for r in operator_yield(refs + drafts + behind, LOSS)] == [0]
    assert d.best_lead == pytest.approx(0.01)  # 1.98 against 2.0
    e = rows["b", "improve"]  # seed 1 has no reference measured: one of its two designs is compared
    assert (e.designs, e.compared, e.near, e.ahead, e.climbed) == (2, 1, 0, 0, 0)
    assert e.best_lead == pytest.approx(-0.05)
    assert best_reference(refs, LOSS, 0.1, seed=1) is None and best_reference(refs, LOSS, 1.0).mean == 1.0
    gain = MetricSpec(name="loss", direction="max")  # maximised: the best reference is 3.0, the best draft 2.5
    assert {r.operator: r.best_lead for r in operator_yield(refs + drafts, gain)}["draft"] == pytest.approx(-1 / 6)
    table = yield_table(refs + drafts + up + edits, LOSS)
    text = _render(table)
    assert "draft" in text and "2/3" in text and "1 (1)" in text and "+1.0%" in text and "-5.0%" in text
    assert yield_table(drafts, LOSS) is None  # no reference: nothing to compare with


def _render(table):
    from rich.console import Console

    console = Console(width=160, record=True)
    console.print(table)
    return console.export_text()


def test_the_inner_scaffold_ranks_candidates_as_the_standings_do():
    """A candidate that did best at the largest budget leads the inner scaffold's view, even
    when its screening score was not the best; the inner scaffold sees one node per candidate."""
    seen = []

    class Spy(type(get_plugin_manager().get("scaffold", "random")())):
        def propose(self, view):
            seen.append({n.candidate.content[0]: n.metrics["loss"].value for n in view.nodes})
            return super().propose(view)

    nodes = [node(1, 1.0, 0.1), node(2, 2.0, 0.1), node(3, 3.0, 0.1),
             node(2, 2.5, 1.0, operator="promote"), node(1, 2.9, 1.0, operator="promote")]
    for rank, expect in (("standings", {2.0: 1.0, 1.0: 2.0, 3.0: 3.0}), ("screening", {1.0: 1.0, 2.0: 2.0, 3.0: 3.0})):
        h = halving(inner="random", rungs=[0.1, 1.0], eta=3, reseed_top=0, inner_rank=rank)
        h.inner = Spy()
        assert h.propose(view(nodes)).fidelity == 0.1
        assert seen[-1] == expect


def test_the_inner_scaffold_sees_the_other_agents_on_the_same_standings():
    """The other agents' screening nodes reach the inner scaffold (its ``shared``) scored by
    their place in the standings of everyone's results, like its own: a raw screening score
    would not compare with a place. Their promotions and reseeds are not shown."""
    seen = []

    class Spy(type(get_plugin_manager().get("scaffold", "random")())):
        def propose(self, view):
            seen.append(({n.candidate.content[0]: n.metrics["loss"].value for n in view.nodes},
                         {n.candidate.content[0]: n.metrics["loss"].value for n in view.shared}))
            return super().propose(view)

    mine = [node(1, 1.0, 0.1), node(2, 2.0, 0.1), node(1, 2.9, 1.0, operator="promote")]
    theirs = [n.model_copy(update={"agent": "b"}) for n in
              (node(5, 0.5, 0.1), node(6, 3.0, 0.1), node(5, 2.5, 1.0, operator="promote"))]
    h = halving(inner="random", rungs=[0.1, 1.0], eta=3, reseed_top=0)
    h.inner = Spy()
    v = SearchView("a", mine, [*mine, *theirs], LOSS, ROLES, 0, random.Random(0), seed=0)
    assert h.propose(v).fidelity == 0.1
    own, shared = seen[-1]
    assert own == {1.0: 2.0, 2.0: 3.0}  # b's finalist (5) leads the standings of everyone
    assert shared == {1.0: 2.0, 2.0: 3.0, 5.0: 1.0, 6.0: 4.0}


def test_halving_keeps_the_budgets_end_for_promotions():
    h = halving(inner="random", rungs=[0.1, 1.0], eta=3, reseed_top=1, seeds=2)  # reserve 1 + 1
    nodes = [node(1, 1.0, 0.1), node(2, 2.0, 0.1, status=NodeStatus.RUNNING)]
    assert h.reserve == 2
    assert h.propose(view(nodes, {"nodes": 2, "campaign_nodes": 10})) is None  # no more screening
    assert h.propose(view(nodes, {"nodes": 3})).fidelity == 0.1  # room left: screen on
    done = [nodes[0], nodes[1].model_copy(update={"status": NodeStatus.DONE})]
    p = halving(inner="random", rungs=[0.1, 1.0], eta=2, reseed_top=1, seeds=2).propose(view(done, {"nodes": 2}))
    assert (p.role, p.fidelity) == ("promote", 1.0)  # a finalist and its reseed still fit
    assert halving(inner="random", rungs=[0.1, 1.0], eta=2, reseed_top=1, seeds=2).propose(
        view(done, {"nodes": 1})) is None  # its reseed would not: nothing


def test_halving_gates_promotions_from_a_rung_and_skips_rejected_ones():
    from dataclasses import replace

    h = halving(inner="random", rungs=[0.1, 0.3, 1.0], eta=2, reseed_top=0, approve_from=1.0)
    low = [node(i, loss, 0.1) for i, loss in enumerate([1.0, 2.0, 3.0, 4.0])]
    p = h.propose(view(low))
    assert (p.role, p.fidelity, p.approve) == ("promote", 0.3, False)  # below the gated rung: no asking
    mid = [node(0, 1.0, 0.3, operator="promote"), node(1, 2.0, 0.3, operator="promote")]
    p = h.propose(view(low + mid))
    assert (p.role, p.parents, p.fidelity, p.approve) == ("promote", (mid[0].id,), 1.0, True)
    rejected = replace(view(low + mid), rejected=frozenset({(mid[0].candidate.hash, 1.0)}))
    p = h.propose(rejected)  # the rejected one is not proposed again; the search goes on
    assert p.parents != (mid[0].id,) and not (p.role == "promote" and p.fidelity == 1.0)


def test_size_credit_ranks_screening_results_by_size_but_not_the_top_rung():
    """size_credit: below the top rung a larger design is credited per_log * ln(size / median)
    (the default campaign's screening ranked small designs above larger ones that ended better);
    it counts in the eta fraction and against promote_within's bar, not at the top rung."""
    def sized(cid, loss, params, fidelity=0.1, operator="op"):
        n = node(cid, loss, fidelity, operator=operator)
        if params is not None:
            n = n.model_copy(update={"metrics": {**n.metrics, "params": Metric(name="params", value=params)}})
        return n

    e = 2.718281828459045
    finds = [sized(1, 2.00, 1e5), sized(2, 2.05, 1e5 * e), sized(3, 2.50, 1e5), sized(4, 2.04, None)]
    plain = halving(inner="random", rungs=[0.1, 1.0], eta=4, reseed_top=1, seeds=2)
    credited = halving(inner="random", rungs=[0.1, 1.0], eta=4, reseed_top=1, seeds=2,
                       size_credit={"per_log": 0.1})  # the median size is 1e5: 2 is credited 0.1, to 1.95
    assert plain.propose(view(finds)).parents == (finds[0].id,)
    assert credited.propose(view(finds)).parents == (finds[1].id,)

    ref = sized(9, 1.92, 1e5, operator="seeds")  # another agent's: within 2% of it is 1.9584 at most
    with_ref = SearchView("a", finds, [*finds, ref], LOSS, ROLES, 0, random.Random(0), budget_left={})
    held = dict(inner="random", rungs=[0.1, 1.0], eta=4, reseed_top=1, seeds=2, promote_within=0.02)
    assert halving(**held).propose(with_ref).role in ROLES  # no find clears it as measured
    assert halving(**held, size_credit={"per_log": 0.1}).propose(with_ref).parents == (finds[1].id,)

    # at the top rung, results are ranked as measured: the small design's better mean is reseeded
    top = [sized(1, 1.50, 1e5, 1.0, "promote"), sized(2, 1.52, 1e5 * e, 1.0, "promote")]
    p = halving(inner="random", rungs=[0.1, 1.0], eta=2, reseed_top=1, seeds=2,
                size_credit={"per_log": 0.1}).propose(view([*finds, *top]))
    assert (p.role, p.parents) == ("reseed", (top[0].id,))
    with pytest.raises(ConfigError, match="per_log"):
        halving(size_credit={"per_log": 0})
    with pytest.raises(ConfigError, match="unit"):
        halving(size_credit={"per_log": 0.1, "unit": "x"})


def test_halving_options_are_checked():
    with pytest.raises(ConfigError, match="ascending"):
        halving(rungs=[1.0, 0.5])
    with pytest.raises(ConfigError, match="eta"):
        halving(eta=1)


# -- seeds ---------------------------------------------------------------------------------

def test_hidden_seeds_are_fresh():
    assert fresh_seeds(3, {1000, 1002}) == [1001, 1003, 1004]
    assert hidden_seeds(2, {0, 1}) == [1000, 1001]
    assert hidden_seeds([7, 8], {0, 1}) == [7, 8]
    with pytest.raises(ValueError, match="used by the search"):
        hidden_seeds([0, 5], {0, 1})


# -- end to end on the toy domain ----------------------------------------------------------

def _toy(tmp_path, agents, max_nodes, phases=None):
    cfg = {"name": "mf", "seed": 0, "domain": {"name": "toy", "options": {"dim": 2, "function": "sphere",
                                                                        "noise": 0.5}},
           "executor": {"name": "local", "options": {"workers": 2}},
           "budget": {"max_nodes": max_nodes}, "agents": agents, "phases": phases or {}}
    campaign = Campaign.from_config(cfg, tmp_path / "run")
    return campaign, campaign.run()


@pytest.fixture(scope="module")
def halving_bo_run(tmp_path_factory):
    agent = {"name": "hb", "operators": ["space-draft"], "max_in_flight": 2,
             "scaffold": {"name": "halving", "options": {
                 "inner": {"name": "bo", "options": {"n_startup": 4}},
                 "rungs": [0.1, 0.3, 1.0], "eta": 2, "reseed_top": 1, "seeds": 3}}}
    return _toy(tmp_path_factory.mktemp("mf"), [agent], 16, {"hidden": {"top_k": 1, "seeds": 2}})


def test_promotions_and_reseeds_reevaluate_the_same_candidate(halving_bo_run):
    campaign, result = halving_bo_run
    nodes = campaign.open_store().nodes(phase="search")
    by_id = {n.id: n for n in nodes}
    assert {n.fidelity for n in nodes} == {0.1, 0.3, 1.0}
    for n in nodes:
        if n.operator == "promote":
            parent = by_id[n.parents[0]]
            assert parent.candidate.hash == n.candidate.hash and parent.fidelity < n.fidelity
            assert n.seed == parent.seed == 0
        elif n.operator == "reseed":
            assert n.fidelity == 1.0 and n.seed != 0
        else:
            assert n.fidelity == 0.1 and n.seed == 0 and "params" in n.candidate.meta
    keys = [(n.candidate.hash, n.fidelity, n.seed) for n in nodes]
    assert len(keys) == len(set(keys))  # no evaluation repeated
    best = standings(nodes, campaign.objective)[0]
    assert best.fidelity == 1.0 and best.n == 3 and result.best.candidate.hash == best.hash


def test_hidden_phase_uses_fresh_seeds_at_the_final_fidelity(halving_bo_run):
    campaign, _ = halving_bo_run
    store = campaign.open_store()
    search_seeds = {n.seed for n in store.nodes(phase="search")}
    hidden = store.nodes(phase="hidden")
    assert hidden and {n.fidelity for n in hidden} == {1.0} and {n.split for n in hidden} == {"hidden"}
    assert not {n.seed for n in hidden} & search_seeds
    summary = store.get_meta("phase:hidden")
    assert summary["seeds"] == [1000, 1001] and summary["designs"][0]["val_seeds"] == [0, 1, 2]


def test_bo_study_is_a_function_of_the_view(halving_bo_run):
    """A fresh bo (a resumed campaign's) asks what the live one asks, from the stored nodes alone."""
    campaign, _ = halving_bo_run
    live = campaign.agents[0].scaffold.inner
    screening = [n for n in campaign.open_store().nodes(phase="search") if n.operator == "space-draft"]
    fresh = get_plugin_manager().get("scaffold", "bo")(n_startup=4)
    v = lambda: SearchView("hb", screening, screening, campaign.objective, ("draft",), 0,
                           random.Random(7), space=campaign.domain.search_space(),
                           to_params=campaign.domain.to_params)
    assert fresh.propose(v()).options["params"] == live.propose(v()).options["params"]
    assert len([t for t in fresh.study.trials if t.value is not None]) == len(screening)


def test_bo_learns_from_the_other_agents_evaluations():
    """With learn_from_shared, the other agents' evaluations of points in the space at bo's
    fidelity and seed join the study (mapped by Domain.to_params); other fidelities and seeds
    do not, a candidate counts once, and a point that made no node is a failed trial."""
    domain = get_plugin_manager().get("domain", "toy")(dim=2)
    space = domain.search_space()

    def vec(x, loss, fidelity=0.1, seed=0, agent="b", status=NodeStatus.DONE, meta=None):
        _clock[0] += 1
        return Node(id=f"{agent}{x}{fidelity}{seed}", agent=agent, operator="op",
                    candidate=Candidate(kind="vector", content=[x, -x], meta=meta or {}), status=status,
                    metrics={} if loss is None else {"loss": Metric(name="loss", value=loss)},
                    fidelity=fidelity, seed=seed, created_at=_clock[0])

    own = [vec(0.5, 1.0, agent="a", meta={"params": {"x0": 0.5, "x1": -0.5}}),
           vec(0.7, None, agent="a", status=NodeStatus.RUNNING, meta={"params": {"x0": 0.7, "x1": -0.7}})]
    shared = [vec(0.1, 0.2), vec(0.2, None, status=NodeStatus.FAILED), vec(0.1, 0.3, agent="c"),
              vec(0.3, 0.1, fidelity=1.0), vec(0.4, 0.1, seed=1), vec(9.0, 0.1), own[0]]

    def ask(bo, nodes=own):
        v = SearchView("a", list(nodes), shared, LOSS, ("draft",), 1, random.Random(0), space=space,
                       to_params=domain.to_params)
        return bo.propose(v)

    bo = get_plugin_manager().get("scaffold", "bo")(n_startup=2)
    ask(bo)
    got = sorted((t.params["x0"], t.state.name, t.value) for t in bo.study.trials[:-1])  # [-1]: the ask
    # own: 0.5 (1.0), 0.7 running; shared: 0.1 once (0.2, the first), 0.2 failed; 0.3 (fidelity 1.0),
    # 0.4 (seed 1) and 9.0 (outside the space) are left out
    assert got == [(0.1, "COMPLETE", 0.2), (0.2, "FAIL", None), (0.5, "COMPLETE", 1.0),
                       (0.7, "RUNNING", None)]
    alone = get_plugin_manager().get("scaffold", "bo")(n_startup=2, learn_from_shared=False)
    ask(alone)
    assert sorted(t.params["x0"] for t in alone.study.trials[:-1]) == [0.5, 0.7]
    asked = ask(alone).options["params"]  # made no node (a duplicate): failed from now on
    ask(alone)
    assert any(t.params == asked and t.state.name == "FAIL" for t in alone.study.trials)


def _compose_nodes(domain, patterns, loss):
    out = []
    for i, layers in enumerate(patterns):
        _clock[0] += 1
        out.append(Node(id=f"c{i}", agent="a", operator="space-draft", candidate=domain.spec(layers),
                        status=NodeStatus.DONE, metrics={"loss": Metric(name="loss", value=loss(layers))},
                        fidelity=0.33, seed=0, created_at=_clock[0]))
    return out


def test_bo_gp_learns_what_a_primitive_does_wherever_it_sits():
    """With model: gp, bo models the domain's features of a point (compose: how many layers of
    each primitive), so a primitive that helped in the slots it was seen in is tried in more
    of them: here every design seen has at most two Mamba layers, each one lowering the loss,
    and the model asks for a design with more than any seen, where TPE (one parameter per
    slot) cannot tell what a Mamba layer in an unseen slot would do."""
    domain = get_plugin_manager().get("domain", "compose")(family="hybrid", d_model=32, n_layers=8)
    rng = random.Random(3)
    others = [p for p in domain.primitives if p != "mamba"]
    patterns = []
    for i in range(12):
        layers = [rng.choice(others) for _ in range(rng.randint(6, 10))]
        for slot in rng.sample(range(len(layers)), i % 3):  # 0, 1 or 2 Mamba layers, anywhere
            layers[slot] = "mamba"
        patterns.append(layers)
    nodes = _compose_nodes(domain, patterns, lambda layers: 3.0 - 0.1 * layers.count("mamba") + 0.001 * len(layers))
    seen = {tuple(sorted(domain.features(domain.to_params(n.candidate)).items())) for n in nodes}
    for seed in range(3):
        bo = get_plugin_manager().get("scaffold", "bo")(model="gp", n_startup=6)
        v = SearchView("a", nodes, nodes, LOSS, ("draft",), 0, random.Random(seed), space=domain.search_space(),
                       to_params=domain.to_params, features=domain.features)
        point = bo.propose(v).options["params"]
        feats = domain.features(point)
        assert feats["n_mamba"] > 2, feats
        assert tuple(sorted(feats.items())) not in seen  # a design it has measured the like of: not again
        assert bo.gp is not None and len(bo.gp.X_train_) == len(nodes)


def test_bo_gp_starts_at_random_and_then_models_every_point_it_knows():
    """Without domain features the GP reads the parameters (scaled to [0, 1]); it draws at
    random until n_startup points have values, counts a running point as the worst value seen
    and never asks for it again, and its point is a function of the view (a resumed campaign
    asks what the live one did)."""
    domain = get_plugin_manager().get("domain", "toy")(dim=2)
    space = domain.search_space()

    def vec(x, loss, status=NodeStatus.DONE):
        _clock[0] += 1
        return Node(id=f"g{x}", agent="a", operator="space-draft", candidate=Candidate(kind="vector", content=[x, x]),
                    status=status, metrics={} if loss is None else {"loss": Metric(name="loss", value=loss)},
                    fidelity=0.1, seed=0, created_at=_clock[0])

    def ask(bo, nodes, seed=0):
        v = SearchView("a", list(nodes), [n for n in nodes if n.status.finished], LOSS, ("draft",),
                       sum(not n.status.finished for n in nodes), random.Random(seed), space=space,
                       to_params=domain.to_params, features=domain.features)
        return bo.propose(v).options["params"]

    gp = lambda: get_plugin_manager().get("scaffold", "bo")(model="gp", n_startup=3)
    nodes = [vec(1.0, 2.0), vec(-2.0, 8.0)]
    bo = gp()
    point = ask(bo, nodes)
    assert bo.gp is None and all(-5.12 <= point[k] <= 5.12 for k in space)  # a random draw
    nodes += [vec(3.0, 18.0), vec(0.5, None, status=NodeStatus.RUNNING)]
    point = ask(bo, nodes)
    assert len(bo.gp.X_train_) == 4 and [(0.5 + 5.12) / 10.24] * 2 in bo.gp.X_train_.tolist()  # the running point
    assert point != {"x0": 0.5, "x1": 0.5} and all(-5.12 <= point[k] <= 5.12 for k in space)
    assert ask(gp(), nodes, seed=5) == ask(gp(), nodes, seed=5)


def test_bo_gp_counts_a_running_point_as_the_worst_value_measured():
    from cambrian.plugins.scaffolds.bo import training_set

    X, y = training_set([({}, (0.0,), 2.0), ({}, (1.0,), 8.0)], [(0.5,), (0.7,)])
    assert X.tolist() == [[0.0], [1.0], [0.5], [0.7]] and y.tolist() == [2.0, 8.0, 8.0, 8.0]


def test_compose_maps_any_spec_to_its_layer_pattern():
    domain = get_plugin_manager().get("domain", "compose")(family="hybrid", d_model=32, n_layers=4)
    for ref in domain.seeds(random.Random(0)):  # the references' attention is not the space's
        params = domain.to_params(ref)
        assert params["n_layers"] == len(ref.content["layers"]) and len(params) == 1 + 6
        rebuilt = domain.from_params(params).content["layers"]
        assert [layer["primitive"] for layer in rebuilt] == [layer["primitive"] for layer in ref.content["layers"]]
    drafted = domain.from_params({"n_layers": 3, **{f"layer_{i}": "mamba" for i in range(6)}})
    assert domain.to_params(drafted)["layer_5"] == "mamba"
    assert domain.to_params(domain.spec(["mamba"] * 3)) == {"n_layers": 3, **{f"layer_{i}": "mamba" for i in range(6)}}
    assert domain.to_params(Candidate(kind="spec", content={"layers": ["mamba"] * 9})) is None  # too deep


def test_compose_blocks_space_alternates_mixers_and_mlps_and_holds_the_hybrid_references():
    from cambrian.architectures import get_primitive
    from cambrian.plugins.operators.params import sample_point

    domain = get_plugin_manager().get("domain", "compose")(family="hybrid", d_model=32, n_layers=8,
                                                            space="blocks")
    space = domain.search_space()
    assert space["layer_0"]["choices"] == ["attention", "mamba", "mamba2"]
    assert space["layer_9"]["choices"] == ["swiglu", "mlp"]
    rng = random.Random(0)
    for _ in range(30):  # every draw is a valid stack of mixer-then-MLP blocks
        layers = domain.from_params(sample_point(space, rng)).content["layers"]
        kinds = [get_primitive(layer["primitive"]).kind for layer in layers]
        assert 6 <= len(layers) <= 10 and kinds == ["token", "channel"] * (len(layers) // 2) + ["token"] * (len(layers) % 2)
    refs = {c.meta["baseline"]: c for c in domain.seeds(random.Random(0))}
    for name in ("llama", "nemotron", "jamba"):  # the references are points of it: bo learns from them
        params = domain.to_params(refs[name])
        rebuilt = domain.from_params(params).content["layers"]
        assert [x["primitive"] for x in rebuilt] == [x["primitive"] for x in refs[name].content["layers"]]
        assert all(params[k] in space[k]["choices"] for k in space if k != "n_layers")
    assert domain.to_params(refs["composer"]) is None  # attention, MLP, MLP: two MLPs in a row
    odd = domain.to_params(domain.spec(["mamba", "swiglu", "mamba2", "mlp", "attention", "swiglu", "mamba"]))
    assert [odd[f"layer_{i}"] for i in range(7, 10)] == ["swiglu", "mamba", "swiglu"]  # the fill keeps each slot's kind
    with pytest.raises(ConfigError, match="space: blocks needs token mixers and channel mixers"):
        get_plugin_manager().get("domain", "compose")(primitives=["attention", "mamba"], space="blocks")


def test_bo_needs_a_structured_space():
    bo = get_plugin_manager().get("scaffold", "bo")()
    with pytest.raises(ValueError, match="search space"):
        bo.propose(view([]))
