"""The campaign as a LangGraph graph: the graph schedules, waits and resumes.

    START -> [pre_q1 -> ...] -> supervisor --Send(a1)--> agent_step ┐
                                   ^       --Send(aN)--> agent_step ┴-> record ┐
                                   |       --(nothing to start)------> record ┤
                                   |<----------------------------------------------┘
                                   |       --(a promotion asks)--> approve_promotion ┐
                                   └─────────────────────────────────────────────────┘
             supervisor --(search over)--> [approve_p1] -> phase_p1 -> ... -> END

- ``pre_<phase>``: the domain's phases marked ``before_search`` (compose's check of
  its references against the count-based floors), run once before any agent starts.

- ``supervisor``: checks budgets, pauses stalled agents, and gives the free evaluation
  slots to agents under the coordination policy (``cambrian.campaign.supervisor``); every
  decision goes to the store as an ``allocation`` event with its reason.
- ``agent_step`` (one branch per agent given slots, in parallel): observe the shared
  state (leaderboard, insights board), ask the scaffold for parents and an operator,
  produce candidates, write them to the store and submit them; insights it writes go
  onto the board.
- ``record``: waits until an evaluation finishes (never longer than a budget allows),
  writes its result to the store, and lets the scaffold and the supervisor observe it.
- ``approve_<phase>``: for a phase marked ``approve: true``, interrupts (LangGraph
  ``interrupt``) with the phase's estimated cost until ``cambrian approve`` records a
  decision; ``phase_<phase>`` then runs it (or skips it when rejected).
- ``approve_promotion``: an agent step whose scaffold proposed a gated promotion
  (``Proposal.approve``, e.g. halving's ``approve_from``) leaves a request instead of a
  node; this gate lets the running evaluations finish, then interrupts with the
  promotion's cost like a phase's gate. The decision goes to ``approvals`` (keyed
  ``promotion <hash> to <fidelity>``); the agent's next step evaluates the promotion or,
  rejected, its scaffold no longer proposes it.

The store is the one record of nodes and results. The checkpoint (``graph.sqlite``)
holds only coordination state: the current slot grants, paused agents, the insights
board and approval decisions (``cambrian.campaign.checkpoint`` reads it without the
graph). The graph's task stream (LangGraph ``stream_mode="tasks"``: each step's start
with its input, its end with its result and interrupts) is turned into updates for the
user (agent step done, allocation changed, insight added, phase started, approval
needed) that the CLI renders. The task stream keeps LangGraph's single-task fast path
(a ``custom`` stream would run every step in a worker thread).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send, interrupt

from cambrian.campaign.checkpoint import GRAPH_FILE, THREAD
from cambrian.campaign.engine import Campaign
from cambrian.core.errors import CambrianError
from cambrian.core.records import Insight, rank_insights

BOARD_SIZE = 200  # insights kept in the checkpoint (prompts see max_insights of them)
DURABILITY = "sync"  # every step's checkpoint is written before the next step starts


def _add_insights(old: list[dict], new: list[dict]) -> list[dict]:
    merged = [Insight.model_validate(i) for i in [*(old or []), *(new or [])]]
    return [i.model_dump(mode="json") for i in rank_insights(merged, BOARD_SIZE)]


def _merge(old: dict, new: dict) -> dict:
    return {**(old or {}), **(new or {})}


class CoordinationState(TypedDict, total=False):
    round: int
    slots: dict[str, int]  # slots given to each agent in the current round
    paused: dict[str, str]  # agent -> why the supervisor paused it
    insights: Annotated[list[dict], _add_insights]  # the shared board (Insight records)
    approvals: Annotated[dict[str, str], _merge]  # phase or promotion key -> "approved" | "rejected"
    requests: Annotated[dict[str, dict], _merge]  # promotion key -> what a person is asked


class Updates:
    """Turns the graph's task stream into updates for people: one dict per event."""

    def __init__(self) -> None:
        self.inputs: dict[str, Any] = {}  # task id -> its input (a Send's arg names the agent)
        self.slots: dict[str, int] = {}
        self.paused: dict[str, str] = {}

    def __call__(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        name, out = task.get("name", ""), []
        if "input" in task:  # a step starts
            self.inputs[task["id"]] = task["input"]
            if name.startswith("phase_"):
                phase = name[len("phase_"):]
                rejected = ((task["input"] or {}).get("approvals") or {}).get(phase) == "rejected"
                out.append({"kind": "phase_skipped" if rejected else "phase_started", "phase": phase})
            return out
        arg, result = self.inputs.pop(task["id"], None) or {}, task.get("result") or {}
        if name == "supervisor" and not task.get("error"):
            slots, paused = result.get("slots", {}), result.get("paused", {})
            for agent in sorted(set(paused) - set(self.paused)):
                out.append({"kind": "allocation_changed", "agent": agent, "paused": True, "reason": paused[agent]})
            for agent in sorted(set(self.paused) - set(paused)):
                out.append({"kind": "allocation_changed", "agent": agent, "paused": False, "reason": "unpaused"})
            if slots and slots != self.slots:
                out.append({"kind": "allocation_changed", "slots": slots})
            self.slots = slots or self.slots
            self.paused = paused
        elif name == "agent_step":
            for i in result.get("insights", []):
                out.append({"kind": "insight_added", "agent": i["agent"], "text": i["text"],
                            "evidence": list(i["evidence"])})
            out.append({"kind": "agent_step", "agent": arg.get("agent"), "error": task.get("error")})
        for intr in task.get("interrupts") or []:
            value = intr.get("value") if isinstance(intr, dict) else getattr(intr, "value", None)
            if isinstance(value, dict) and ("phase" in value or "promotion" in value):
                out.append({"kind": "approval_needed", **value})
        return out


def build_graph(campaign: Campaign, checkpointer: Any = None) -> Any:
    g = StateGraph(CoordinationState)

    def supervisor(state: CoordinationState) -> dict[str, Any]:
        slots, paused = campaign.supervise(state.get("round", 0), state.get("slots", {}),
                                           state.get("paused", {}))
        return {"round": state.get("round", 0) + 1, "slots": slots, "paused": paused}

    def route(state: CoordinationState) -> list[Send] | str:
        if campaign.search_over():
            return first_after_search
        if _pending_promotion(state) is not None:
            return "approve_promotion"
        board = state.get("insights", [])[: campaign.config.coordination.max_insights]
        approvals = state.get("approvals") or {}
        sends = [Send("agent_step", {"agent": a, "steps": n, "insights": board, "approvals": approvals})
                 for a, n in state.get("slots", {}).items() if n > 0]
        return sends or "record"

    def agent_step(arg: dict[str, Any]) -> dict[str, Any]:
        insights = [Insight.model_validate(i) for i in arg.get("insights", [])]
        new, requests = campaign.agent_step(arg["agent"], int(arg["steps"]), insights, arg.get("approvals"))
        out: dict[str, Any] = {"insights": [i.model_dump(mode="json") for i in new]} if new else {}
        if requests:
            out["requests"] = requests
        return out

    def approve_promotion(state: CoordinationState) -> dict[str, Any]:
        key, request = _pending_promotion(state)  # type: ignore[misc]
        campaign.drain()  # nothing runs while the campaign waits for a person
        campaign.open_store().log_event("approval_needed", promotion=key, cost=request["cost"])
        decision = interrupt(request)  # the run exits here until `cambrian approve`
        return {"approvals": {key: decision}}

    def record(state: CoordinationState) -> dict[str, Any]:
        campaign.record(block=not any(state.get("slots", {}).values()) or not campaign.made_progress)
        return {}

    g.add_node("supervisor", supervisor)
    g.add_node("agent_step", agent_step)
    g.add_node("record", record)
    g.add_node("approve_promotion", approve_promotion)
    g.add_edge("approve_promotion", "supervisor")
    prev = START
    for phase in campaign.phases:
        if phase.before_search:
            g.add_node(f"pre_{phase.name}", _phase_node(campaign, phase.name))
            g.add_edge(prev, f"pre_{phase.name}")
            prev = f"pre_{phase.name}"
    g.add_edge(prev, "supervisor")
    g.add_edge("agent_step", "record")
    g.add_edge("record", "supervisor")

    chain: list[str] = []
    for phase in campaign.phases:
        if phase.before_search:
            continue
        if phase.name in campaign.approvals_needed:
            chain.append(f"approve_{phase.name}")
            g.add_node(chain[-1], _approval_gate(campaign, phase.name))
        chain.append(f"phase_{phase.name}")
        g.add_node(chain[-1], _phase_node(campaign, phase.name))
    first_after_search = chain[0] if chain else END
    g.add_conditional_edges("supervisor", route, ["agent_step", "record", "approve_promotion", first_after_search])
    for a, b in zip(chain, chain[1:]):
        g.add_edge(a, b)
    if chain:
        g.add_edge(chain[-1], END)
    return g.compile(checkpointer=checkpointer)


def _pending_promotion(state: CoordinationState) -> tuple[str, dict] | None:
    """The oldest promotion request without a decision, if any."""
    approvals = state.get("approvals") or {}
    for key, request in (state.get("requests") or {}).items():
        if key not in approvals:
            return key, request
    return None


def _approval_gate(campaign: Campaign, name: str) -> Any:
    def gate(state: CoordinationState) -> dict[str, Any]:
        decision = (state.get("approvals") or {}).get(name)
        if decision is None:
            decision = interrupt(campaign.approval_request(name))  # the run exits here until `cambrian approve`
        return {"approvals": {name: decision}}

    return gate


def _phase_node(campaign: Campaign, name: str) -> Any:
    def run(state: CoordinationState) -> dict[str, Any]:
        decision = (state.get("approvals") or {}).get(name)
        if decision == "rejected":
            campaign.skip_phase(name, "rejected by a person (cambrian approve --reject)")
        else:
            campaign.run_phase(name)
        return {}

    return run


def _connect(run_dir: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(run_dir / GRAPH_FILE, check_same_thread=False)
    # WAL + NORMAL: a checkpoint survives a process kill and costs ~0.3 ms instead of an fsync
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def run_graph(campaign: Campaign) -> str | None:
    """Run (or resume) the campaign's graph; returns the phase awaiting approval, if any."""
    conn = _connect(Path(campaign.run_dir))
    # One thread per agent branch: LangGraph's default pool is sized by CPU count.
    config = {**THREAD, "max_concurrency": len(campaign.agents) + 1, "recursion_limit": 10**9}
    try:
        app = build_graph(campaign, SqliteSaver(conn))
        state = app.get_state(config)
        # Stopped mid-graph (killed, or at an interrupt): continue from there. `tasks`, not
        # `next`: a kill after every task of a step saved its writes but before the step's
        # checkpoint leaves `next` empty (it lists only tasks without writes), yet the graph
        # has not ended; only the final checkpoint has no tasks.
        if state.tasks:
            inp: Any = None
        elif not state.values:  # a new campaign
            inp = {"round": 0, "slots": {}, "paused": {}, "insights": [], "approvals": {}, "requests": {}}
        else:  # the graph already ran to the end; nothing to do
            return None
        updates = Updates()
        for task in app.stream(inp, config, stream_mode="tasks", durability=DURABILITY):
            for update in updates(task):
                campaign.publish(update)
        return pending_approval(app, config)
    finally:
        conn.close()


def pending_approval(app: Any, config: dict) -> str | None:
    """The key of the pending approval: a phase's name, or a promotion's key."""
    request = _pending_request(app, config)
    return None if request is None else str(request.get("phase") or request.get("promotion"))


def _pending_request(app: Any, config: dict) -> dict | None:
    state = app.get_state(config)
    for task in state.tasks:
        for intr in task.interrupts:
            return dict(intr.value)
    return None


def _open(run_dir: Path, campaign: Campaign) -> tuple[sqlite3.Connection, Any]:
    conn = _connect(run_dir)
    return conn, build_graph(campaign, SqliteSaver(conn))


def decide(run_dir: str | Path, decision: str) -> str:
    """Record a person's decision ("approved" or "rejected") on the pending approval.

    Takes the run directory's lock (a writer, like `resume`); returns what was decided:
    the phase's name or the promotion's key (``promotion <hash> to <fidelity>``).
    """
    if decision not in ("approved", "rejected"):
        raise CambrianError(f"decision must be 'approved' or 'rejected', got {decision!r}")
    campaign = Campaign.resume(run_dir)
    try:
        conn, app = _open(Path(run_dir), campaign)
        try:
            config = dict(THREAD)
            request = _pending_request(app, config)
            if request is None:
                raise CambrianError(f"{run_dir} is not awaiting an approval")
            phase = str(request.get("phase") or request.get("promotion"))
            gate = f"approve_{phase}" if "phase" in request else "approve_promotion"
            # As if the gate had returned the decision: `resume` continues from there.
            app.update_state(config, {"approvals": {phase: decision}}, as_node=gate)
        finally:
            conn.close()
        store = campaign.open_store()
        store.log_event("approval_decided", phase=phase, decision=decision)
        store.close()
        return phase
    finally:
        campaign._run_lock.release()
