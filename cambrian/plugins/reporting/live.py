"""The live terminal view of a running campaign (``cambrian run`` / ``resume`` on a terminal).

One rich renderable, re-drawn by ``rich.live.Live`` twice a second: a header with the
elapsed time, the budget spent and an ETA from it, one row per agent (a progress bar
over its share of the budget, done / failed / running counts, best score, status), the
evaluations running now (node, agent, operator, for how long) and, after search, the
phase running and its evaluations. It reads the campaign's in-memory mirror under the
campaign's lock, never the whole store, so drawing costs the same at node 10 and 10 000.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from cambrian.core.records import Budget, Cost, NodeStatus

MAX_RUNNING_ROWS = 8  # evaluations listed by name; more are counted
_LIMITS = (("max_nodes", "nodes"), ("wall_s", "wall"), ("llm_tokens", "LLM tokens"),
           ("llm_cost_usd", "LLM $"), ("eval_flops", "FLOPs"), ("eval_gpu_s", "GPU s"))


def budget_used(budget: Budget, nodes: int, elapsed: float, cost: Cost) -> dict[str, float]:
    """The fraction used of every limit ``budget`` sets, by limit name (1.0 = spent)."""
    used = {"max_nodes": nodes, "wall_s": elapsed, "llm_tokens": cost.llm_tokens,
            "llm_cost_usd": cost.llm_cost_usd, "eval_flops": cost.flops, "eval_gpu_s": cost.gpu_s}
    out = {}
    for key, _ in _LIMITS:
        limit = getattr(budget, key)
        if limit is not None:
            out[key] = min(1.0, used[key] / limit) if limit > 0 else 1.0
    return out


def search_fraction(campaign: Any, counts: dict[str | None, int]) -> float | None:
    """How much of the search budget is spent, 0..1 (None when no limit says);
    ``counts`` holds search nodes by agent name and in all (key None).

    Search ends at the first campaign limit reached, or when every agent reached one
    of its own: the campaign's fraction is its largest, the agents' is their smallest.
    """
    elapsed = campaign.elapsed()
    usage = _usage(campaign, None)
    own = budget_used(campaign.config.budget, counts.get(None, 0), elapsed, usage).values()
    agents = []
    for a in campaign.agents:
        if a.stopped:
            agents.append(1.0)
            continue
        mine = budget_used(a.config.budget, counts.get(a.name, 0), elapsed, _usage(campaign, a.name))
        agents.append(max(mine.values()) if mine else None)
    parts = [max(own)] if own else []
    if agents and None not in agents:
        parts.append(min(agents))
    return max(parts) if parts else None


def eta_s(campaign: Any, fraction: float | None) -> float | None:
    """Seconds of search left, extrapolated from the budget spent so far (None: unknown)."""
    wall = campaign.config.budget.wall_s
    elapsed = campaign.elapsed()
    if fraction is None or fraction <= 0.02 or elapsed < 1.0:  # too early to extrapolate
        return None if wall is None else max(0.0, wall - elapsed)
    left = elapsed * (1.0 - fraction) / fraction
    return left if wall is None else min(left, max(0.0, wall - elapsed))


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _usage(campaign: Any, agent: str | None) -> Cost:
    try:
        return campaign.usage(agent)
    except AttributeError:  # before run() has prepared the campaign
        return Cost()


class LiveView:
    """A campaign's live view: pass it to ``rich.live.Live``; subscribe :meth:`on_update`
    to ``campaign.subscribers`` for pauses and coordination events."""

    def __init__(self, campaign: Any) -> None:
        self.campaign = campaign
        self.started: dict[str, float] = {}  # node id -> when this view first saw it running
        self.paused: dict[str, str] = {}  # agent -> why the supervisor paused it
        self.events: deque[str] = deque(maxlen=3)
        self._phase_count: tuple[float, str, str] = (0.0, "", "")  # (when, phase, text): store reads are cached

    def on_update(self, campaign: Any, update: dict[str, Any]) -> None:
        kind = update.get("kind")
        if kind == "allocation_changed" and "paused" in update:
            if update["paused"]:
                self.paused[update["agent"]] = update.get("reason", "")
            else:
                self.paused.pop(update["agent"], None)
        elif kind == "insight_added":
            self.events.append(f"insight by {update['agent']}: {update['text'][:100]}")
        elif kind == "phase_started":
            self.events.append(f"phase {update['phase']} started")
        elif kind == "approval_needed":
            what = f"phase {update['phase']}" if "phase" in update else str(update.get("promotion"))
            self.events.append(f"awaiting approval of {what}")

    def __rich__(self) -> Any:
        try:
            return self.render()
        except Exception as exc:  # noqa: BLE001 - a view never stops a campaign
            return Text(f"{self.campaign.config.name}: (live view unavailable: {type(exc).__name__}: {exc})")

    def render(self) -> Group:
        c = self.campaign
        with c._lock:
            nodes = list(c.nodes.values())
            running = {nid: a for a in c.agents for nid in list(a.in_flight)}
        counts: dict[str | None, int] = {None: 0}  # finished nodes: the ETA extrapolates from results
        for n in nodes:
            if n.status.finished:
                counts[n.agent] = counts.get(n.agent, 0) + 1
                counts[None] += 1
        now = time.monotonic()
        for nid in running:
            self.started.setdefault(nid, now)
        parts: list[Any] = [self._header(counts), self._agents(nodes)]
        if running:
            parts.append(self._running(running, nodes, now))
        if c.current_phase:
            parts.append(self._phase(c.current_phase))
        parts += [Text(e, style="dim") for e in self.events]
        return Group(*parts)

    # -- parts ---------------------------------------------------------------------------

    def _header(self, counts: dict[str | None, int]) -> Text:
        c = self.campaign
        fraction = search_fraction(c, counts)
        spent = budget_used(c.config.budget, counts[None], c.elapsed(), _usage(c, None))
        limits = ", ".join(f"{label} {spent[key]:.0%}" for key, label in _LIMITS if key in spent)
        text = Text.assemble((c.config.name, "bold"), f"  elapsed {clock(c.elapsed())}",
                             f"  nodes {c.count()} ({counts[None]} finished)")
        if limits:
            text.append(f"  budget: {limits}")
        if c.current_phase:
            text.append(f"  phase {c.current_phase} running", style="bold")
        elif fraction is not None and fraction >= 1.0:
            text.append("  search budget spent")
        else:
            text.append(f"  search ETA {clock(eta_s(c, fraction))}")
        return text

    def _agents(self, nodes: list[Any]) -> Table:
        c = self.campaign
        obj = c.objective
        t = Table(box=None, pad_edge=False, show_edge=False)
        for col in ("agent", "scaffold", "budget", "done", "failed", "running", "best", "status"):
            t.add_column(col, justify="right" if col in ("done", "failed", "running", "best") else "left")
        elapsed = c.elapsed()
        for a in c.agents:
            mine = [n for n in nodes if n.agent == a.name]
            scores = [s for n in mine if (s := n.score(obj)) is not None]
            best = (min(scores) if obj.direction.value == "min" else max(scores)) if scores else None
            used = budget_used(a.config.budget, len(mine), elapsed, _usage(c, a.name))
            share = 1.0 if a.stopped else max(used.values()) if used else None
            bar: Any = ProgressBar(total=1.0, completed=share, width=16) if share is not None else "-"
            status = a.stopped or (f"paused: {self.paused[a.name]}" if a.name in self.paused
                                   else "waiting" if getattr(a, "waiting", False) else "searching")
            t.add_row(a.name, a.scaffold.name, bar,
                      str(sum(n.status == NodeStatus.DONE for n in mine)),
                      str(sum(n.status in (NodeStatus.FAILED, NodeStatus.INVALID) for n in mine)),
                      str(len(a.in_flight)), "-" if best is None else f"{best:.4g}", status)
        return t

    def _running(self, running: dict[str, Any], nodes: list[Any], now: float) -> Table:
        by_id = {n.id: n for n in nodes}
        t = Table(title="running", title_justify="left", box=None, pad_edge=False, show_edge=False)
        for col in ("node", "agent", "operator", "for"):
            t.add_column(col)
        order = sorted(running, key=lambda nid: self.started.get(nid, now))
        for nid in order[:MAX_RUNNING_ROWS]:
            node = by_id.get(nid)
            t.add_row(nid, running[nid].name, node.operator if node else "?",
                      clock(now - self.started.get(nid, now)))
        if len(order) > MAX_RUNNING_ROWS:
            t.add_row(f"... {len(order) - MAX_RUNNING_ROWS} more", "", "", "")
        return t

    def _phase(self, phase: str) -> Text:
        """The phase running and its evaluations so far (phase nodes live only in the store)."""
        when, cached, text = self._phase_count
        if cached != phase or time.monotonic() - when > 2.0:
            try:
                mine = [n for n in self.campaign.open_store().nodes() if n.phase == phase]
                done = sum(n.status.finished for n in mine)
                text = f"phase {phase}: {done}/{len(mine)} evaluations finished" if mine else f"phase {phase}"
            except Exception:  # noqa: BLE001 - a view never stops a campaign
                text = f"phase {phase}"
            self._phase_count = (time.monotonic(), phase, text)
        return Text(text, style="bold")
