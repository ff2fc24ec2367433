"""ReAct agents: several LLM steps with tools per proposal, a LangGraph subgraph, limits enforced."""

import json
import random

import pytest

from cambrian import Campaign, Cost, LLMBackend, LLMResponse, OperatorContext, Store
from cambrian.core.plugins import get_plugin_manager

from ..conftest import toy_config
from .conftest import CASSETTES

CASSETTE = CASSETTES / "react_toy.jsonl"


def test_react_campaign_replayed_from_a_cassette_survives_a_malformed_tool_call(tmp_path):
    llm = {"name": "replay", "options": {"cassette": str(CASSETTE), "mode": "sequential"}}
    cfg = toy_config(domain={"name": "toy", "options": {"dim": 3, "function": "sphere", "noise": 0.0}},
                     executor={"name": "local", "options": {"workers": 1, "isolation": "thread"}},
                     budget={"max_nodes": 2},
                     agents=[{"name": "thinker", "scaffold": {"name": "random", "options": {"p_draft": 1.0}},
                              "operators": ["react-draft"], "llm": llm}])
    result = Campaign.from_config(cfg, tmp_path / "run").run()
    store = Store(tmp_path / "run", create=False)
    nodes = store.nodes()
    assert result.reason == "max_nodes"
    assert [n.candidate.content for n in nodes] == [[0.5, 0.5, 0.5], [0.25, 0.5, 0.5]]
    assert [n.candidate.meta["react_steps"] for n in nodes] == [3, 3]
    failed = store.events("operator_failed")  # the second proposal: two malformed calls in a row
    assert len(failed) == 1 and "malformed tool call after one retry: no ```json block" in failed[0]["payload"]["error"]
    assert len(store.llm_calls()) == 8  # 3 + 2 + 3 steps, each metered


class Scripted(LLMBackend):
    """Answers from a list and keeps every conversation it was sent."""

    name = "scripted"

    def __init__(self, replies, tokens=10):
        super().__init__()
        self.replies, self.seen, self.tokens = list(replies), [], tokens
        self.cost = Cost()  # what MeteredLLM keeps per step; the ReAct loop reads it

    def complete(self, messages, **kwargs):
        self.seen.append([dict(m) for m in messages])
        self.cost = self.cost + Cost(llm_prompt_tokens=self.tokens)
        return LLMResponse(text=self.replies.pop(0), prompt_tokens=self.tokens)


def call(tool, **args):
    return f"thinking\n```json\n{json.dumps({'tool': tool, 'args': args})}\n```"


def context(llm, **over):
    pm = get_plugin_manager()
    domain = pm.get("domain", "toy")(dim=2)
    kw = dict(domain=domain, parents=[], rng=random.Random(0), objective=domain.objective, leaderboard=[],
              notes=[], budget_left={}, llm=llm)
    kw.update(over)
    return OperatorContext(**kw)


def operator(**options):
    return get_plugin_manager().get("operator", "react-draft")(**options)


def test_tools_answer_in_the_conversation_and_a_malformed_call_is_retried_once():
    llm = Scripted([call("check", candidate=[3.0, 4.0]), "no block here", call("submit", candidate=[0.1, 0.2])])
    [cand] = operator().apply(context(llm))
    assert cand.content == [0.1, 0.2] and cand.meta["react_steps"] == 3
    second, third = llm.seen[1], llm.seen[2]
    assert second[-1]["content"].startswith("Result of check:") and '"norm": 5.0' in second[-1]["content"]
    assert "no valid tool call: no ```json block" in third[-1]["content"]


def test_a_tool_error_is_an_answer_not_a_failure():
    llm = Scripted([call("check", candidate=[1.0]), call("node", id="nope"), call("submit", candidate=[0.0, 0.0])])
    [cand] = operator().apply(context(llm))
    assert "a toy candidate is a list of 2 numbers" in llm.seen[1][-1]["content"]
    assert "no finished node 'nope'" in llm.seen[2][-1]["content"] and cand.content == [0.0, 0.0]


def test_step_limit_fails_the_step_with_the_reason():
    llm = Scripted([call("leaderboard")] * 5)
    with pytest.raises(ValueError, match="step limit: 3 LLM steps without a submit"):
        operator(max_steps=3).apply(context(llm))
    assert len(llm.seen) == 3


@pytest.mark.parametrize("options, left, match", [
    ({"max_tokens_per_proposal": 25}, {}, "tokens per proposal spent"),
    ({}, {"llm_tokens": 15}, "LLM tokens of the budget spent"),
])
def test_token_budgets_stop_the_loop(options, left, match):
    llm = Scripted([call("insights")] * 5)
    with pytest.raises(ValueError, match=match):
        operator(**options).apply(context(llm, llm_left=left))
    assert len(llm.seen) == (3 if "max_tokens_per_proposal" in options else 2)


def test_react_conversation_stays_out_of_the_campaign_checkpoint(tmp_path):
    from cambrian.campaign.checkpoint import GRAPH_FILE

    test_react_campaign_replayed_from_a_cassette_survives_a_malformed_tool_call(tmp_path)
    raw = (tmp_path / "run" / GRAPH_FILE).read_bytes()
    assert b"Result of check" not in raw and b"leaderboard" not in raw
