"""Campaign coordination as a LangGraph graph, checkpointed to SQLite.

    START --Send--> agent(a1) ┐
          --Send--> agent(a2) ├─> search_done -> phase_p1 -> phase_p2 -> ... -> END
          --Send--> agent(aN) ┘

Each agent branch runs in its own thread and proceeds at its own pace (no
agent waits for another between steps); they share the store, the executor and
so the leaderboard and notes. The graph state holds only names; every node,
result and artifact lives in the campaign store. With the checkpointer, a
campaign killed mid-search resumes only the branches that had not finished,
and a phase that finished is not run again.
"""

from __future__ import annotations

import operator
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

if TYPE_CHECKING:
    from cambrian.core.campaign import Campaign

GRAPH_FILE = "graph.sqlite"
THREAD = {"configurable": {"thread_id": "campaign"}}


class CampaignState(TypedDict):
    agents_done: Annotated[list[str], operator.add]
    phases_done: Annotated[list[str], operator.add]


def build_graph(campaign: "Campaign", checkpointer: Any = None) -> Any:
    phases = [p.name for p in campaign.phases]
    g = StateGraph(CampaignState)

    def fan_out(state: CampaignState) -> list[Send] | str:
        todo = [a.name for a in campaign.agents if a.name not in state.get("agents_done", [])]
        return [Send("agent", {"agent": n}) for n in todo] or "search_done"

    def agent(arg: dict[str, str]) -> dict[str, list[str]]:
        campaign.run_agent(arg["agent"])
        return {"agents_done": [arg["agent"]]}

    g.add_node("agent", agent)
    g.add_node("search_done", lambda state: {})
    g.add_conditional_edges(START, fan_out, ["agent", "search_done"])
    g.add_edge("agent", "search_done")
    prev = "search_done"
    for name in phases:
        node = f"phase_{name}"
        g.add_node(node, lambda state, name=name: (campaign.run_phase(name), {"phases_done": [name]})[1])
        g.add_edge(prev, node)
        prev = node
    g.add_edge(prev, END)
    return g.compile(checkpointer=checkpointer)


def run_graph(campaign: "Campaign") -> None:
    """Run (or resume) the campaign's graph to the end."""
    path = Path(campaign.run_dir) / GRAPH_FILE
    conn = sqlite3.connect(path, check_same_thread=False)
    # One thread per agent branch: LangGraph's default pool is sized by CPU count.
    config = {**THREAD, "max_concurrency": len(campaign.agents) + 1}
    try:
        app = build_graph(campaign, SqliteSaver(conn))
        state = app.get_state(config)
        if state.next:  # killed mid-graph: finish the pending branches and phases
            app.invoke(None, config)
        elif not state.values:  # a new campaign
            app.invoke({"agents_done": [], "phases_done": []}, config)
        # else: the graph already ran to the end; nothing to do
    finally:
        conn.close()
