"""An attention-design campaign end to end with replayed LLM replies (tests/data/cassettes/attention_campaign.jsonl):
it drafts, debugs a broken design, improves a working one, rejects a design that peeks at future
tokens, scores the softmax baseline the same way, and the report shows it."""

from __future__ import annotations

import pytest

from cambrian import Campaign, NodeStatus, Store
from tests.sandbox_dirs import open_dir
from tests.attention.conftest import CASSETTES, TINY


@pytest.fixture(scope="module")
def run(open_tmp_root):
    run_dir = open_dir(open_tmp_root, "attention") / "run"
    cfg = {"name": "attention-replay", "seed": 0,
           "domain": {"name": "attention", "options": TINY},
           "executor": {"name": "local", "options": {"workers": 2}},  # the final phase runs 2 at once
           "budget": {"max_nodes": 6},
           "sandbox": {"timeout_s": 300},
           "phases": {"final": {"top_k": 1, "seeds": 2, "split": "hidden"}},
           "agents": [{"name": "designer", "scaffold": {"name": "greedy", "options": {"n_drafts": 2, "debug_prob": 1.0}},
                       "operators": ["llm-draft", "llm-improve", "llm-debug"],
                       "llm": {"name": "replay", "options": {"cassette": str(CASSETTES / "attention_campaign.jsonl"),
                                                             "mode": "sequential"}}}]}
    result = Campaign.from_config(cfg, run_dir).run()
    store = Store(run_dir, create=False)
    nodes = sorted(store.nodes(phase="search"), key=lambda n: n.created_at)
    final = store.get_meta("phase:final")
    store.close()
    return {"result": result, "nodes": nodes, "final": final, "dir": run_dir}


def test_every_step_happened_in_order(run):
    ops = [n.operator for n in run["nodes"]]
    assert ops == ["llm-draft", "llm-draft", "llm-debug", "llm-improve", "llm-debug", "llm-improve"]
    assert run["result"].reason == "max_nodes"


def test_a_broken_design_is_debugged(run):
    broken, fixed = run["nodes"][0], run["nodes"][2]
    assert broken.status == NodeStatus.FAILED and "forward failed: NameError" in broken.error
    assert fixed.parents == (broken.id,) and fixed.status == NodeStatus.DONE


def test_a_design_that_peeks_at_future_tokens_is_rejected_with_that_reason(run):
    leak = run["nodes"][3]
    assert leak.operator == "llm-improve" and leak.status == NodeStatus.INVALID
    assert "NotCausal" in leak.error and "peeks at future tokens" in leak.error
    fix = run["nodes"][4]
    assert fix.parents == (leak.id,) and fix.status == NodeStatus.DONE


def test_working_designs_are_scored_on_every_task(run):
    done = [n for n in run["nodes"] if n.status == NodeStatus.DONE]
    assert len(done) == 4
    for n in done:
        m = {k: v.value for k, v in n.metrics.items()}
        assert {"score", "mqar_acc", "listops_acc", "lm_bpb", "mixer_params", "ms_per_step"} <= set(m)
        assert 0 <= m["mqar_acc"] <= 1 and 0 <= m["listops_acc"] <= 1 and 0 < m["lm_bpb"] < 9
        assert m["score"] == pytest.approx((m["mqar_acc"] + m["listops_acc"] + 1 - m["lm_bpb"] / 8) / 3)
        assert m["on_cuda"] == 0.0 and m["bf16"] == 0.0  # device auto: the CPU here, recorded
    improve = run["nodes"][5]
    assert improve.status == NodeStatus.DONE and improve.parents[0] in {n.id for n in done}


def test_the_softmax_baseline_is_scored_the_same_way_on_the_hidden_split(run):
    rows = {r["label"]: r for r in run["final"]["designs"]}
    assert run["final"]["split"] == "hidden"
    assert rows["baseline:softmax"]["failed"] == 0 and 0 < rows["baseline:softmax"]["mean"] < 1
    assert len(rows) == 2 and rows["baseline:softmax"]["seeds"] == 2
    assert [label for label, r in rows.items() if r["baseline"]] == ["baseline:softmax"]
    assert not set(run["final"]["seeds"]) & {0}  # fresh seeds, not the search's
    assert run["final"]["strongest_baseline"] == "baseline:softmax" and "baseline:softmax" in run["final"]["verdict"]


def test_the_report_shows_the_rejections(run):
    from cambrian.plugins.reporting.report import write_report

    page = write_report(run["dir"]).read_text()
    assert "peeks at future tokens" in page and "NameError" in page


def test_a_passing_design_registers_with_one_command_and_a_failed_one_does_not(run, tmp_path):
    from typer.testing import CliRunner

    from cambrian.cli import app
    from cambrian.plugins.domains.attention.designs import design_primitives

    good, leak = run["nodes"][2], run["nodes"][3]
    cli = CliRunner()
    res = cli.invoke(app, ["attention", "register", str(run["dir"]), good.id, "--name", "alibi_fixed",
                           "--dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "alibi_fixed.py").read_text() == good.candidate.content
    assert [p.name for p in design_primitives(tmp_path)] == ["alibi_fixed"]
    res = cli.invoke(app, ["attention", "register", str(run["dir"]), leak.id, "--name", "leaky", "--dir", str(tmp_path)])
    assert res.exit_code != 0 and not (tmp_path / "leaky.py").exists()
