"""The campaign graph's coordination: slot policies, the insights board, approvals, the stream."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cambrian import Campaign, NodeStatus, Store
from cambrian.core.config import parse_config
from cambrian.campaign.checkpoint import coordination_state
from cambrian.core.errors import ConfigError

from ..conftest import kill_cli_run_when, toy_config

CLI = [sys.executable, "-m", "cambrian.cli"]
THREADS = {"name": "local", "options": {"workers": 1, "isolation": "thread"}}


def good_and_poor(policy, nodes=40):
    """A greedy agent that refines the best design, and one that only samples at random."""
    return toy_config(
        executor=THREADS, budget={"max_nodes": nodes}, coordination=policy,
        domain={"name": "toy", "options": {"dim": 3, "function": "sphere", "noise": 0.0}},
        agents=[{"name": "good", "scaffold": {"name": "greedy", "options": {"n_drafts": 1}}},
                {"name": "poor", "scaffold": "random", "operators": ["vector-sample"]}])


def split(run: Path) -> dict[str, int]:
    s = Store(run, create=False)
    return {a: s.count_nodes(agent=a) for a in ("good", "poor")}


def test_fixed_policy_shares_equally_and_records_each_decision(tmp_path):
    Campaign.from_config(good_and_poor("fixed", 20), tmp_path / "run").run()
    counts = split(tmp_path / "run")
    assert counts == {"good": 10, "poor": 10}
    events = Store(tmp_path / "run", create=False).events("allocation")
    assert len(events) == 20 and all(e["payload"]["reason"].startswith("fixed: equal share") for e in events)


@pytest.mark.parametrize("rule", ["ucb", "thompson"])
def test_bandit_gives_the_good_agent_the_clear_majority(tmp_path, rule):
    result = Campaign.from_config(good_and_poor({"policy": "bandit", "rule": rule}), tmp_path / "run").run()
    assert result.reason == "max_nodes"
    counts = split(tmp_path / "run")
    assert counts["good"] >= 2 * counts["poor"], counts
    store = Store(tmp_path / "run", create=False)
    reasons = [e["payload"]["reason"] for e in store.events("allocation")]
    assert len(reasons) == 40 and any(r.startswith(f"bandit {'ucb' if rule == 'ucb' else 'thompson'}")
                                      for r in reasons)


def test_bandit_pauses_a_stalled_agent_and_gives_it_no_slot_while_paused(tmp_path):
    Campaign.from_config(good_and_poor({"policy": "bandit", "pause_after": 4}), tmp_path / "run").run()
    events = Store(tmp_path / "run", create=False).events()
    pauses = [e for e in events if e["kind"] == "agent_paused"]
    assert pauses and all("no improvement in its last" in e["payload"]["reason"] for e in pauses)
    for p in pauses:
        later = [e for e in events if e["seq"] > p["seq"] and e["agent"] == p["agent"]]
        until = next((e["seq"] for e in later if e["kind"] == "agent_unpaused"), float("inf"))
        assert not [e for e in later if e["kind"] == "allocation" and e["seq"] < until]


def test_coordination_options_are_typed():
    cfg = parse_config(toy_config(coordination="bandit"))
    assert cfg.coordination.policy == "bandit" and cfg.coordination.rule == "ucb"
    with pytest.raises(ConfigError, match="coordination"):
        parse_config(toy_config(coordination={"policy": "bandit", "rule": "greedy"}))
    with pytest.raises(ConfigError, match="coordination"):
        parse_config(toy_config(coordination={"policy": "fixed", "window": 3}))


class PromptLog:
    """The prompts the test LLM below received."""

    prompts: list[str] = []


def _prompt_plugin():
    import json as _json
    import types

    from cambrian import LLMBackend, LLMResponse, hookimpl

    class LoggingLLM(LLMBackend):
        name = "prompt-log"

        def complete(self, messages, **kwargs):
            PromptLog.prompts.append(messages[-1]["content"])
            k = len(PromptLog.prompts)
            return LLMResponse(text=f"```json\n{_json.dumps([k / 7, -k / 9, 0.25])}\n```", prompt_tokens=1,
                               completion_tokens=1, model="log")

    mod = types.ModuleType("prompt_log_plugin")
    mod.cambrian_llm_backends = hookimpl(lambda: [LoggingLLM])
    return mod


def test_structured_insights_reach_every_llm_prompt_bounded_and_best_supported_first(fresh_pm, tmp_path):
    fresh_pm.register(_prompt_plugin(), "prompt-log")
    PromptLog.prompts = []
    cfg = toy_config(
        executor=THREADS, budget={"max_nodes": 24}, coordination={"policy": "fixed", "max_insights": 2},
        domain={"name": "toy", "options": {"dim": 3, "function": "sphere", "noise": 0.0}},
        agents=[{"name": "scout", "scaffold": {"name": "greedy", "options": {"n_drafts": 4, "analyze_every": 4}},
                 "operators": ["vector-sample", "vector-perturb", "vector-analyze"]},
                {"name": "writer", "scaffold": {"name": "random", "options": {"p_draft": 1.0}},
                 "operators": ["llm-draft"], "llm": "prompt-log"}])
    Campaign.from_config(cfg, tmp_path / "run", pm=fresh_pm).run()
    board = coordination_state(tmp_path / "run")["insights"]
    assert board, "the scout's analyze steps wrote no insight"
    ids = {n.id for n in Store(tmp_path / "run", create=False).nodes()}
    assert all(i["agent"] == "scout" and i["evidence"] and set(i["evidence"]) <= ids for i in board)
    support = [len(i["evidence"]) for i in board]
    assert support == sorted(support, reverse=True)
    with_board = [p for p in PromptLog.prompts if "Insights from all agents" in p]
    assert with_board, "no LLM prompt carried the insights board"
    last = with_board[-1].split("Insights from all agents")[1].split("##")[0]
    assert 1 <= last.count("[scout] coordinate") <= 2  # bounded by max_insights
    assert board[0]["text"] in with_board[-1] or len(board) > 2


def test_structured_sampling_follows_an_insight():
    import random as _random

    from cambrian import Insight, OperatorContext
    from cambrian.core.plugins import get_plugin_manager

    pm = get_plugin_manager()
    domain = pm.get("domain", "toy")(dim=3)
    op = pm.get("operator", "vector-sample")(insight_bias=1.0)
    hint = Insight(text="coordinate 1 near 2", agent="x", evidence=("a", "b"),
                   about={"coordinate": 1, "centre": 2.0, "spread": 0.01})
    ctx = OperatorContext(domain=domain, parents=[], rng=_random.Random(0), objective=domain.objective,
                          leaderboard=[], notes=[], budget_left={}, insights=[hint])
    xs = [op.apply(ctx)[0].content for _ in range(20)]
    assert all(abs(x[1] - 2.0) < 0.1 for x in xs) and len({x[0] for x in xs}) == 20


def _cli(*args, timeout=300):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def _done_ids(run: Path, phase: str = "search") -> list[str]:
    s = Store(run, create=False)
    try:
        return [n.id for n in s.nodes(phase=phase) if n.status == NodeStatus.DONE]
    finally:
        s.close()


def test_approval_round_trip_with_kill_9_before_the_interrupt(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(toy_config(
        budget={"max_nodes": 8}, domain={"name": "toy", "options": {"dim": 3, "sleep_s": 0.3}},
        agents=[{"name": "a", "scaffold": "random"}, {"name": "b", "scaffold": "random"}],
        phases={"hidden": {"top_k": 2, "seeds": 2, "approve": True}})))
    run = tmp_path / "run"
    kill_cli_run_when(["run", str(cfg), "--out", str(run), "--quiet"],
                      lambda: (run / Store.FILENAME).exists() and len(_done_ids(run)) >= 3, 120)
    assert 3 <= len(_done_ids(run)) < 8, "the kill must land mid-search"

    out = _cli("resume", run, "--quiet")  # finishes the search, then stops at the gate
    assert out.returncode == 0, out.stderr
    assert "awaiting approval of phase hidden: evaluations 4" in out.stdout
    assert len(_done_ids(run)) == 8 and _done_ids(run, "hidden") == []
    show = _cli("show", run)
    assert show.returncode == 0 and "awaiting approval of phase hidden" in show.stdout
    as_json = json.loads(_cli("show", run, "--json").stdout)
    assert as_json["status"] == "awaiting_approval"
    assert as_json["coordination"]["awaiting"] == {"phase": "hidden", "cost": as_json["coordination"]["awaiting"]["cost"]}
    assert as_json["coordination"]["awaiting"]["cost"]["evaluations"] == 4
    again = _cli("resume", run, "--quiet")  # no decision yet: still waiting, nothing runs
    assert again.returncode == 0 and "awaiting approval" in again.stdout
    assert _done_ids(run, "hidden") == []

    ok = _cli("approve", run)
    assert ok.returncode == 0 and "phase hidden approved" in ok.stdout
    done = _cli("resume", run, "--quiet")
    assert done.returncode == 0, done.stderr
    assert "phase hidden started" in done.stdout  # a plain line driven by the graph's stream
    s = Store(run, create=False)
    assert len(_done_ids(run, "hidden")) == 4 and s.get_meta("phase:hidden")["designs"]
    finished = [e["node_id"] for e in s.events() if e["kind"] == "node_done"]
    assert len(finished) == len(set(finished)) == 12  # 8 search + 4 hidden, each once
    assert [e["payload"]["decision"] for e in s.events("approval_decided")] == ["approved"]
    assert "stopped (max_nodes)" in _cli("show", run).stdout
    assert _cli("approve", run).returncode == 2  # nothing is waiting any more


def test_rejected_phase_is_skipped_and_recorded(tmp_path):
    from cambrian.campaign.coordinator import decide

    cfg = toy_config(executor=THREADS, phases={"hidden": {"top_k": 2, "seeds": 1, "approve": True}})
    first = Campaign.from_config(cfg, tmp_path / "run").run()
    assert first.reason == "awaiting_approval"
    assert decide(tmp_path / "run", "rejected") == "hidden"
    result = Campaign.resume(tmp_path / "run").run()
    store = Store(tmp_path / "run", create=False)
    assert result.reason == "max_nodes" and store.nodes(phase="hidden") == []
    assert "rejected" in store.get_meta("phase:hidden")["skipped"]
    assert coordination_state(tmp_path / "run")["approvals"] == {"hidden": "rejected"}


def test_approve_names_an_unknown_phase_clearly():
    with pytest.raises(ConfigError, match="phases.hidden.approve: must be true or false"):
        parse_config(toy_config(phases={"hidden": {"approve": "yes"}}))


def test_the_graph_stream_drives_subscribers(tmp_path):
    cfg = toy_config(executor=THREADS, budget={"max_nodes": 12},
                     coordination={"policy": "bandit", "pause_after": 2},
                     agents=[{"name": "scout", "scaffold": {"name": "greedy", "options": {"n_drafts": 2,
                                                                                          "analyze_every": 3}},
                              "operators": ["vector-sample", "vector-perturb", "vector-analyze"]},
                             {"name": "b", "scaffold": "random", "operators": ["vector-sample"]}],
                     phases={"hidden": {"top_k": 1, "seeds": 1, "approve": True}})
    c = Campaign.from_config(cfg, tmp_path / "run")
    seen: list[dict] = []
    c.subscribers.append(lambda campaign, update: seen.append(update))
    assert c.run().reason == "awaiting_approval"
    kinds = {u["kind"] for u in seen}
    assert {"agent_step", "allocation_changed", "approval_needed"} <= kinds
    assert seen[-1] == {"kind": "approval_needed", "phase": "hidden", "cost": seen[-1]["cost"]}
    steps = [u for u in seen if u["kind"] == "agent_step"]
    assert {u["agent"] for u in steps} == {"scout", "b"}
    from cambrian.campaign.coordinator import decide

    decide(tmp_path / "run", "approved")
    c3 = Campaign.resume(tmp_path / "run")
    later: list[dict] = []
    c3.subscribers.append(lambda campaign, update: later.append(update))
    c3.run()
    assert [u["kind"] for u in later] == ["phase_started"]


def test_report_shows_slots_per_agent_insights_and_pauses(tmp_path):
    from cambrian.plugins.reporting.report import write_report

    cfg = toy_config(executor=THREADS, budget={"max_nodes": 16}, coordination={"policy": "bandit", "pause_after": 3},
                     agents=[{"name": "scout", "scaffold": {"name": "greedy", "options": {"n_drafts": 2,
                                                                                          "analyze_every": 4}},
                              "operators": ["vector-sample", "vector-perturb", "vector-analyze"]},
                             {"name": "b", "scaffold": "random", "operators": ["vector-sample"]}])
    Campaign.from_config(cfg, tmp_path / "run").run()
    page = write_report(tmp_path / "run").read_text()
    board = coordination_state(tmp_path / "run")["insights"]
    assert "Policy <b>bandit</b>" in page and (tmp_path / "run" / "figures" / "slots.png").is_file()
    assert 'data-figure="slots"' in page and "paused" in page
    assert board and all(i["text"] in page for i in board)


def gated_halving(nodes=12):
    """Halving on the toy domain whose promotions to the final rung wait for a person."""
    return toy_config(
        executor=THREADS, budget={"max_nodes": nodes},
        domain={"name": "toy", "options": {"dim": 3, "function": "sphere"}},
        agents=[{"name": "h", "scaffold": {"name": "halving", "options": {
            "inner": "random", "rungs": [0.25, 1.0], "eta": 2, "reseed_top": 0, "approve_from": 1.0}}}])


def _finals(run: Path) -> set[str]:
    s = Store(run, create=False)
    try:
        return {n.candidate.hash for n in s.nodes(phase="search") if n.fidelity == 1.0}
    finally:
        s.close()


def test_gated_promotion_round_trip_approve_then_reject_and_the_search_goes_on(tmp_path):
    from cambrian.campaign.coordinator import decide

    run = tmp_path / "run"
    first = Campaign.from_config(gated_halving(), run).run()
    assert first.reason == "awaiting_approval" and _finals(run) == set()
    asked = coordination_state(run)["awaiting"]
    assert asked["promotion"].startswith("promotion ") and asked["fidelity"] == 1.0
    assert asked["from_fidelity"] == 0.25 and asked["cost"]["evaluations"] == 1
    screened = set(_done_ids(run))
    # Resumed without a decision: still waiting, and nothing more is evaluated.
    assert Campaign.resume(run).run().reason == "awaiting_approval" and set(_done_ids(run)) == screened

    approved, _, _ = decide(run, "approved").partition(" to ")
    assert Campaign.resume(run).run().reason == "awaiting_approval"  # the next promotion asks in turn
    assert _finals(run) == {approved.split(" ")[1]}  # the approved one was evaluated at the final rung
    second = coordination_state(run)["awaiting"]["promotion"]
    assert decide(run, "rejected") == second
    decisions = {}
    result = Campaign.resume(run).run()
    for _ in range(6):  # approve whatever else asks, to the end of the budget
        if result.reason != "awaiting_approval":
            break
        decisions[decide(run, "approved")] = "approved"
        result = Campaign.resume(run).run()
    # the end of the node budget, or the agent stopping at its reserve with nothing to promote
    assert result.reason in ("max_nodes", "complete") or result.reason.startswith("screening stopped: ")
    rejected_hash = second.split(" ")[1]
    assert rejected_hash not in _finals(run)  # rejected: never evaluated at the final rung
    state = coordination_state(run)
    assert state["approvals"][second] == "rejected" and state["awaiting"] is None
    s = Store(run, create=False)
    assert len(s.nodes(phase="search")) > len(screened) + 1  # the search went on after the rejection
    logged = {e["payload"]["phase"]: e["payload"]["decision"] for e in s.events("approval_decided")}
    assert logged[second] == "rejected" and list(logged.values()).count("approved") == 1 + len(decisions)
    finished = [e["node_id"] for e in s.events() if e["kind"] == "node_done"]
    assert len(finished) == len(set(finished))  # no evaluation repeated across the stops


def test_approve_from_must_name_a_promoted_rung(tmp_path):
    cfg = gated_halving()
    cfg["agents"][0]["scaffold"]["options"]["approve_from"] = 0.25  # the screening rung
    with pytest.raises(ConfigError, match="approve_from"):
        Campaign.from_config(cfg, tmp_path / "run")


def test_gated_promotions_resume_after_kill_9_with_nothing_lost_or_repeated(tmp_path):
    from cambrian.campaign.coordinator import decide

    cfg = gated_halving(nodes=7)
    cfg["domain"]["options"]["sleep_s"] = 0.3
    cfg["executor"] = {"name": "local", "options": {"workers": 2, "isolation": "thread"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    kill_cli_run_when(["run", str(tmp_path / "c.yaml"), "--out", str(run), "--quiet"],
                      lambda: (run / Store.FILENAME).exists() and bool(_done_ids(run)), 120, poll_s=0.1)
    s = Store(run, create=False)
    assert s.events("campaign_end") == [], "the kill must land before the run stops at the gate"
    s.close()
    result = Campaign.resume(run).run()
    asked = 0
    while result.reason == "awaiting_approval" and asked < 8:
        decide(run, "approved" if asked % 2 == 0 else "rejected")
        asked += 1
        result = Campaign.resume(run).run()
    assert asked >= 1 and result.reason != "awaiting_approval"
    s = Store(run, create=False)
    finished = [e["node_id"] for e in s.events() if e["kind"] == "node_done"]
    assert len(finished) == len(set(finished)) == len(s.nodes(phase="search"))  # each evaluated once
    rejected = {k.split(" ")[1] for k, d in coordination_state(run)["approvals"].items() if d == "rejected"}
    assert not rejected & _finals(run)


def test_a_kill_after_a_steps_writes_but_before_its_checkpoint_resumes_the_graph(tmp_path):
    """A kill -9 can land after every task of a step has saved its writes but before the
    step's checkpoint: LangGraph's `next` is then empty although the graph has not ended.
    The newest checkpoint is removed to leave exactly that state on disk."""
    import sqlite3

    from cambrian.campaign.checkpoint import GRAPH_FILE

    cfg = toy_config(executor=THREADS, phases={"hidden": {"top_k": 1, "seeds": 1, "approve": True}})
    run = tmp_path / "run"
    assert Campaign.from_config(cfg, run).run().reason == "awaiting_approval"
    conn = sqlite3.connect(run / GRAPH_FILE)
    with conn:
        (newest,) = conn.execute("SELECT checkpoint_id FROM checkpoints ORDER BY checkpoint_id DESC LIMIT 1").fetchone()
        conn.execute("DELETE FROM checkpoints WHERE checkpoint_id = ?", (newest,))
        conn.execute("DELETE FROM writes WHERE checkpoint_id = ?", (newest,))
    conn.close()
    assert coordination_state(run)["awaiting"] is None  # the gate's interrupt went with it

    # the resume runs the rest of the graph from the saved writes: the gate asks again
    assert Campaign.resume(run).run().reason == "awaiting_approval"
    assert coordination_state(run)["awaiting"]["phase"] == "hidden"
    assert _done_ids(run, "hidden") == []
