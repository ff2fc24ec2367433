"""ReAct agents: an LLM that takes several steps with tools before it proposes.

``react-draft`` (role draft) and ``react-improve`` (role improve) run a small LangGraph
subgraph per proposal, driven by the agent's own LLM backend (any of Cambrian's; tool
calls are plain text, so no vendor function-calling API is needed)::

    START -> think -> act -> think -> ... -> END   (END after `submit`, or a failure)

``think`` asks the LLM; its reply must end with one fenced ```json block
``{"tool": NAME, "args": {...}}``. ``act`` runs the tool and appends its result to
the conversation. Tools:

  leaderboard {k}         the best finished nodes (id, agent, operator, score)
  insights {}             the shared insights board, best-supported first
  node {id | rank}        a node's status, metrics, error, candidate and training curve
  check {candidate}       validate a draft and count it (domain.inspect: params, FLOPs, ...)
                          without training it
  submit {candidate}      propose it; ends the step

A malformed tool call (no block, bad JSON, unknown tool, bad arguments) is sent back
once with the reason; a second one in a row fails the step with that reason (the
engine records it; the campaign goes on). Limits per proposal: ``max_steps`` LLM
calls, ``max_tokens_per_proposal`` and ``max_cost_usd_per_proposal``; the agent's and
the campaign's LLM budgets (``ctx.llm_left``) also stop the loop. The subgraph is run
without a checkpointer: its conversation never enters the campaign's checkpoint.
"""

from __future__ import annotations

import contextvars
import json
from typing import Any, Callable, TypedDict

from pydantic import Field

from cambrian import Candidate, Node, OperatorContext, hookimpl
from cambrian.core.components import last_fenced_block
from cambrian.plugins.operators.llm import LLMOperator, _node_view

TOOLS = ("leaderboard", "insights", "node", "check", "submit")
MAX_RESULT_CHARS = 4000  # a tool result is cut to this (the tail of a long curve is dropped)


class MalformedCall(ValueError):
    pass


class ReactState(TypedDict):
    messages: list[dict[str, str]]
    steps: int
    retried: bool
    call: dict[str, Any] | None
    candidate: dict[str, Any] | None  # the submitted candidate (Candidate JSON)
    failure: str | None


class ReactOperator(LLMOperator):
    """Shared machinery of the ReAct operators; subclasses set ``name`` and ``role``."""

    template = "react.j2"

    class Options(LLMOperator.Options):
        max_steps: int = Field(6, ge=1, description="LLM calls per proposal")
        max_tokens_per_proposal: int | None = Field(None, ge=1, description="LLM tokens per proposal")
        max_cost_usd_per_proposal: float | None = Field(None, ge=0, description="LLM dollars per proposal")
        leaderboard_k: int = Field(10, ge=1, description="rows the leaderboard tool shows by default")

    def variables(self, ctx: OperatorContext) -> dict[str, Any]:
        return {**super().variables(ctx), "tools": TOOLS, "max_steps": int(self.option(ctx, "max_steps"))}

    # -- the subgraph --------------------------------------------------------------------------

    def graph(self, ctx: OperatorContext, spent: Callable[[], tuple[int, float]]) -> Any:
        # langgraph takes ~0.6 s to import: not with the plugin, which every evaluation worker loads
        from langgraph.graph import END, START, StateGraph

        max_steps = int(self.option(ctx, "max_steps"))
        max_tokens = self.option(ctx, "max_tokens_per_proposal")
        max_cost = self.option(ctx, "max_cost_usd_per_proposal")

        def over_budget() -> str | None:
            tokens, cost = spent()
            left_tokens, left_cost = ctx.llm_left.get("llm_tokens"), ctx.llm_left.get("llm_cost_usd")
            for what, used, limit in (("tokens per proposal", tokens, max_tokens),
                                      ("dollars per proposal", cost, max_cost),
                                      ("LLM tokens of the budget", tokens, left_tokens),
                                      ("LLM dollars of the budget", cost, left_cost)):
                if limit is not None and used >= limit:
                    return f"{what} spent ({used:.4g} of {limit:.4g}) before a submit"
            return None

        def think(state: ReactState) -> dict[str, Any]:
            if state["steps"] >= max_steps:
                return {"failure": f"step limit: {max_steps} LLM steps without a submit"}
            if (why := over_budget()) is not None:
                return {"failure": why}
            text = self.ask(ctx, state["messages"])
            messages = [*state["messages"], {"role": "assistant", "content": text}]
            try:
                call = parse_call(text)
            except MalformedCall as exc:
                if state["retried"]:
                    return {"messages": messages, "steps": state["steps"] + 1,
                            "failure": f"malformed tool call after one retry: {exc}"}
                note = (f"Your reply had no valid tool call: {exc}. Reply with exactly one fenced ```json "
                        'block {"tool": NAME, "args": {...}}; tools: ' + ", ".join(TOOLS) + ".")
                return {"messages": [*messages, {"role": "user", "content": note}], "steps": state["steps"] + 1,
                        "retried": True, "call": None}
            return {"messages": messages, "steps": state["steps"] + 1, "retried": False, "call": call}

        def act(state: ReactState) -> dict[str, Any]:
            call = state["call"] or {}
            tool, args = call["tool"], call["args"]
            try:
                if tool == "submit":
                    cand = self.candidate(ctx, args)
                    self.check(ctx, cand)
                    return {"candidate": cand.model_dump(mode="json")}
                result = self.run_tool(ctx, tool, args)
            except (ValueError, KeyError, TypeError) as exc:  # a tool error is an answer, not a failure
                result = {"error": str(exc)[:1000]}
            text = json.dumps(result, default=str)
            if len(text) > MAX_RESULT_CHARS:
                text = text[:MAX_RESULT_CHARS] + " ...(cut)"
            return {"messages": [*state["messages"], {"role": "user", "content": f"Result of {tool}:\n{text}"}],
                    "call": None}

        def after_think(state: ReactState) -> str:
            if state.get("failure"):
                return END
            return "act" if state.get("call") else "think"

        def after_act(state: ReactState) -> str:
            return END if state.get("candidate") is not None else "think"

        g = StateGraph(ReactState)
        g.add_node("think", think)
        g.add_node("act", act)
        g.add_edge(START, "think")
        g.add_conditional_edges("think", after_think, ["act", "think", END])
        g.add_conditional_edges("act", after_act, ["think", END])
        return g.compile()

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        if ctx.llm is None:
            raise RuntimeError(f"operator {self.name!r} needs an LLM; the agent has none")
        base = getattr(ctx.llm, "cost", None)
        start = (base.llm_tokens, base.llm_cost_usd) if base is not None else (0, 0.0)

        def spent() -> tuple[int, float]:
            c = getattr(ctx.llm, "cost", None)
            return (c.llm_tokens - start[0], c.llm_cost_usd - start[1]) if c is not None else (0, 0.0)

        state: ReactState = {"messages": self.messages(ctx), "steps": 0, "retried": False, "call": None,
                             "candidate": None, "failure": None}
        app = self.graph(ctx, spent)
        config = {"recursion_limit": 4 * int(self.option(ctx, "max_steps")) + 4}
        # A fresh context: the subgraph must not inherit the campaign graph's config and
        # checkpointer (its conversation is this step's, never coordination state).
        final = contextvars.Context().run(app.invoke, state, config)
        if final.get("candidate") is None:
            raise ValueError(final.get("failure") or "the ReAct loop ended without a submit")
        cand = Candidate.model_validate(final["candidate"])
        meta = {**cand.meta, "operator": self.name, "react_steps": final["steps"]}
        return [cand.model_copy(update={"meta": meta})]

    # -- tools ---------------------------------------------------------------------------------

    def candidate(self, ctx: OperatorContext, args: dict[str, Any]) -> Candidate:
        if "candidate" not in args:
            raise ValueError("give the candidate as args.candidate")
        return ctx.domain.validate(Candidate(kind=ctx.domain.candidate_kind, content=args["candidate"]))

    def find(self, ctx: OperatorContext, args: dict[str, Any]) -> Node:
        if "rank" in args:
            rank = int(args["rank"])
            if not 1 <= rank <= len(ctx.leaderboard):
                raise ValueError(f"rank {rank} is not on the leaderboard (1..{len(ctx.leaderboard)})")
            return ctx.leaderboard[rank - 1]
        wanted = str(args.get("id", ""))
        for n in [*ctx.parents, *ctx.leaderboard, *ctx.shared]:
            if n.id == wanted:
                return n
        raise ValueError(f"no finished node {wanted!r}; give args.id of a node on the leaderboard, or args.rank")

    def run_tool(self, ctx: OperatorContext, tool: str, args: dict[str, Any]) -> Any:
        if tool == "leaderboard":
            k = int(args.get("k", self.option(ctx, "leaderboard_k")))
            return [{"rank": i + 1, "id": n.id, "agent": n.agent, "operator": n.operator,
                     "score": n.score(ctx.objective)} for i, n in enumerate(ctx.leaderboard[:k])]
        if tool == "insights":
            return [{"text": i.text, "agent": i.agent, "evidence": list(i.evidence)} for i in ctx.insights]
        if tool == "node":
            node = self.find(ctx, args)
            view = _node_view(ctx, node)
            if ctx.run_dir is not None:
                curve = ctx.domain.curve(ctx.run_dir, node)
                view["curve"] = [[round(x, 6), round(y, 6)] for x, y in curve[:: max(1, len(curve) // 20)]]
            return view
        if tool == "check":
            cand = self.candidate(ctx, args)
            return {"valid": True, "already_evaluated": any(n.candidate.hash == cand.hash for n in ctx.shared),
                    **ctx.domain.inspect(cand)}
        raise ValueError(f"unknown tool {tool!r}")


def parse_call(text: str) -> dict[str, Any]:
    """The tool call in a reply's last ```json block, or MalformedCall with the reason."""
    block = last_fenced_block(text, ("json", ""))
    if block is None:
        raise MalformedCall("no ```json block")
    try:
        call = json.loads(block)
    except json.JSONDecodeError as exc:
        raise MalformedCall(f"the JSON does not parse ({exc})") from None
    if not isinstance(call, dict) or call.get("tool") not in TOOLS:
        tool = call.get("tool") if isinstance(call, dict) else None
        raise MalformedCall(f"unknown tool {tool!r}; tools: {', '.join(TOOLS)}")
    args = call.get("args", {})
    if not isinstance(args, dict):
        raise MalformedCall("args must be a JSON object")
    return {"tool": call["tool"], "args": args}


class ReactDraft(ReactOperator):
    name, role = "react-draft", "draft"


class ReactImprove(ReactOperator):
    name, role = "react-improve", "improve"


@hookimpl
def cambrian_operators():
    return [ReactDraft, ReactImprove]
