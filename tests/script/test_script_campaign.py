"""A script campaign end to end with replayed LLM replies (tests/data/cassettes/script_campaign.jsonl):
the baseline is drafted, a broken improvement is debugged, a script that prints a fake metric is
rejected, keep/discard decisions are recorded per agent, and the report and fragment show it."""

from __future__ import annotations

import math

import pytest

from cambrian import Campaign, NodeStatus, Store
from tests.sandbox_dirs import open_dir
from tests.script.conftest import CASSETTES, SMALL


@pytest.fixture(scope="module")
def run(open_tmp_root):
    run_dir = open_dir(open_tmp_root, "script") / "run"
    cfg = {"name": "script-replay", "seed": 0,
           "domain": {"name": "script", "options": {"task": "autoresearch-cpu", "overrides": SMALL}},
           "executor": {"name": "local", "options": {"workers": 1}},
           "budget": {"max_nodes": 5},
           "sandbox": {"timeout_s": 400},
           "agents": [{"name": "researcher", "scaffold": "keep-discard",
                       "operators": ["seeds", "llm-improve", "llm-debug"],
                       "llm": {"name": "replay", "options": {"cassette": str(CASSETTES / "script_campaign.jsonl"),
                                                             "mode": "sequential"}}}]}
    result = Campaign.from_config(cfg, run_dir).run()
    store = Store(run_dir, create=False)
    nodes = sorted(store.nodes(phase="search"), key=lambda n: n.created_at)
    events = store.events("script_decision")
    store.close()
    return {"result": result, "nodes": nodes, "events": events, "dir": run_dir}


def test_the_loop_drafts_improves_and_debugs(run):
    assert [n.operator for n in run["nodes"]] == ["seeds", "llm-improve", "llm-debug", "llm-improve", "llm-debug"]
    base, broken, fixed, fake, honest = run["nodes"]
    assert base.status == NodeStatus.DONE and base.metrics["val_bpb_spread"].value >= 0
    assert broken.status == NodeStatus.FAILED and "NameError" in broken.error
    assert fixed.parents == (broken.id,) and fixed.status == NodeStatus.DONE
    assert honest.parents == (fake.id,) and honest.status == NodeStatus.DONE


def test_a_printed_fake_metric_is_rejected(run):
    fake = run["nodes"][3]
    assert fake.status == NodeStatus.FAILED
    assert "FakeMetric" in fake.error and "val_bpb=1.2000" in fake.error and "never trusted" in fake.error


def test_metrics_come_from_the_saved_model_on_hidden_data(run):
    base = run["nodes"][0]
    runs = [base.metrics[f"val_bpb_run{i}"].value for i in range(2)]
    assert base.metrics["val_bpb"].value == pytest.approx(sum(runs) / 2)
    # Two repeats of a time-budgeted run: how low they get depends on the machine's speed, so
    # no absolute bound, only that each is a real bits-per-byte value.
    assert all(math.isfinite(v) and v > 0 for v in runs)
    # beside it, the count-based floors of the same hidden tokens (fitted on train)
    m = base.metrics
    assert 0 < m["floor_bigram_bpb"].value < m["floor_unigram_bpb"].value


def test_keep_discard_decisions_are_recorded_per_agent(run):
    decisions = {e["node_id"]: e["payload"]["decision"] for e in run["events"]}
    base, broken, fixed, fake, honest = run["nodes"]
    assert decisions[base.id] == "keep" and decisions[broken.id] == "crash" and decisions[fake.id] == "crash"
    assert decisions[fixed.id] in ("keep", "discard") and decisions[honest.id] in ("keep", "discard")
    for e in run["events"]:
        p = e["payload"]
        if p["decision"] == "keep" and p["incumbent"]:
            assert "margin" in p["reason"]  # kept only beyond the seed margin


def test_the_report_and_the_results_fragment_show_it(run):
    from cambrian.plugins.reporting.report import write_report

    page = write_report(run["dir"]).read_text()
    assert "fake metric" in page and "NameError" in page
    assert "Keep / discard history" in page  # the domain's own section of the report
    tsv = (run["dir"] / "results.tsv").read_text().splitlines()
    assert tsv[0].startswith("agent\tnode") and len(tsv) == 6
    frag = (run["dir"] / "results.html").read_text()
    assert "Keep / discard history" in frag and "crash" in frag and "keep" in frag
