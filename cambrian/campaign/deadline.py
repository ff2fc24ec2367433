"""Finishing by a deadline: the search stops in time for the phases after it.

``budget.deadline_s`` bounds the whole run, phases included. A search budget in nodes or
seconds cannot do that: what the phases cost depends on what the search finds (a deeper
winner trains longer under every hidden seed) and on how fast the machine is today. So the
campaign plans: every supervisor round, before it grants a new search evaluation, it adds up
what would still have to run if it did (the running search evaluations' remaining time, one
more search evaluation at the mean of the search's so far, and every evaluation the phases
would ask for if the search stopped now, :meth:`Phase.planned`), schedules that on the
executor's workers longest first, and stops the search (running evaluations finish) when the
schedule would end past the deadline.

Every estimate is this run's own measurement: an evaluation costs what the same candidate
cost at that fidelity here (scaled from its nearest fidelity, else the run's typical
evaluation at that fidelity). Idle-lane runs are not used to estimate (they wait for idle
CPU: their wall time is not an evaluation's cost). What phases do not declare (the default
``planned`` is :meth:`Phase.ahead`) and the time outside evaluations (reports, the phases'
own arithmetic) are not in the plan: leave that margin in the deadline.

Why Cambrian's own code: the plan needs the store's measured costs, the phases' node ids and
the executor's worker count, which no scheduler library sees together; the schedule itself
is the classic longest-processing-time rule (a few lines of heapq).
"""

from __future__ import annotations

import heapq
import statistics
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cambrian.core.records import Node, NodeStatus
from cambrian.core.store import Store

if TYPE_CHECKING:
    from cambrian.campaign.engine import Campaign

DEADLINE = "deadline_s"  # the budget's name in events and stop reasons
SEARCH_LEFT_CAP = 64  # Deadline.search_left counts no further: a reserve is a few; the plan is made every step


def makespan(jobs: Iterable[float], workers: int, busy: Iterable[float] = ()) -> float:
    """When ``jobs`` (seconds each) end on ``workers``, each taken longest first by the worker
    free soonest, after the workers are busy for ``busy`` seconds (one entry per busy worker;
    more entries than workers queue behind them)."""
    loads = [0.0] * max(1, workers)
    for b in sorted(busy, reverse=True):
        least = heapq.heappop(loads)
        heapq.heappush(loads, least + max(0.0, b))
    for j in sorted(jobs, reverse=True):
        least = heapq.heappop(loads)
        heapq.heappush(loads, least + j)
    return max(loads)


class CostModel:
    """Wall seconds of an evaluation, estimated from the run's finished ones."""

    def __init__(self, nodes: Iterable[Node], exclude: set[str] = frozenset()) -> None:
        self._by: dict[tuple[str, float], list[float]] = {}
        self._at: dict[float, list[float]] = {}
        self._search: list[float] = []
        for n in nodes:
            if n.id in exclude or n.status != NodeStatus.DONE or n.cost.wall_s <= 0:
                continue
            f = float(n.fidelity)
            self._by.setdefault((n.candidate.hash, f), []).append(n.cost.wall_s)
            self._at.setdefault(f, []).append(n.cost.wall_s)
            if n.phase == "search":
                self._search.append(n.cost.wall_s)

    def estimate(self, candidate_hash: str, fidelity: float) -> float | None:
        """This candidate's mean at this fidelity; else scaled from its nearest fidelity (cost
        grows about in proportion: the budget is training tokens); else the run's median at
        this fidelity; else the median at the nearest fidelity, scaled; None with no data."""
        fidelity = float(fidelity)
        if (own := self._by.get((candidate_hash, fidelity))):
            return statistics.fmean(own)
        mine = [f for (h, f) in self._by if h == candidate_hash]
        if mine:
            near = min(mine, key=lambda f: abs(f - fidelity))
            return statistics.fmean(self._by[(candidate_hash, near)]) * fidelity / near
        if (typical := self._at.get(fidelity)):
            return statistics.median(typical)
        if self._at:
            near = min(self._at, key=lambda f: abs(f - fidelity))
            return statistics.median(self._at[near]) * fidelity / near
        return None

    def next_search(self) -> float | None:
        """What one more search evaluation is taken to cost: the mean of the search's so far (a
        mean, not a median: the few promotions at the full budget weigh as they will)."""
        return statistics.fmean(self._search) if self._search else None


def measured_costs(store: Store) -> CostModel:
    """The run's evaluations as a cost model (idle-lane runs left out)."""
    lane = {e["node_id"] for e in store.events("idle_evaluation_started")}
    return CostModel(store.nodes(), exclude=lane)


class Deadline:
    """The plan behind ``budget.deadline_s`` (see the module's docstring)."""

    def __init__(self, campaign: Campaign, limit_s: float | None, store: Store) -> None:
        self.campaign = campaign
        self.limit_s = limit_s
        # a search the deadline stopped stays stopped when the run is resumed (at a phase, say)
        self.reached = limit_s is not None and any(
            e["payload"].get("budget") == DEADLINE for e in store.events("budget_exhausted"))
        self._key: tuple[int, int, frozenset[str]] | None = None  # search nodes, finished, lane runs
        self._phase_jobs: list[float] = []
        self._next: float | None = None
        self._model: CostModel | None = None
        self.last_plan: dict[str, Any] | None = None

    def due(self, store: Store) -> bool:
        """True when one more search evaluation would leave the phases no time to end by the
        deadline (the plan is in :attr:`last_plan`)."""
        if self.limit_s is None or self.reached:
            return self.reached
        if (state := self._state(store)) is None:  # nothing measured yet: no plan to go by
            return False
        elapsed, running = state
        plan = makespan([self._next, *self._phase_jobs], self.campaign.executor.workers, busy=running)
        self.last_plan = {"elapsed_s": round(elapsed, 1), "plan_s": round(plan, 1), "deadline_s": self.limit_s,
                          "phase_evaluations": len(self._phase_jobs),
                          "phase_work_s": round(sum(self._phase_jobs), 1),
                          "running": len(running), "workers": self.campaign.executor.workers,
                          "next_search_s": round(self._next, 1)}
        self.reached = elapsed + plan > self.limit_s
        return self.reached

    def search_left(self, store: Store) -> int | None:
        """How many more search evaluations, each at the next one's price, still leave the
        phases time to end by the deadline (0 once it is reached; None without a deadline or
        before anything is measured; at most ``SEARCH_LEFT_CAP``). Scaffolds see it as
        ``budget_left["deadline_nodes"]``: a multi-fidelity search keeps the end of its time
        for its finalists, as it keeps the end of a node budget (``halving``'s reserve)."""
        if self.limit_s is None or self.reached:
            return 0 if self.reached else None
        if (state := self._state(store)) is None:
            return None
        elapsed, running = state
        workers = self.campaign.executor.workers

        def fits(k: int) -> bool:
            return elapsed + makespan([self._next] * k + self._phase_jobs, workers, busy=running) <= self.limit_s

        if not fits(1):
            return 0
        hi = 2  # the plan grows with k: double until it does not fit, then bisect
        while fits(hi):
            if hi >= SEARCH_LEFT_CAP:  # far from the deadline: "many" is all a scaffold needs
                return SEARCH_LEFT_CAP
            hi *= 2
        lo = hi // 2  # fits(lo), not fits(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        return lo

    def _state(self, store: Store) -> tuple[float, list[float]] | None:
        """``(elapsed, remaining seconds of each running search evaluation)``, with the phases'
        planned work and the next search evaluation's price brought up to date; None before
        anything is measured."""
        c = self.campaign
        key = (c.count(), sum(n.status.finished for n in c.nodes.values()), frozenset(c.idle_lane.running.values()))
        if key != self._key:  # the search or the idle lane moved on: re-plan the phases' work
            self._model = measured_costs(store)
            self._phase_jobs = self._planned_jobs(store, self._model)
            self._next = self._model.next_search()
            self._key = key
        if self._next is None:
            return None
        now = time.time()
        running = []
        for node_id in list(c.futures.values()):
            if (node := c.nodes.get(node_id)) is None:
                continue
            est = self._model.estimate(node.candidate.hash, node.fidelity) or self._next
            running.append(est - (now - node.created_at))
        return c.elapsed(), running

    def _planned_jobs(self, store: Store, model: CostModel) -> list[float]:
        """Estimated wall seconds of each evaluation the phases would still run if the search
        stopped now (finished ones excluded; an idle-lane run still going counts in full)."""
        c = self.campaign
        jobs: list[float] = []
        seen: set[str] = set()
        for phase in c.phases:
            if phase.before_search or store.get_meta(f"phase:{phase.name}") is not None:
                continue
            for want, cand, _seed, node_id, _options in c.phase_todo(store, phase.planned(c)):
                if node_id in seen:
                    continue
                seen.add(node_id)
                if (est := model.estimate(cand.hash, want.fidelity)) is not None:
                    jobs.append(est)
        return jobs


def deadline_stop(store: Store) -> dict[str, Any] | None:
    """The plan that stopped a search at its deadline (the ``budget_exhausted`` event's), or None."""
    for e in reversed(store.events("budget_exhausted")):
        if e["payload"].get("budget") == DEADLINE and "plan_s" in e["payload"]:
            return e["payload"]
    return None


def deadline_line(store: Store) -> str | None:
    """One line on a search the deadline stopped: when, and why."""
    p = deadline_stop(store)
    if p is None:
        return None
    return (f"the deadline stopped the search at {p['elapsed_s']:.0f} s: one more search evaluation "
            f"(~{p['next_search_s']:.0f} s) and the phases' {p['phase_evaluations']} evaluations "
            f"({p['phase_work_s']:.0f} s of work on {p.get('workers', '?')} workers) would have ended at "
            f"{p['elapsed_s'] + p['plan_s']:.0f} s, past deadline_s {p['deadline_s']:.0f}")
