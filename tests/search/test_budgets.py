"""Every budget stops the campaign (or the agent) cleanly and says which one ran out."""

import os
import time
from pathlib import Path

import pytest

from cambrian import Campaign, NodeStatus, Store

from . import budget_plugin


@pytest.fixture
def pm(fresh_pm):
    fresh_pm.register(budget_plugin, "budget-test")
    return fresh_pm


def config(**over):
    cfg = {"name": "budget", "seed": 0,
           "domain": {"name": "toy", "options": {"dim": 2, "function": "sphere"}},
           "executor": {"name": "local", "options": {"workers": 2, "isolation": "thread"}},
           "budget": {"max_nodes": 50},
           "agents": [{"name": "a", "scaffold": "greedy", "max_in_flight": 2}]}
    cfg.update(over)
    return cfg


def run(pm, tmp_path, **over):
    c = Campaign.from_config(config(**over), tmp_path / "run", pm=pm)
    result = c.run()
    return result, Store(tmp_path / "run", create=False)


def test_node_budget_is_hard_even_when_an_operator_returns_several(pm, tmp_path):
    agent = {"name": "a", "scaffold": "random", "operators": ["three-samples", "vector-perturb"]}
    result, store = run(pm, tmp_path, budget={"max_nodes": 2}, agents=[agent])
    assert result.reason == "max_nodes" and store.count_nodes() == 2
    assert store.events("candidate_dropped")  # the third candidate of the first step


def test_agent_node_budget_names_the_agent(pm, tmp_path):
    agents = [{"name": "a", "scaffold": "greedy", "budget": {"max_nodes": 3}},
              {"name": "b", "scaffold": "mcts", "budget": {"max_nodes": 5}}]
    result, store = run(pm, tmp_path, agents=agents)
    assert result.reason.startswith("all agents stopped")
    assert "a: max_nodes (agent a)" in result.reason and "b: max_nodes (agent b)" in result.reason
    assert (store.count_nodes(agent="a"), store.count_nodes(agent="b")) == (3, 5)


@pytest.mark.parametrize("budget, value", [("llm_tokens", 500), ("llm_cost_usd", 0.045)])
def test_llm_budgets_count_every_call_even_steps_that_made_no_node(pm, tmp_path, budget, value):
    agent = {"name": "a", "scaffold": {"name": "random", "options": {"n_drafts": 100}},
             "operators": ["ask-vector"], "llm": "counting"}
    result, store = run(pm, tmp_path, budget={budget: value}, agents=[agent])
    assert result.reason == budget
    calls = store.llm_calls()
    # Stopped at the first check after the limit: 5 calls = 600 tokens, $0.05.
    assert len(calls) == 5 and store.count_nodes() == 3  # calls 2 and 4 were unusable
    assert len(store.events("operator_failed")) == 2
    assert sum(n.cost.llm_tokens for n in store.nodes()) == 360  # nodes carry their own steps


@pytest.mark.parametrize("budget, value", [("eval_flops", 3.5e9), ("eval_gpu_s", 1.75)])
def test_compute_budgets_stop_the_campaign(pm, tmp_path, budget, value):
    result, store = run(pm, tmp_path, budget={budget: value}, evaluator="costly",
                        agents=[{"name": "a", "scaffold": "greedy", "max_in_flight": 1}])
    assert result.reason == budget
    done = [n for n in store.nodes() if n.status == NodeStatus.DONE]
    assert len(done) == 4 and sum(n.cost.flops for n in done) == 4e9


def test_agent_compute_budget(pm, tmp_path):
    agents = [{"name": "a", "scaffold": "greedy", "budget": {"eval_gpu_s": 1.0}},
              {"name": "b", "scaffold": "random", "budget": {"max_nodes": 3}}]
    result, store = run(pm, tmp_path, evaluator="costly", agents=agents)
    assert "a: eval_gpu_s (agent a)" in result.reason
    assert sum(n.cost.gpu_s for n in store.nodes(agent="a")) == pytest.approx(1.0)


def _alive(run_dir: Path) -> list[int]:
    """Evaluation worker processes still running for ``run_dir`` (their cwd is inside it)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd.startswith(str(run_dir) + "/"):
            out.append(int(pid))
    return out


def _left_alive(run_dir: Path, grace_s: float = 60.0) -> list[int]:
    """The worker processes of ``run_dir`` still running after up to ``grace_s``: a kill
    that goes through another process (a Ray worker cancelling its task) lands a moment
    later, later still on a loaded machine; one that never lands is still reported."""
    deadline = time.monotonic() + grace_s
    while (alive := _alive(run_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


@pytest.mark.parametrize("warm", [False, True], ids=["fresh", "forked"])
def test_wall_clock_budget_stops_a_running_sandboxed_evaluation(tmp_path, warm):
    # Real sandboxed processes (isolation: process), each evaluation sleeping 120 s: fresh ones,
    # or forked by the warm server (preloading nothing, so it is up well before the budget ends;
    # the budget leaves a loaded CI machine time to start both evaluations before it runs out).
    cfg = config(domain={"name": "toy", "options": {"dim": 2, "sleep_s": 120}},
                 executor={"name": "local", "options": {"workers": 2, "warm": warm, "preload": []}},
                 budget={"wall_s": 12.0})
    result = Campaign.from_config(cfg, tmp_path / "run").run()
    assert result.reason == "wall_s"
    nodes = Store(tmp_path / "run", create=False).nodes()
    assert len(nodes) == 2 and all(n.status == NodeStatus.CANCELLED for n in nodes)
    assert all(n.cost.wall_s < 120 and "budget" in n.error for n in nodes)
    assert _alive(tmp_path / "run") == []  # the process groups were killed


def test_agent_wall_clock_budget_stops_only_that_agent(tmp_path):
    cfg = config(domain={"name": "toy", "options": {"dim": 2, "sleep_s": 120}},
                 executor={"name": "local", "options": {"workers": 2}}, budget={"max_nodes": 50},
                 agents=[{"name": "slow", "scaffold": "greedy", "budget": {"wall_s": 2.0}}])
    result = Campaign.from_config(cfg, tmp_path / "run").run()
    assert result.reason == "wall_s (agent slow)"
    (node,) = Store(tmp_path / "run", create=False).nodes()
    assert node.status == NodeStatus.CANCELLED
