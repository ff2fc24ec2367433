"""Work that can wait, run in CPU time the search leaves idle.

A search does not keep every core busy: an agent waits for its finalist before it
reseeds it, the last promotions run one after another. Some of what the phases after
the search will ask for is known before the search ends (:meth:`Phase.ahead`: the
hand-built baselines' hidden-split seeds, which do not depend on what the search finds).
The idle lane evaluates those during the search in the executor's idle lane
(:meth:`Executor.submit_idle`: beside the ``workers``, at SCHED_IDLE priority, so it
takes only CPU time nothing else wants and never delays a search evaluation), and the
phase's ``Campaign.evaluate`` finds the nodes done, or follows the ones still running.

Why here and not in the executor: which work may run early, and under which node ids, is
the campaign's knowledge (phases, seeds the search used, the store); the executor only
knows how to run a job at low priority.

Only clean results count: an idle-lane evaluation that fails, times out or is stopped is
recorded as cancelled (with the reason), never tried in the lane again, and run at normal
priority when its phase asks for it. Phases that need a person's approval are never run
early: nothing is spent before the decision.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from cambrian.core.records import EvalOutcome, NodeStatus
from cambrian.core.store import Store

if TYPE_CHECKING:
    from cambrian.campaign.engine import Campaign


class IdleLane:
    def __init__(self, campaign: "Campaign") -> None:
        self.campaign = campaign
        self.running: dict[Future[EvalOutcome], str] = {}  # future -> node id
        self._dropped: set[str] = set()  # node ids whose lane run was not clean: not retried here
        self._exhausted_at: int | None = None  # search node count when nothing was left to start

    def recover(self, store: Store) -> None:
        """After a kill: lane evaluations left unfinished are recorded as cancelled (a phase that
        asks for one runs it again; so does the lane, while the search goes on)."""
        for node_id in dict.fromkeys(e["node_id"] for e in store.events("idle_evaluation_started")):
            if not store.node(node_id).status.finished:
                store.record_outcome(EvalOutcome(node_id=node_id, status=NodeStatus.CANCELLED,
                                                 error="idle lane: the run stopped before it finished"))

    @property
    def size(self) -> int:
        return self.campaign.executor.idle_workers

    def feed(self, store: Store) -> None:
        """Start known-ahead evaluations while the lane has room (after :meth:`collect`)."""
        if self.size <= 0 or len(self.running) >= self.size:
            return
        if self._exhausted_at == self.campaign.count():  # nothing new since the last look
            return
        c = self.campaign
        for want, cand, seed, node_id, options in self._ahead(store):
            if len(self.running) >= self.size:
                return
            job = c.phase_job(c.phase_node(store, want, cand, seed, node_id, create=False), options)
            fut = c.executor.submit_idle(job)
            if fut is None:  # not for the lane (e.g. a GPU job): its phase runs it
                self._dropped.add(node_id)
                continue
            c.phase_node(store, want, cand, seed, node_id)  # in the store before its outcome is recorded
            store.set_status(node_id, NodeStatus.RUNNING)
            store.log_event("idle_evaluation_started", node_id=node_id, phase=want.phase)
            self.running[fut] = node_id
        self._exhausted_at = c.count()

    def _ahead(self, store: Store):
        """(request, candidate, seed, node id, evaluator options) of known-ahead work not yet done."""
        c = self.campaign
        busy = set(self.running.values()) | self._dropped
        for phase in c.phases:
            if phase.before_search or phase.name in c.approvals_needed or store.get_meta(f"phase:{phase.name}"):
                continue
            for item in c.phase_todo(store, phase.ahead(c)):
                if item[3] not in busy:  # item[3]: the node id
                    busy.add(item[3])
                    yield item

    def collect(self, store: Store) -> None:
        for fut in [f for f in self.running if f.done()]:
            self.take(store, fut)

    def take(self, store: Store, fut: Future[EvalOutcome]) -> bool:
        """Record a finished lane evaluation; False when it was not clean (its phase runs it again)."""
        node_id = self.running.pop(fut)
        outcome = fut.result()
        if outcome.status != NodeStatus.DONE:
            self._dropped.add(node_id)
            outcome = outcome.model_copy(update={
                "status": NodeStatus.CANCELLED,
                "error": f"idle lane: {outcome.status.value}: {outcome.error or 'no reason given'} "
                         "(run again at normal priority by its phase)"})
        node = store.record_outcome(outcome)
        self.campaign.node_evaluated(node)
        return outcome.status == NodeStatus.DONE

    def following(self, node_ids: set[str]) -> dict[Future[EvalOutcome], str]:
        """The lane's running evaluations of these nodes."""
        return {f: n for f, n in self.running.items() if n in node_ids}

    def close(self, store: Store, reason: str) -> None:
        """Stop what still runs in the lane (nothing asked for it) and record it as cancelled."""
        for node_id in self.running.values():
            self.campaign.executor.cancel(node_id)
        for fut, node_id in list(self.running.items()):
            self.running.pop(fut)
            outcome: Any = fut.result()
            store.record_outcome(outcome.model_copy(update={"status": NodeStatus.CANCELLED,
                                                            "error": f"idle lane: {reason}"}))
