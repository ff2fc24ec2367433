"""The campaign graph's coordination: slot policies, the insights board, approvals, the stream."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cambrian import Campaign, NodeStatus, Store
from cambrian.core.config import parse_config
from cambrian.core.coordinator import coordination_state
from cambrian.core.errors import ConfigError

from ..conftest import toy_config

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
