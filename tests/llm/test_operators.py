"""LLM operators: prompts, parsing with repair, analyze notes, templates, campaigns on a cassette."""

from __future__ import annotations

import random

import pytest

from cambrian import (Campaign, Candidate, LLMBackend, LLMResponse, Metric, Node, NodeStatus,
                      OperatorContext, Store)
from cambrian.core.plugins import get_plugin_manager
from tests.llm.conftest import CASSETTES, llm_toy_config, scripted_reply
from tests.llm.fake_openai import FakeOpenAI

TOY_CASSETTE = CASSETTES / "toy_llm_campaign.jsonl"


class Scripted(LLMBackend):
    """Answers with the given replies in order and keeps every request."""

    name = "scripted-test"
    model = "scripted"

    def __init__(self, replies: list[str]) -> None:
        super().__init__()
        self.replies, self.requests = list(replies), []

    def complete(self, messages, **kw):
        self.requests.append(messages)
        return LLMResponse(text=self.replies.pop(0), prompt_tokens=3, completion_tokens=2)


def node(id: str, content, status=NodeStatus.DONE, loss=None, error=None) -> Node:
    metrics = {"loss": Metric(name="loss", value=loss)} if loss is not None else {}
    return Node(id=id, agent="a", operator="llm-draft", candidate=Candidate(kind="vector", content=content),
                status=status, metrics=metrics, error=error)


def context(llm, parents=(), **kw) -> OperatorContext:
    dom = get_plugin_manager().get("domain", "toy")(dim=3)
    args = dict(domain=dom, parents=list(parents), rng=random.Random(0), objective=dom.objective,
                leaderboard=[node("best1", [0.1, 0.1, 0.1], loss=0.03)], notes=["small values help"],
                budget_left={"nodes": 7, "wall_s": None}, llm=llm, persona="You are terse.")
    args.update(kw)
    return OperatorContext(**args)


def operator(name: str, **options):
    return get_plugin_manager().get("operator", name)(**options)


def test_improve_prompt_carries_task_parent_metrics_board_notes_budget_persona():
    llm = Scripted(["```json\n[0.5, 0.5, 0.5]\n```"])
    parent = node("p1", [1.0, 1.0, 1.0], loss=3.0)
    [cand] = operator("llm-improve").apply(context(llm, [parent]))
    assert cand.content == [0.5, 0.5, 0.5] and cand.meta == {"operator": "llm-improve", "repairs": 0}
    system, user = llm.requests[0]
    assert "You are terse." in system["content"]
    text = user["content"]
    for needle in ["Minimise a noisy test function", "minimise `loss`", "nodes=7", "node p1",
                   "loss=3", "node best1", "loss=0.03", "small values help", "```json"]:
        assert needle in text, needle
    assert "wall_s" not in text  # unlimited budgets are left out


def test_debug_prompt_quotes_the_error():
    llm = Scripted(["fixed\n```json\n[0, 0, 1]\n```"])
    failed = node("f1", [9.0, 9.0, 9.0], status=NodeStatus.FAILED, error="Traceback\nValueError: boom")
    operator("llm-debug").apply(context(llm, [failed]))
    assert "ValueError: boom" in llm.requests[0][1]["content"]


def test_crossover_shows_both_parents():
    llm = Scripted(["```json\n[0.3, 0.3, 0.3]\n```"])
    a, b = node("pa", [1, 0, 0], loss=1.0), node("pb", [0, 1, 0], loss=1.0)
    operator("llm-crossover").apply(context(llm, [a, b]))
    text = llm.requests[0][1]["content"]
    assert "Parent 1 (node pa" in text and "Parent 2 (node pb" in text


def test_unparseable_reply_is_repaired_with_the_error_quoted():
    llm = Scripted(["no block here", "```json\n[1, 2]\n```", "```json\n[1, 2, 3]\n```"])
    [cand] = operator("llm-draft").apply(context(llm))
    assert cand.content == [1.0, 2.0, 3.0] and cand.meta["repairs"] == 2
    first_repair, second_repair = llm.requests[1], llm.requests[2]
    assert first_repair[-2] == {"role": "assistant", "content": "no block here"}
    assert "no ```json fenced block" in first_repair[-1]["content"]
    assert "list of 3 numbers" in second_repair[-1]["content"]  # the domain's validation reason


def test_repairs_are_bounded_and_then_the_step_fails():
    llm = Scripted(["nope"] * 10)
    with pytest.raises(ValueError, match=r"after 1 repair\(s\)"):
        operator("llm-draft", repair_retries=1).apply(context(llm))
    assert len(llm.requests) == 2


def test_repeating_an_evaluated_candidate_asks_for_another():
    llm = Scripted(["```json\n[0.1, 0.1, 0.1]\n```", "```json\n[0.2, 0.1, 0.1]\n```"])
    [cand] = operator("llm-draft").apply(context(llm))
    assert cand.content == [0.2, 0.1, 0.1]
    assert "identical to node best1" in llm.requests[1][-1]["content"]


def test_analyze_appends_a_note_and_makes_no_candidate():
    llm = Scripted(["  Small coordinates win; the sphere is centred at 0.  "])
    ctx = context(llm, [node("p1", [1.0, 1.0, 1.0], loss=3.0)])
    assert operator("llm-analyze", max_words=40).apply(ctx) == []
    assert ctx.new_notes == ["Small coordinates win; the sphere is centred at 0."]
    assert "at most 40 words" in llm.requests[0][1]["content"]


def test_templates_dir_and_per_proposal_options_replace_prompts(tmp_path):
    (tmp_path / "draft.j2").write_text("Custom draft for {{ objective.name }}; notes: {{ notes|length }}")
    (tmp_path / "mine.j2").write_text("Per-proposal template, persona={{ persona }}")
    llm = Scripted(["```json\n[1, 1, 1]\n```", "```json\n[2, 2, 2]\n```"])
    op = operator("llm-draft", templates_dir=str(tmp_path))
    op.apply(context(llm))
    assert llm.requests[0][1]["content"] == "Custom draft for loss; notes: 1"
    op.apply(context(llm, options={"template": str(tmp_path / "mine.j2")}))
    assert llm.requests[1][1]["content"] == "Per-proposal template, persona=You are terse."
    assert "careful machine-learning" in llm.requests[1][0]["content"]  # system prompt: the built-in


def test_domain_prompts_dir_is_searched_before_the_builtins(tmp_path):
    (tmp_path / "improve.j2").write_text("pack prompt: {{ parents[0].id }}")
    llm = Scripted(["```json\n[1, 1, 0]\n```"])
    ctx = context(llm, [node("p9", [1, 1, 1], loss=2.0)])
    ctx.domain.prompts_dir = str(tmp_path)
    operator("llm-improve").apply(ctx)
    assert llm.requests[0][1]["content"] == "pack prompt: p9"


def test_campaign_replayed_from_a_committed_cassette(tmp_path):
    llm = {"name": "replay", "options": {"cassette": str(TOY_CASSETTE), "mode": "sequential"}}
    result = Campaign.from_config(llm_toy_config(llm), tmp_path / "run").run()
    assert result.reason == "max_nodes"
    store = Store(tmp_path / "run", create=False)
    nodes = store.nodes()
    assert [n.candidate.content for n in nodes] == [
        [2.0, 2.0, 2.0], [0.5, -0.25, 0.125], [1.0, 1.0, 1.0], [0.5, 0.5, 0.5], [0.25, -0.125, 0.0625]]
    assert nodes[1].candidate.meta["repairs"] == 1
    assert all(n.status == NodeStatus.DONE for n in nodes)
    # Token counts per call and per node (the engine's metered wrapper around the backend).
    calls = store.llm_calls()
    assert len(calls) == 9 and all(c["ok"] and c["prompt_tokens"] == 11 for c in calls)
    assert {c["operator"] for c in calls} == {"llm-draft", "llm-improve"}
    assert nodes[1].cost.llm_prompt_tokens == 22 and nodes[0].cost.llm_completion_tokens == 7
    assert sum(c["prompt_tokens"] + c["completion_tokens"] for c in calls) == 9 * 18
    assert [e["payload"]["operator"] for e in store.events("operator_failed")] == ["llm-improve"]


def test_record_then_replay_by_hash(tmp_path):
    cassette = tmp_path / "c.jsonl"
    msgs = [{"role": "user", "content": "Candidate to improve\n```json\n[1, 1, 1]\n```"}]
    with FakeOpenAI([scripted_reply]) as srv:
        rec = get_plugin_manager().get("llm", "record")(cassette=str(cassette), inner={
            "name": "openai", "options": {"model": "fake-model", "base_url": srv.base_url}})
        live = rec.complete(msgs)
        rec.complete([{"role": "user", "content": "draft please"}])
    replay = get_plugin_manager().get("llm", "replay")(cassette=str(cassette))
    assert replay.complete([{"role": "user", "content": "draft please"}]).text.startswith("A first guess")
    again = replay.complete(msgs)
    assert (again.text, again.prompt_tokens, again.completion_tokens) == (live.text, 11, 7)
    from cambrian.plugins.llm.base import LLMError

    with pytest.raises(LLMError, match=f"cassette {cassette} has no recording for request"):
        replay.complete([{"role": "user", "content": "never recorded"}])


def test_sequential_replay_runs_out_with_a_clear_error(tmp_path):
    from cambrian.plugins.llm.base import LLMError

    one = tmp_path / "one.jsonl"
    one.write_text(TOY_CASSETTE.read_text().splitlines()[0] + "\n")
    replay = get_plugin_manager().get("llm", "replay")(cassette=str(one), mode="sequential")
    replay.complete([{"role": "user", "content": "anything"}])
    with pytest.raises(LLMError, match="one.jsonl has no recording left"):
        replay.complete([{"role": "user", "content": "anything"}])


def test_llm_failures_fail_steps_never_the_campaign(tmp_path):
    with FakeOpenAI([(400, '{"error": {"message": "model not found"}}')]) as srv:
        llm = {"name": "openai", "options": {"model": "nope", "base_url": srv.base_url}}
        result = Campaign.from_config(llm_toy_config(llm), tmp_path / "run").run()
    assert result.best is None and "stall" in result.reason
    store = Store(tmp_path / "run", create=False)
    failed = store.events("operator_failed")
    assert failed and "model not found" in failed[0]["payload"]["error"]
    calls = store.llm_calls()
    assert calls and not any(c["ok"] for c in calls) and "model not found" in calls[0]["error"]


def test_api_key_never_reaches_the_store_or_run_files(tmp_path, monkeypatch):
    secret = "sk-cambrian-test-7f3a9c"
    monkeypatch.setenv("CAMBRIAN_TEST_KEY", secret)
    with FakeOpenAI([scripted_reply]) as srv:
        llm = {"name": "openai", "options": {"model": "fake-model", "base_url": srv.base_url,
                                             "api_key_env": "CAMBRIAN_TEST_KEY"}}
        result = Campaign.from_config(llm_toy_config(llm, budget={"max_nodes": 2}), tmp_path / "run").run()
        assert {k.lower(): v for k, v in srv.headers[0].items()}["authorization"] == f"Bearer {secret}"
    assert result.counts == {"done": 2}
    for f in (tmp_path / "run").rglob("*"):
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f


def test_a_third_party_backend_from_cambrian_llm_backends_drives_and_is_recorded(fresh_pm, tmp_path):
    from cambrian import hookimpl

    class Counting(LLMBackend):
        name = "counting-test"
        model = "counting"
        calls = 0

        def complete(self, messages, **kw):
            Counting.calls += 1
            return LLMResponse(text=f"```json\n[{Counting.calls}, 0, 0]\n```", prompt_tokens=5,
                               completion_tokens=3, cost_usd=0.001)

    class Plugin:
        @hookimpl
        def cambrian_llm_backends(self):
            return [Counting]

    fresh_pm.register(Plugin(), "counting-plugin")
    cassette = tmp_path / "rec.jsonl"
    llm = {"name": "record", "options": {"cassette": str(cassette), "inner": "counting-test"}}
    result = Campaign.from_config(llm_toy_config(llm, budget={"max_nodes": 3}), tmp_path / "run").run()
    assert result.counts == {"done": 3}
    calls = Store(tmp_path / "run", create=False).llm_calls()
    assert [c["model"] for c in calls] == ["counting"] * 3
    assert sum(c["cost_usd"] for c in calls) == pytest.approx(0.003)
    lines = cassette.read_text().splitlines()
    assert len(lines) == 3 and '"[1, 0, 0]' not in lines[0] and "[1, 0, 0]" in lines[0]


def test_llm_written_code_is_repaired_run_in_the_sandbox_and_scored(tmp_path):
    """A recorded session on the python-task domain: a syntax error is repaired before evaluation."""
    cassette = CASSETTES / "python_task_llm.jsonl"
    cfg = {"name": "code-llm", "domain": {"name": "python-task", "options": {"task": "fit"}},
           "executor": {"name": "local", "options": {"workers": 1}}, "budget": {"max_nodes": 3},
           "sandbox": {"timeout_s": 60, "memory_mb": 1024},
           "agents": [{"name": "coder", "scaffold": {"name": "random", "options": {"n_drafts": 2, "p_draft": 0.0}},
                       "operators": ["llm-draft", "llm-improve"],
                       "llm": {"name": "replay", "options": {"cassette": str(cassette), "mode": "sequential"}}}]}
    result = Campaign.from_config(cfg, tmp_path / "run").run()
    nodes = Store(tmp_path / "run", create=False).nodes()
    assert result.counts == {"done": 3}
    assert [n.candidate.meta["repairs"] for n in nodes] == [0, 1, 0]
    losses = [n.metrics["loss"].value for n in nodes]
    assert losses[0] > losses[1] > losses[2] == pytest.approx(0.0, abs=1e-12)
    assert result.best.id == nodes[2].id and result.best.operator == "llm-improve"
    repair_prompt = [line for line in cassette.read_text().splitlines()][2]
    assert "the source does not compile: expected ':'" in repair_prompt
