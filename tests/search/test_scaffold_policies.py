"""Scaffold policies on hand-made search graphs: what each proposes, and why."""

import random

import pytest

from cambrian import Candidate, Metric, MetricSpec, Node, NodeStatus, SearchView
from cambrian.core.plugins import get_plugin_manager

ROLES = ("draft", "improve", "debug", "crossover")


def node(i, loss=None, parents=(), status=None):
    status = status or (NodeStatus.DONE if loss is not None else NodeStatus.FAILED)
    metrics = {"loss": Metric(name="loss", value=loss)} if loss is not None else {}
    return Node(id=f"n{i}", agent="a", operator="op", parents=tuple(parents),
                candidate=Candidate(kind="vector", content=[float(i)]), status=status,
                metrics=metrics, created_at=float(i))


def scaffold(name, **options):
    return get_plugin_manager().get("scaffold", name)(**options)


LOSS = MetricSpec(name="loss")


def view(nodes, roles=ROLES, objective=LOSS, seed=0):
    in_flight = sum(not n.status.finished for n in nodes)
    return SearchView("a", list(nodes), [], objective, roles, in_flight, random.Random(seed))


def seen(s, nodes):
    for n in nodes:
        if n.status.finished:
            s.observe(n)
    return s


# -- greedy -------------------------------------------------------------------------------

def test_greedy_drafts_then_improves_the_best():
    g = scaffold("greedy", n_drafts=3, debug_prob=0.0)
    nodes = [node(0, 5.0), node(1, 2.0)]
    assert seen(g, nodes).propose(view(nodes)).role == "draft"
    nodes.append(node(2, 9.0))
    p = seen(g, nodes).propose(view(nodes))
    assert (p.role, p.parents) == ("improve", ("n1",))


def test_greedy_debugs_failed_leaves_up_to_the_max_depth():
    g = scaffold("greedy", n_drafts=2, debug_prob=1.0, max_debug_depth=2)
    nodes = [node(0, 1.0), node(1)]  # n1 failed
    p = seen(g, nodes).propose(view(nodes))
    assert (p.role, p.parents) == ("debug", ("n1",))
    nodes += [node(2, parents=["n1"]), node(3, parents=["n2"])]  # two failed debug steps in a row
    p = seen(g, nodes).propose(view(nodes))
    assert (p.role, p.parents) == ("improve", ("n0",))  # n3 is at depth 2: no more debugging
    assert p.role == "improve"
    no_debug = seen(scaffold("greedy", n_drafts=2, debug_prob=1.0), nodes[:2])
    assert no_debug.propose(view(nodes[:2], roles=("draft", "improve"))).role == "improve"


def test_greedy_waits_for_drafts_in_flight_and_analyzes_every_k():
    g = scaffold("greedy", n_drafts=2)
    nodes = [node(0, status=NodeStatus.RUNNING), node(1, status=NodeStatus.RUNNING)]
    assert g.propose(view(nodes)) is None
    a = scaffold("greedy", n_drafts=1, analyze_every=2, debug_prob=0.0)
    roles = ROLES + ("analyze",)
    nodes = [node(0, 3.0)]
    assert seen(a, nodes).propose(view(nodes, roles)).role == "improve"  # watermark set at 0
    nodes.append(node(1, 2.0, ["n0"]))
    p = seen(a, nodes).propose(view(nodes, roles))
    assert (p.role, p.parents) == ("analyze", ("n1", "n0"))
    assert a.propose(view(nodes, roles)).role == "improve"  # once per k results


# -- mcts ---------------------------------------------------------------------------------

def test_mcts_expands_by_uct_and_spreads_over_running_children():
    m = scaffold("mcts", n_drafts=2, n_children=1, uct_c=0.0)
    nodes = [node(0, 1.0)]
    assert seen(m, nodes).propose(view(nodes)).role == "draft"
    nodes.append(node(1, 5.0))
    p = seen(m, nodes).propose(view(nodes))
    assert (p.role, p.parents) == ("improve", ("n0",))  # the better root first
    nodes.append(node(2, status=NodeStatus.RUNNING, parents=["n0"]))
    p = m.propose(view(nodes))
    assert (p.role, p.parents) == ("improve", ("n1",))  # n0 is full: never re-expanded
    nodes.append(node(3, status=NodeStatus.RUNNING, parents=["n1"]))
    assert m.propose(view(nodes)) is None  # everything expandable is being evaluated


def test_mcts_backup_normalises_in_the_objectives_direction():
    nodes = [node(0, 1.0), node(1, 3.0), node(2, 2.0, ["n0"]), node(3)]
    m = seen(scaffold("mcts", normalise="minmax", backup="mean"), nodes)
    st = m.state(view(nodes))
    assert st["visits"] == {"n0": 2, "n1": 1, "n2": 1, "n3": 1, "": 4}
    assert st["values"]["n1"] == 0.0 and st["values"]["n0"] == 1.5  # min: 1.0 is best
    assert st["values"]["n3"] == 0.0  # failed: worst
    up = m.state(view(nodes, objective=MetricSpec(name="loss", direction="max")))
    assert up["values"]["n1"] == 1.0 and up["values"]["n0"] == 0.5
    best = seen(scaffold("mcts", normalise="minmax", backup="max"), nodes).state(view(nodes))
    assert best["values"]["n0"] == 2.0  # N * the subtree's best value


def test_mcts_debugs_failed_leaves_and_drafts_when_the_tree_is_dead():
    m = scaffold("mcts", n_drafts=1, max_debug_depth=1)
    nodes = [node(0)]
    p = seen(m, nodes).propose(view(nodes))
    assert (p.role, p.parents) == ("debug", ("n0",))
    nodes.append(node(1, parents=["n0"]))
    assert seen(m, nodes).propose(view(nodes)).role == "draft"  # depth reached, nothing running


# -- evolutionary -------------------------------------------------------------------------

def test_evolutionary_islands_fill_round_robin_and_migrate():
    e = scaffold("evolutionary", population=2, islands=2, migration_every=1, migration_size=1,
                 p_crossover=0.0)
    nodes = [node(0, 4.0), node(1, 9.0), node(2, 1.0)]
    assert seen(e, nodes).propose(view(nodes)).role == "draft"  # island 1 has one member
    nodes.append(node(3, 8.0))
    st = seen(e, nodes).state(view(nodes))
    assert [i["members"] for i in st["islands"]] == [["n0", "n2"], ["n1", "n3"]]
    # Island 0 finished a generation: its best (n2) joined island 1's pool; the ring sends n3 back.
    assert st["islands"][1]["migrants"] == ["n2"] and st["islands"][0]["migrants"] == ["n3"]
    assert st["islands"][1]["pool"] == ["n2", "n3"]
    p = e.propose(view(nodes))  # island 0's turn (4 nodes so far)
    assert p.role == "improve" and p.parents[0] in {"n0", "n2", "n3"}


def test_evolutionary_selection_and_crossover():
    nodes = [node(i, float(i)) for i in range(4)]
    t = seen(scaffold("evolutionary", population=4, tournament_size=4, p_crossover=0.0), nodes)
    assert all(t.propose(view(nodes, seed=s)).parents == ("n0",) for s in range(5))
    c = seen(scaffold("evolutionary", population=4, p_crossover=1.0), nodes)
    p = c.propose(view(nodes))
    assert p.role == "crossover" and len(set(p.parents)) == 2
    f = seen(scaffold("evolutionary", population=4, selection="proportional", p_crossover=0.0), nodes)
    picks = [f.propose(view(nodes, seed=s)).parents[0] for s in range(200)]
    assert picks.count("n0") > picks.count("n3")  # fitter parents are picked more often
    with pytest.raises(ValueError, match="selection"):
        scaffold("evolutionary", selection="roulette")


def test_evolutionary_breeds_from_the_other_agents_best_with_immigrants():
    """immigrants: k: the other agents' best k results (the shared leaderboard) join the pool;
    this agent's own results in the shared list are not counted twice."""
    nodes = [node(i, 5.0 + i) for i in range(4)]
    theirs = [n.model_copy(update={"id": f"b{i}", "agent": "b", "candidate": Candidate(kind="vector", content=[9.0 + i])})
              for i, n in enumerate([node(10, 1.0), node(11, 2.0), node(12, 3.0)])]
    shared = [*nodes, *theirs]
    for k, expect in ((0, "n0"), (1, "b0")):
        e = seen(scaffold("evolutionary", population=4, tournament_size=8, p_crossover=0.0, immigrants=k), nodes)
        v = SearchView("a", list(nodes), shared, LOSS, ROLES, 0, random.Random(0))
        assert [n.id for n in e.pool(v, 0)] == (["b0"] if k else []) + ["n0", "n1", "n2", "n3"]
        assert all(e.propose(SearchView("a", list(nodes), shared, LOSS, ROLES, 0, random.Random(s))).parents
                   == (expect,) for s in range(5))


@pytest.mark.parametrize("name", ["greedy", "mcts", "evolutionary"])
def test_every_tree_scaffold_analyzes_every_k_results_through_one_rule(name):
    s = scaffold(name, analyze_every=2)
    roles = ROLES + ("analyze",)
    nodes = [node(0, 3.0)]
    assert seen(s, nodes).propose(view(nodes, roles)).role != "analyze"  # watermark set at 0
    nodes.append(node(1, 2.0, ["n0"]))
    p = seen(s, nodes).propose(view(nodes, roles))
    assert (p.role, p.parents) == ("analyze", ("n1", "n0"))
    assert s.propose(view(nodes, roles)).role != "analyze"  # once per k results
    nodes += [node(2, 1.0, ["n1"]), node(3, 4.0, ["n1"])]
    p = seen(s, nodes).propose(view(nodes, roles))
    assert (p.role, p.parents) == ("analyze", ("n3", "n2"))
    plain = seen(scaffold(name, analyze_every=2), nodes)
    assert all(plain.propose(view(nodes)).role != "analyze" for _ in range(3))  # no analyze operator
