"""budget.deadline_s: the search stops in time for the phases, planned from the run's own costs."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest
import yaml

from cambrian import Campaign, Candidate, Node, NodeStatus, Store
from cambrian.campaign.deadline import CostModel, makespan
from cambrian.core.config import parse_config
from cambrian.core.errors import ConfigError
from cambrian.core.records import Cost

from ..conftest import toy_config

REFS = [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]


def test_makespan_takes_the_longest_first_after_the_busy_workers():
    assert makespan([3, 3, 2, 2, 2], workers=2) == 7  # 3+2+2 | 3+2
    assert makespan([2, 2, 3, 3, 2], workers=2) == 7  # the order given does not matter
    assert makespan([4], workers=2, busy=[5, 1]) == 5  # the free-soonest worker takes it
    assert makespan([], workers=2, busy=[3, 6, 1]) == 6  # more busy than workers: 6 | 3+1
    assert makespan([5, 1, 1], workers=1) == 7


def _node(i: int, content: list[float], fidelity: float, wall: float, status=NodeStatus.DONE) -> Node:
    return Node(id=f"n{i}", agent="a", operator="draft", candidate=Candidate(kind="vector", content=content),
                status=status, fidelity=fidelity, cost=Cost(wall_s=wall))


def test_cost_model_uses_the_candidates_own_runs_then_the_runs_typical_one():
    a, b, c = [1.0], [2.0], [3.0]
    nodes = [_node(0, a, 1.0, 10.0), _node(1, a, 1.0, 14.0), _node(2, a, 0.5, 3.0),
             _node(3, b, 0.5, 4.0), _node(4, b, 1.0, 99.0, status=NodeStatus.FAILED),
             _node(5, c, 0.5, 7.0)]
    model = CostModel(nodes, exclude={"n5"})
    h = lambda v: Candidate(kind="vector", content=v).hash  # noqa: E731
    assert model.estimate(h(a), 1.0) == 12.0  # its own mean at that fidelity
    assert model.estimate(h(b), 1.0) == 8.0  # its own at 0.5 (the failed run is no cost), scaled
    assert model.estimate(h(c), 1.0) == 12.0  # never measured (n5 excluded): the run's median at 1.0
    assert model.estimate(h(c), 0.25) == pytest.approx(3.5 / 2)  # nearest fidelity's median, scaled
    assert model.next_search() == pytest.approx((10 + 14 + 3 + 4) / 4)  # the search's mean
    assert CostModel([]).estimate(h(a), 1.0) is None and CostModel([]).next_search() is None


def _config(deadline_s: float, **budget):
    return toy_config(domain={"name": "toy", "options": {"dim": 3, "function": "sphere", "sleep_s": 0.2}},
                      executor={"name": "local", "options": {"workers": 1, "idle_workers": 0}},
                      budget={"max_nodes": 400, "deadline_s": deadline_s, **budget},
                      phases={"hidden": {"top_k": 1, "seeds": 2, "references": REFS}})


def test_the_deadline_stops_the_search_with_room_for_the_phase_it_planned(tmp_path):
    result = Campaign.from_config(_config(deadline_s=6.0), tmp_path / "run").run()
    assert result.reason == "deadline_s"
    store = Store(tmp_path / "run", create=False)
    search = store.nodes(phase="search")
    assert 1 <= len(search) < 400  # stopped by the deadline, not by the node budget
    (stop,) = store.events("budget_exhausted")
    plan = stop["payload"]
    assert plan["budget"] == "deadline_s" and plan["deadline_s"] == 6.0
    # the rule that stopped it (the payload rounds both to 0.1 s)
    assert plan["elapsed_s"] + plan["plan_s"] > 6.0 - 0.1
    # what it planned for: the best design and the two references, two fresh seeds each
    assert plan["phase_evaluations"] == 6
    # priced at what this run's evaluations cost: one more search evaluation at the mean of
    # those finished when it stopped
    walls = [n.cost.wall_s for n in search if n.status == NodeStatus.DONE and n.updated_at <= stop["ts"]]
    assert plan["next_search_s"] == pytest.approx(statistics.fmean(walls), abs=0.051)
    # and the phase ran in full after it
    hidden = store.nodes(phase="hidden")
    assert len(hidden) == 6 and all(n.status == NodeStatus.DONE for n in hidden)
    assert store.get_meta("phase:hidden")["designs"]


def test_a_search_the_deadline_stopped_stays_stopped_on_resume(tmp_path):
    Campaign.from_config(_config(deadline_s=6.0), tmp_path / "run").run()
    store = Store(tmp_path / "run", create=False)
    before = len(store.nodes(phase="search"))
    result = Campaign.resume(tmp_path / "run").run()
    assert result.reason == "deadline_s"
    assert len(store.nodes(phase="search")) == before
    assert len(store.events("budget_exhausted")) == 1


def test_a_generous_deadline_leaves_the_node_budget_in_charge(tmp_path):
    result = Campaign.from_config(_config(deadline_s=3600.0, max_nodes=4), tmp_path / "run").run()
    assert result.reason == "max_nodes"
    assert len(Store(tmp_path / "run", create=False).nodes(phase="search")) == 4


def test_a_deadline_in_an_agents_budget_is_refused_when_the_config_loads():
    cfg = toy_config(agents=[{"name": "a", "scaffold": "random", "budget": {"deadline_s": 60}}])
    with pytest.raises(ConfigError, match="deadline_s"):
        parse_config(cfg)


def test_a_phase_runs_its_longest_evaluations_first(tmp_path, monkeypatch):
    c = Campaign.from_config(_config(deadline_s=3600.0, max_nodes=2), tmp_path / "run")
    cands = [Candidate(kind="vector", content=[float(i), 0.0, 0.0]) for i in range(4)]
    cost = {cands[0].hash: 1.0, cands[1].hash: 5.0, cands[2].hash: None, cands[3].hash: 3.0}
    monkeypatch.setattr(CostModel, "estimate", lambda self, h, f: cost[h])
    c._prepare()  # the store and executor a run opens, without its agents
    try:
        c.evaluate(cands, phase="extra", split="val", seeds=(7,))
    finally:
        c.executor.shutdown()
    store = Store(tmp_path / "run", create=False)
    by_id = {n.id: n.candidate.content[0] for n in store.nodes(phase="extra")}
    order = [by_id[e["node_id"]] for e in store.events("node_running") if e["node_id"] in by_id]
    assert order == [2.0, 1.0, 3.0, 0.0]  # unmeasured first, then 5 s, 3 s, 1 s


def test_the_cli_says_when_and_why_the_deadline_stopped_the_search(tmp_path):
    path, run = tmp_path / "c.yaml", tmp_path / "run"
    path.write_text(yaml.safe_dump(_config(deadline_s=6.0)))
    cli = [sys.executable, "-m", "cambrian.cli"]
    out = subprocess.run([*cli, "run", str(path), "--out", str(run), "--quiet"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "stopped: deadline_s" in out.stdout
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("the deadline stopped the search at"))
    assert "the phases' 6 evaluations" in line and "past deadline_s 6" in line
    assert line.split(":")[0] in (run / "report.html").read_text()  # the report's overview says it too
    shown = subprocess.run([*cli, "show", str(run)], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and line in shown.stdout
    summary = json.loads(subprocess.run([*cli, "show", str(run), "--json"], capture_output=True, text=True,
                                        timeout=120).stdout)
    assert summary["status"] == "stopped (deadline_s)"
    assert summary["deadline"]["phase_evaluations"] == 6 and summary["deadline"]["workers"] == 1


def test_search_left_is_the_most_search_evaluations_that_still_fit(tmp_path, monkeypatch):
    from cambrian.campaign.deadline import Deadline

    c = Campaign.from_config(_config(deadline_s=100.0, max_nodes=2), tmp_path / "run")
    c._prepare()
    try:
        d = Deadline(c, 100.0, c.open_store())
        d._next, d._phase_jobs = 10.0, [20.0, 20.0, 7.0]
        workers = c.executor.workers
        for elapsed in (0.0, 30.0, 55.0, 61.0, 70.0, 95.0):
            monkeypatch.setattr(Deadline, "_state", lambda self, store, e=elapsed: (e, [5.0]))
            brute = max([k for k in range(200)
                         if elapsed + makespan([10.0] * k + [20.0, 20.0, 7.0], workers, busy=[5.0]) <= 100.0],
                        default=0)
            d.reached = False
            assert d.search_left(c.open_store()) == brute
            d.reached = False
            assert d.due(c.open_store()) == (brute == 0)  # the stop rule is "not one more fits"
        assert d.search_left(c.open_store()) == 0  # reached stays reached
    finally:
        c.executor.shutdown()


def test_halving_keeps_the_deadlines_last_evaluations_for_finalists_and_says_so():
    import random

    from cambrian import MetricSpec, SearchView
    from cambrian.plugins.scaffolds.halving import HalvingScaffold

    h = HalvingScaffold(inner="random", rungs=[0.33, 1.0], reseed_top=1, seeds=2)  # reserve: 1 + 1

    def view(left):
        return SearchView("a", [], [], MetricSpec(name="loss"), ("draft",), 0, random.Random(0),
                          budget_left={"nodes": None, "campaign_nodes": 50, "deadline_nodes": left})

    move = h.propose(view(3))
    assert move is not None and move.role == "draft" and move.fidelity == 0.33  # screening goes on
    assert h.propose(view(2)) is None  # the reserve: no new screening
    assert h.why_none(view(2)).startswith("screening stopped: 2 evaluation(s) left (deadline_nodes)")
    assert h.why_none(view(3)) is None
