"""The campaign engine: agents propose, executors evaluate, the store remembers.

Every state change is committed to the store before it is acted on: a node is
written ``pending`` before it is submitted, its result is written before the
scaffold sees it. A campaign killed at any instant resumes from the store:
finished nodes are kept, unfinished ones are evaluated again, scaffolds replay
their history.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import os
import platform
import random
import re
import sys
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cambrian.core.components import (REEVALUATE_ROLES, Domain, Executor, LLMBackend, LLMResponse, Operator,
                                      OperatorContext, Phase, PhaseEvaluations, Proposal, Scaffold, SearchView)
from cambrian.core.config import (AgentConfig, CampaignConfig, ComponentRef, check_components, load_config,
                                  parse_config, split_approvals)
from cambrian.core.errors import AgentStop, CambrianError, ConfigError, StoreError
from cambrian.core.plugins import PluginManager, get_plugin_manager
from cambrian.core.records import (Candidate, Cost, Direction, EvalJob, EvalOutcome, Insight, Node, NodeStatus,
                                   canonical_json, rank_insights)
from cambrian.campaign.deadline import DEADLINE, Deadline, measured_costs
from cambrian.campaign.idle_lane import IdleLane
from cambrian.campaign.rundir import LOCK_FILE, RunDirLock, new_run_dir
from cambrian.campaign.standings import standings
from cambrian.core.store import Store
from cambrian.campaign.supervisor import Supervisor
from cambrian.core.version import code_version, package_version

MAX_IDLE_STEPS = 25  # proposals in a row that yield no new candidate before an agent stops
# Budgets whose running evaluations are stopped when they run out (their use grows while an
# evaluation runs); at the others (nodes, LLM tokens and cost) running evaluations finish.
HARD_STOPS = ("wall_s", "eval_flops", "eval_gpu_s")
_LLM_FIELDS = ("llm_prompt_tokens", "llm_completion_tokens", "llm_cost_usd")
AWAITING_APPROVAL = "awaiting_approval"  # the run's status while a costly phase waits for a person
MAX_INSIGHT_CHARS = 600  # an insight is a short lesson, not a report
_NODE_ID = re.compile(r"\b[0-9a-f]{12}\b")  # node ids an insight cites as evidence


PROMOTION = "promotion "  # the approval key of a gated promotion: "promotion <hash> to <fidelity>"


def promotion_key(candidate_hash: str, fidelity: float) -> str:
    return f"{PROMOTION}{candidate_hash} to {float(fidelity)!r}"


def parse_promotion_key(key: str) -> tuple[str, float]:
    """(candidate hash, fidelity) of a promotion's approval key."""
    _, h, _, f = key.split(" ")
    return h, float(f)


def _insight_line(i: Insight) -> str:
    evidence = f" (evidence: {', '.join(i.evidence)})" if i.evidence else ""
    return f"[{i.agent}] {i.text}{evidence}"


def _phase_node_id(phase: str, cand_hash: str, split: str, seed: int, options: dict[str, Any],
                   fidelity: float) -> str:
    """The id of a phase's evaluation: the same job always gets the same id (resume, reuse)."""
    key = f"{phase}:{cand_hash}:{split}:{seed}:{canonical_json(options)}"
    if float(fidelity) != 1.0:  # ids of full-budget evaluations stay as they were
        key += f":{float(fidelity)!r}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _rng(*parts: Any) -> random.Random:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


class MeteredLLM(LLMBackend):
    """Wraps an agent's backend: logs every call's tokens and cost to the store."""

    name = "metered"

    def __init__(self, inner: LLMBackend, store: Store, agent: str) -> None:
        super().__init__()
        self.inner, self.store, self.agent = inner, store, agent
        self.operator = "?"
        self.cost = Cost()

    def complete(self, messages: list[dict[str, str]], **kwargs: Any) -> LLMResponse:
        try:
            r = self.inner.complete(messages, **kwargs)
        except Exception as exc:
            self.store.log_llm_call(self.agent, self.operator, getattr(self.inner, "model", "?"),
                                    0, 0, 0.0, False, f"{type(exc).__name__}: {exc}"[:500])
            raise
        self.store.log_llm_call(self.agent, self.operator, r.model or getattr(self.inner, "model", "?"),
                                r.prompt_tokens, r.completion_tokens, r.cost_usd, True)
        self.cost = self.cost + Cost(llm_prompt_tokens=r.prompt_tokens,
                                     llm_completion_tokens=r.completion_tokens, llm_cost_usd=r.cost_usd)
        return r


@dataclass
class Agent:
    config: AgentConfig
    scaffold: Scaffold
    operators: dict[str, list[Operator]]  # by role
    llm: MeteredLLM | None
    in_flight: set[str] = field(default_factory=set)
    idle_steps: int = 0
    waiting: bool = False  # its scaffold waits for its running evaluations
    stopped: str | None = None  # why this agent stopped proposing

    @property
    def name(self) -> str:
        return self.config.name


@dataclass
class CampaignResult:
    run_dir: Path
    reason: str
    best: Node | None
    counts: dict[str, int]
    # agent -> why it could not go on (AgentStop: rejected key, unknown model, dead host)
    agent_errors: dict[str, str] = field(default_factory=dict)
    agent_names: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        """Every agent stopped on an error that no retry fixes: the campaign did not search."""
        return bool(self.agent_errors) and set(self.agent_errors) >= set(self.agent_names)


class Campaign:
    """A search campaign over one domain. ``Campaign.from_config(path).run()``."""

    def __init__(self, config: CampaignConfig, run_dir: str | Path, *,
                 pm: PluginManager | None = None) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.pm = pm or get_plugin_manager()
        check_components(config, self.pm)  # names and typed options, before anything is built
        self.domain: Domain = self.build("domain", config.domain.name, config.domain.options, "domain")
        self.evaluator = config.evaluator or ComponentRef(name=self.domain.default_evaluator)
        self.pm.get("evaluator", self.evaluator.name)  # fail early on an unknown name
        self.objective = self.domain.objective
        self._space = self.domain.search_space()  # what model-based scaffolds search
        self.agents = [self._make_agent(i, a) for i, a in enumerate(config.agents)]
        self._agents = {a.name: a for a in self.agents}
        self.store: Store | None = None
        self.futures: dict[Future[EvalOutcome], str] = {}
        # A write-through mirror of this campaign's search nodes: the store is written
        # first, then the mirror, so hot paths never re-read and re-parse the whole store.
        self.nodes: dict[str, Node] = {}
        self._hashes: set[str] = set()
        self._cost: dict[str | None, Cost] = {}
        self.listeners: list[Callable[[Campaign], None]] = []  # called on updates (throttled)
        # called with every update of the graph's stream: {"kind": agent_step | allocation_changed |
        # insight_added | phase_started | approval_needed, ...}
        self.subscribers: list[Callable[[Campaign, dict[str, Any]], None]] = []
        self.last_update: dict[str, Any] | None = None
        self.made_progress = False  # the current round's agent steps made a node
        self._lock = threading.RLock()
        self._last_notice = 0.0
        self.current_phase: str | None = None  # the post-search phase running now
        # elapsed() is read by live views before run() has opened the store
        self._elapsed_before, self._t0 = 0.0, time.monotonic()
        self._run_lock = RunDirLock(self.run_dir)  # one writer per run directory, while run() runs


    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: str | Path | dict | CampaignConfig, run_dir: str | Path | None = None,
                    overrides: list[str] = (), **kw: Any) -> "Campaign":
        if isinstance(config, CampaignConfig):
            cfg = config
        elif isinstance(config, dict):
            cfg = parse_config(dict(config), overrides=list(overrides))
        else:
            cfg = load_config(config, list(overrides))
        campaign = cls(cfg, run_dir or Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}", **kw)
        if Path(campaign.run_dir).exists() and not Path(campaign.run_dir).is_dir():
            raise CambrianError(f"{campaign.run_dir} is a file; a run directory must be a directory "
                                "(pick another --out)")
        campaign._new_dir = not Path(campaign.run_dir).exists()  # removed again if the run is refused
        if run_dir is None:  # a default name: a fresh folder of its own, created atomically
            campaign.run_dir = new_run_dir(campaign.run_dir)
        # The lock comes before the check, so two starts on one folder can't both pass it.
        campaign._run_lock = RunDirLock(campaign.run_dir).acquire()
        if (campaign.run_dir / Store.FILENAME).exists():
            campaign._run_lock.release()
            raise CambrianError(f"{campaign.run_dir} already holds a campaign; "
                                f"use `cambrian resume {campaign.run_dir}`")
        return campaign

    @classmethod
    def resume(cls, run_dir: str | Path, *, lock: bool = True, **kw: Any) -> "Campaign":
        """The campaign stored in ``run_dir``; ``lock=False`` for readers (show, report), which
        may look while another process runs it (``run()`` still takes the lock)."""
        run_lock = RunDirLock(run_dir)
        if lock and (Path(run_dir) / Store.FILENAME).exists():
            run_lock.acquire()  # fail at once if another run or resume holds it
        try:
            campaign = cls._resume(run_dir, **kw)
        except BaseException:
            run_lock.release()
            raise
        campaign._run_lock = run_lock
        return campaign

    @classmethod
    def _resume(cls, run_dir: str | Path, **kw: Any) -> "Campaign":
        store = Store(run_dir, create=False)
        raw = store.get_meta("config")
        store.close()
        if raw is None:
            raise CambrianError(f"{run_dir} has a store but no campaign config; it cannot be resumed")
        return cls(parse_config(raw, source=f"{run_dir} (stored config)"), run_dir, **kw)

    def build(self, kind: str, name: str, options: dict[str, Any], where: str, **extra: Any) -> Any:
        """Instantiate a component; a ValueError or TypeError it raises about its options
        becomes a ConfigError naming the config key (``agents.0.scaffold.options: ...``)."""
        cls = self.pm.get(kind, name)
        try:
            return cls(**options, **extra)
        except ConfigError:
            raise
        except CambrianError as exc:  # e.g. an LLM backend without its key or cassette
            raise type(exc)(f"{where}: {exc}") from None
        except (ValueError, TypeError) as exc:
            # "field: problem" from the component names the option: where.options.field: problem
            field, sep, rest = str(exc).partition(": ")
            if sep and field in getattr(getattr(cls, "Options", None), "model_fields", {}):
                raise ConfigError(f"{where}.options.{field}: {rest}") from None
            raise ConfigError(f"{where}.options: {exc}") from None

    def _make_agent(self, i: int, cfg: AgentConfig) -> Agent:
        scaffold = self.build("scaffold", cfg.scaffold.name, cfg.scaffold.options, f"agents.{i}.scaffold")
        names = cfg.operators or list(self.domain.default_operators)
        if not names:
            raise ConfigError(f"agent {cfg.name!r} has no operators and domain "
                              f"{self.domain.name!r} names no defaults; set agents[].operators")
        operators: dict[str, list[Operator]] = {}
        for n in names:
            op = self.build("operator", n, cfg.operator_options.get(n, {}), f"agents.{i}.operator_options.{n}")
            operators.setdefault(op.role, []).append(op)
        needs_llm = [o.name for ops in operators.values() for o in ops if o.needs_llm]
        if needs_llm and cfg.llm is None:
            raise ConfigError(f"agent {cfg.name!r}: operators {', '.join(needs_llm)} need an LLM; "
                              "set agents[].llm or use structured operators")
        return Agent(cfg, scaffold, operators, None)

    # -- running ------------------------------------------------------------------------

    def open_store(self) -> Store:
        if self.store is None:
            if self.run_dir.exists() and not self.run_dir.is_dir():
                raise CambrianError(f"{self.run_dir} is a file; a run directory must be a directory")
            self.store = Store(self.run_dir / Store.FILENAME)  # a run dir named x.y stays a folder
        return self.store

    def _write_header(self, store: Store) -> None:
        if store.get_meta("config") is None:
            store.set_meta("config", self.config.model_dump(mode="json"))
            store.set_meta("header", {
                "created_at": time.time(), "seed": self.config.seed,
                "python": sys.version.split()[0], "platform": platform.platform(),
                "cpus": os.cpu_count(), "plugins": {n: v for n, v in self.pm.versions.items()},
                "torch": package_version("torch"), "cambrian": package_version("cambrian"), "code": code_version(),
            })
            store.log_event("campaign_started")
        else:
            store.log_event("campaign_resumed")

    def run(self) -> CampaignResult:
        """Run (or resume) the campaign: agents search side by side, then the phases.

        A phase marked ``approve: true`` stops the run before it starts: the result's
        reason is ``awaiting_approval`` until ``cambrian approve`` and ``resume``.
        """
        # langgraph takes about a second to import: `import cambrian` stays light without it
        from cambrian.campaign.coordinator import run_graph

        self._run_lock.acquire()
        try:
            try:
                store = self._prepare()
            except BaseException:
                self._run_lock.release()
                self._discard_refused_run_dir()
                raise
            try:
                awaiting = run_graph(self)
            finally:
                self.idle_lane.close(store, "not asked for by a phase before the run stopped")
                self.executor.shutdown()
                store.set_meta("elapsed_s", self.elapsed())
            reason = AWAITING_APPROVAL if awaiting else self._reason()
            result = self.result(reason)
            if awaiting:
                store.log_event(AWAITING_APPROVAL, phase=awaiting)
            reason = result.reason  # the result may say more (every agent failed, found on resume)
            store.log_event("campaign_end", reason=reason)
            self.pm.hook.cambrian_campaign_end(run_dir=str(self.run_dir), reason=reason,
                                               summary={"counts": result.counts,
                                                        "best": result.best.id if result.best else None})
            return result
        finally:
            self._run_lock.release()

    def _discard_refused_run_dir(self) -> None:
        """A run refused before its store existed leaves nothing: not even the folder it made."""
        if self.store is not None or not getattr(self, "_new_dir", False):
            return
        (self.run_dir / LOCK_FILE).unlink(missing_ok=True)
        try:
            self.run_dir.rmdir()  # only when empty: nothing else is ever deleted
        except OSError:
            pass

    def _prepare(self) -> Store:
        """Open the store, mirror it, and replay finished nodes into the scaffolds."""
        # Everything that can refuse the config is built before the store is created:
        # a refused run writes nothing, so the fixed re-run is not refused as a resume.
        llms = {a.name: self.build("llm", a.config.llm.name, a.config.llm.options, f"agents.{i}.llm")
                for i, a in enumerate(self.agents) if a.config.llm is not None}
        self.executor = self.build("executor", self.config.executor.name, self.config.executor.options,
                                   "executor", worker_preload=self.domain.preload)
        try:
            store = self.open_store()
            self._write_header(store)
        except BaseException:
            self.executor.shutdown()
            raise
        for agent in self.agents:
            if agent.name in llms:
                agent.llm = MeteredLLM(llms[agent.name], store, agent.name)
        self.pm.hook.cambrian_campaign_start(run_dir=str(self.run_dir),
                                             config=self.config.model_dump(mode="json"))
        self._elapsed_before = float(store.get_meta("elapsed_s", 0.0))
        self.nodes, self._hashes, self._cost, self._counts = {}, set(), {}, {}
        self._evals: set[tuple[str, float, int]] = set()  # (candidate hash, fidelity, seed) evaluated
        # valid nodes, best first: highest fidelity first, then by score
        self._board: list[tuple[float, float, float, str]] = []
        for node in store.nodes(phase="search"):
            self._remember(node, node.cost)
        self._llm: dict[str | None, Cost] = {}  # every LLM call, also those that made no node
        self._cancelling: set[str] = set()
        self._stop: str | None = None  # the campaign budget that ran out, if any
        for call in store.llm_calls():
            self._spend_llm(call["agent"], Cost(llm_prompt_tokens=call["prompt_tokens"],
                                                llm_completion_tokens=call["completion_tokens"],
                                                llm_cost_usd=call["cost_usd"]))
        self._t0 = time.monotonic()
        self.supervisor = Supervisor(self.config.coordination, [a.name for a in self.agents], self.config.seed)
        self._best: float | None = None  # the campaign's best so far, in finishing order
        finished = [n for n in self.nodes.values() if n.status.finished and n.agent in self._agents]
        for node in finished:  # creation order, as scaffolds expect
            self._agents[node.agent].scaffold.observe(node)
        for node in sorted(finished, key=lambda n: n.updated_at):  # finishing order
            self.supervisor.observe(node.agent, self._improves(node))
        self.futures = {}
        self.idle_lane = IdleLane(self)
        self.idle_lane.recover(store)
        self.deadline = Deadline(self, self.config.budget.deadline_s, store)
        for node in [n for n in self.nodes.values() if not n.status.finished and n.agent in self._agents]:
            store.log_event("node_requeued", agent=node.agent, node_id=node.id)  # never finished: run again
            self._submit(store, self.executor, self._agents[node.agent], node)
        return store

    def _improves(self, node: Node) -> bool:
        """Whether ``node`` beats the campaign's best so far (and becomes it)."""
        value = node.score(self.objective)
        if value is None:
            return False
        sign = -1.0 if self.objective.direction == Direction.MAX else 1.0
        if self._best is None or sign * value < sign * self._best:
            self._best = value
            return True
        return False

    @property
    def phases(self) -> list[Phase]:
        if not hasattr(self, "_phases"):
            options, self.approvals_needed = split_approvals(self.config.phases)
            self._phases = self.domain.phases(options)
            names = {p.name for p in self._phases}
            unknown = self.approvals_needed - names
            if unknown:
                raise ConfigError(f"phases.{sorted(unknown)[0]}.approve: no such phase in domain "
                                  f"{self.domain.name!r} (phases: {', '.join(sorted(names)) or 'none'})")
        return self._phases

    def approval_request(self, name: str) -> dict[str, Any]:
        """What a person is asked before phase ``name``: the phase and its estimated cost."""
        phase = next(p for p in self.phases if p.name == name)
        cost = phase.estimate(self)
        self.open_store().log_event("approval_needed", phase=name, cost=cost)
        return {"phase": name, "cost": cost}

    def estimate_evaluations(self, n: int) -> dict[str, float]:
        """Estimated FLOPs and wall time of ``n`` more evaluations like the search's finished ones."""
        done = [x.cost for x in self.nodes.values() if x.status.finished]
        if not done or n <= 0:
            return {}
        wall = sum(c.wall_s for c in done) / len(done)
        flops = sum(c.flops for c in done) / len(done)
        out = {"est_s": round(n * wall / max(1, self.executor.workers), 1)}
        if flops:
            out["flops"] = n * flops
        return out

    def skip_phase(self, name: str, reason: str) -> None:
        store = self.open_store()
        if store.get_meta(f"phase:{name}") is None:
            store.set_meta(f"phase:{name}", {"skipped": reason})
            store.log_event("phase_skipped", phase=name, reason=reason)

    def run_phase(self, name: str) -> None:
        """Run one post-search phase unless the store says it already finished."""
        store = self.open_store()
        phase = next(p for p in self.phases if p.name == name)
        key = f"phase:{name}"
        if store.get_meta(key) is not None:
            return
        self.current_phase = name
        store.log_event("phase_started", phase=name)
        self._notify_listeners(force=True)
        store.set_meta(key, phase.run(self))
        store.log_event("phase_done", phase=name)
        self.current_phase = None
        self._notify_listeners(force=True)

    def _reason(self) -> str:
        if self._stop is None:  # a run resumed after its search (at a phase) never checked
            self._stop = self._budget_stop(self.open_store(), plan=False)
        if self._stop is not None:
            return self._stop
        stopped = {a.stopped for a in self.agents}
        if len(stopped) == 1:
            return stopped.pop() or "complete"
        return "all agents stopped: " + "; ".join(f"{a.name}: {a.stopped}" for a in self.agents)

    def evaluate(self, candidates: list[Candidate], *, phase: str, split: str = "val",
                 seeds: tuple[int, ...] = (0,), evaluator_options: dict[str, Any] | None = None,
                 agent: str = "campaign", fidelity: float = 1.0) -> list[Node]:
        """Evaluate candidates outside search (a phase), each under every seed; block until done.

        Node ids are derived from (phase, candidate, split, seed, evaluator options, fidelity), so
        calling this again after a crash reuses finished nodes and re-runs only the rest, and
        nodes the idle lane finished during the search (:meth:`Phase.ahead`) are taken as they
        are; those it still runs are followed (given a core: fewer jobs start beside them), and
        one it did not finish cleanly runs again here.
        Returns the nodes in input order (candidate-major, then seed).
        """
        want = PhaseEvaluations(tuple(candidates), phase, split, tuple(seeds), evaluator_options, agent,
                                float(fidelity))
        store, executor = self.open_store(), self.executor
        wanted: list[Node] = []
        queue: list[tuple[Node, dict[str, Any]]] = []
        options_of: dict[str, dict[str, Any]] = {}
        lane_ids = set(self.idle_lane.running.values())
        for cand, seed, node_id, options in self.phase_targets(want):
            node = self.phase_node(store, want, cand, seed, node_id)
            wanted.append(node)
            options_of[node_id] = options
            if (node.status.finished and node.status != NodeStatus.CANCELLED) or node_id in lane_ids:
                continue
            queue.append((node, options))
        # longest first (as measured in this run; unmeasured first of all): the phase's last
        # evaluations are then short ones, and no worker idles long beside the last
        costs = measured_costs(store)
        queue.sort(key=lambda q: -(costs.estimate(q[0].candidate.hash, q[0].fidelity) or math.inf))
        follow = self.idle_lane.following({n.id for n in wanted})
        running: dict[Future[EvalOutcome], str] = {}
        while queue or running or follow:
            # beside followed lane evaluations, only as many as leave each of them a core
            room = len(queue) if not follow else max(0, executor.workers - len(follow) - len(running))
            for node, options in queue[:room]:
                store.set_status(node.id, NodeStatus.RUNNING)
                running[executor.submit(self.phase_job(node, options))] = node.id
            queue = queue[room:]
            done, _ = wait([*running, *follow], return_when=FIRST_COMPLETED)
            for fut in done:
                if fut in running:
                    running.pop(fut)
                    self.node_evaluated(store.record_outcome(fut.result()))
                else:
                    node_id = follow.pop(fut)
                    if not self.idle_lane.take(store, fut):  # not clean: run it here
                        queue.append((store.node(node_id), options_of[node_id]))
        return [store.node(n.id) for n in wanted]

    def phase_targets(self, want: PhaseEvaluations) -> list[tuple[Candidate, int, str, dict[str, Any]]]:
        """(candidate, seed, node id, evaluator options) of every evaluation ``want`` asks for."""
        options = {**self.evaluator.options, **(want.evaluator_options or {})}
        return [(cand, seed, _phase_node_id(want.phase, cand.hash, want.split, seed, options, want.fidelity),
                 options) for cand in want.candidates for seed in want.seeds]

    def phase_todo(self, store: Store, wants: list[PhaseEvaluations]):
        """(request, candidate, seed, node id, evaluator options) of the evaluations ``wants``
        asks for that have no clean result yet (no node, unfinished, or cancelled)."""
        for want in wants:
            for cand, seed, node_id, options in self.phase_targets(want):
                try:
                    status = store.node(node_id).status
                except StoreError:  # not in the store yet
                    status = None
                if status is None or not status.finished or status == NodeStatus.CANCELLED:
                    yield want, cand, seed, node_id, options

    def phase_node(self, store: Store, want: PhaseEvaluations, cand: Candidate, seed: int, node_id: str,
                   create: bool = True) -> Node:
        """The phase's node for this evaluation: from the store, else a new one (written there if ``create``)."""
        try:
            return store.node(node_id)
        except StoreError:
            node = Node(id=node_id, agent=want.agent, operator=want.phase, candidate=cand, split=want.split,
                        seed=seed, phase=want.phase, fidelity=float(want.fidelity))
            if create:
                store.add_node(node)
            return node

    def phase_job(self, node: Node, options: dict[str, Any]) -> EvalJob:
        return self.make_job(node, split=node.split, seed=node.seed).model_copy(
            update={"evaluator_options": options})

    def node_evaluated(self, node: Node) -> None:
        """A phase's (or the idle lane's) evaluation was recorded: plugins and live views hear of it."""
        self.pm.hook.cambrian_node_evaluated(run_dir=str(self.run_dir), node=node)
        self._notify_listeners()

    def elapsed(self) -> float:
        return self._elapsed_before + (time.monotonic() - self._t0)

    def _remember(self, node: Node, added_cost: Cost = Cost()) -> Node:
        """Mirror a node already written to the store; ``added_cost`` is new spending."""
        if node.id not in self.nodes:
            self._counts[node.agent] = self._counts.get(node.agent, 0) + 1
        old = self.nodes.get(node.id)
        if (value := node.score(self.objective)) is not None and (old is None or not old.status.finished):
            sign = -1.0 if self.objective.direction == Direction.MAX else 1.0
            bisect.insort(self._board, (-node.fidelity, sign * value, node.created_at, node.id))
        self.nodes[node.id] = node
        self._hashes.add(node.candidate.hash)
        self._evals.add((node.candidate.hash, float(node.fidelity), node.seed))
        for key in (None, node.agent):
            self._cost[key] = self._cost.get(key, Cost()) + added_cost
        return node

    def top(self, k: int) -> list[Node]:
        """The k best valid search nodes, highest fidelity first (kept sorted as results arrive)."""
        with self._lock:
            return [self.nodes[row[-1]] for row in self._board[:k]]

    def count(self, agent: str | None = None) -> int:
        return len(self.nodes) if agent is None else self._counts.get(agent, 0)

    def spent(self, agent: str | None = None) -> Cost:
        return self._cost.get(agent, Cost())

    def _spend_llm(self, agent: str, cost: Cost) -> None:
        for key in (None, agent):
            self._llm[key] = self._llm.get(key, Cost()) + cost

    def usage(self, agent: str | None = None) -> Cost:
        """What counts against a budget: node costs, and LLM use from every call made.

        LLM calls of steps that produced no node (failed, duplicate, analyze) are
        in the store's llm_calls table but on no node, so LLM fields come from there.
        """
        nodes, calls = self.spent(agent), self._llm.get(agent, Cost())
        return nodes.model_copy(update={f: max(getattr(nodes, f), getattr(calls, f)) for f in _LLM_FIELDS})

    def _budget_stop(self, store: Store, plan: bool = True) -> str | None:
        """The campaign budget that ran out; the deadline's plan is made only while searching
        (``plan``; after the search only a deadline already reached counts)."""
        used = self.config.budget.exhausted(self.count(), self.elapsed(), self.usage())
        if used is None and (self.deadline.due(store) if plan else self.deadline.reached):
            return DEADLINE
        return used

    def _agent_budget(self, store: Store, executor: Executor, agent: Agent) -> str | None:
        """Stop ``agent`` at its own budget (and its running evaluations at a hard one)."""
        used = agent.config.budget.exhausted(self.count(agent.name), self.elapsed(), self.usage(agent.name))
        if used is not None and not agent.stopped:
            agent.stopped = f"{used} (agent {agent.name})"
            store.log_event("agent_stopped", agent=agent.name, reason=agent.stopped, budget=used)
        if used in HARD_STOPS:
            self._cancel(store, executor, agent.in_flight, used)
        return used

    def _cancel(self, store: Store, executor: Executor, node_ids: Any, budget: str) -> None:
        for node_id in sorted(set(node_ids) - self._cancelling):
            self._cancelling.add(node_id)
            store.log_event("evaluation_cancelled", node_id=node_id, budget=budget)
            executor.cancel(node_id)

    def _wait_s(self) -> float:
        """How long to wait for results: short enough to stop evaluations at a wall-clock limit."""
        limits = [b.wall_s for b in [self.config.budget, *(a.config.budget for a in self.agents)]
                  if b.wall_s is not None]
        left = min(limits, default=math.inf) - self.elapsed()
        return min(0.5, max(0.01, left))

    # -- graph steps (called by cambrian.campaign.coordinator) -------------------------------

    def supervise(self, round_no: int, slots: dict[str, int],
                  paused: dict[str, str]) -> tuple[dict[str, int], dict[str, str]]:
        """The supervisor step: budgets, pauses, and this round's slot grants."""
        store, executor = self.open_store(), self.executor
        with self._lock:
            stop = self._budget_stop(store)
            if stop is not None and self._stop is None:
                self._stop = stop
                store.log_event("budget_exhausted", budget=stop,
                                **((self.deadline.last_plan or {}) if stop == DEADLINE else {}))
            if stop in HARD_STOPS:  # running evaluations are stopped at the limit
                self._cancel(store, executor, self.futures.values(), stop)
            for agent in self.agents:
                self._agent_budget(store, executor, agent)
            self.idle_lane.collect(store)
            if stop is None:  # work phases know ahead, in CPU time the search leaves idle
                self.idle_lane.feed(store)
            active = [a.name for a in self.agents if not a.stopped]
            now_paused = self.supervisor.paused(active) if stop is None else {}
            for name in sorted(set(now_paused) - set(paused)):
                store.log_event("agent_paused", agent=name, reason=now_paused[name])
            for name in sorted(set(paused) - set(now_paused)):
                store.log_event("agent_unpaused", agent=name)
            grants: dict[str, int] = {}
            free = max(1, executor.workers) - len(self.futures)
            if stop is None and free > 0:
                eligible = {a.name: a.config.max_in_flight - len(a.in_flight) for a in self.agents
                            if not a.stopped and not a.waiting and a.name not in now_paused
                            and self._room_for_node(a)}
                counts = {a.name: self.count(a.name) for a in self.agents}
                for name, reason in self.supervisor.allocate(free, eligible, counts, round_no):
                    grants[name] = grants.get(name, 0) + 1
                    store.log_event("allocation", agent=name, reason=reason, round=round_no)
        self.made_progress = False
        return grants, now_paused

    def search_over(self) -> bool:
        """No evaluation running, and the campaign's budget or every agent has stopped."""
        with self._lock:
            return not self.futures and (self._stop is not None or all(a.stopped for a in self.agents))

    def agent_step(self, name: str, steps: int, insights: list[Insight],
                   approvals: dict[str, str] | None = None) -> tuple[list[Insight], dict[str, dict]]:
        """An agent's step: up to ``steps`` proposals, each observe -> propose -> submit.

        Returns the insights it wrote and the approvals it asks for (a gated promotion
        without a decision in ``approvals``: key -> request); the agent then waits.
        """
        store, executor = self.open_store(), self.executor
        agent = self._agents[name]
        new: list[Insight] = []
        requests: dict[str, dict] = {}
        for _ in range(steps):
            if agent.stopped or self._agent_budget(store, executor, agent) is not None:
                break
            made, notes = self._step(store, executor, agent, self.count(agent.name), insights + new,
                                     approvals or {}, requests)
            new.extend(notes)
            if not made:
                break
        return new, requests

    def promotion_request(self, agent: str, parent: Node, fidelity: float) -> dict[str, Any]:
        """What a person is asked before a gated promotion: the candidate, the rung and its cost.

        The cost is scaled from the parent's measured evaluation by the fidelity ratio (the
        domain's budget is a multiple of its configured one); params and training tokens
        where the domain reports them as metrics.
        """
        ratio = float(fidelity) / float(parent.fidelity)
        cost: dict[str, Any] = {"evaluations": 1}
        if "params" in parent.metrics:
            cost["params"] = parent.metrics["params"].value
        for name in ("train_tokens", "tokens"):
            if name in parent.metrics:
                cost["tokens"] = parent.metrics[name].value * ratio
                break
        if parent.cost.flops:
            cost["flops"] = parent.cost.flops * ratio
        if parent.cost.wall_s:
            cost["est_s"] = round(parent.cost.wall_s * ratio, 1)
        return {"promotion": promotion_key(parent.candidate.hash, fidelity), "agent": agent, "node": parent.id,
                "from_fidelity": parent.fidelity, "fidelity": float(fidelity), "cost": cost}

    def drain(self) -> None:
        """Record every running evaluation (a run that stops for a person leaves nothing running)."""
        while self.futures and not self._hard_stop_due():
            self.record(block=True)

    def record(self, block: bool) -> int:
        """The record step: write finished evaluations to the store (waiting for one if ``block``)."""
        store = self.open_store()
        with self._lock:
            futures = list(self.futures)
        if not futures:
            return 0
        done = {f for f in futures if f.done()}
        while block and not done:
            lane = list(self.idle_lane.running)
            ready, _ = wait([*futures, *lane], timeout=self._wait_s(), return_when=FIRST_COMPLETED)
            done = ready & set(futures)
            self._notify_listeners()
            if self._hard_stop_due() or ready - done:
                break  # the supervisor stops the running evaluations, or refills the idle lane
        for fut in done:
            self._finish(store, fut)
        if done:
            self._notify_listeners()
        return len(done)

    def _hard_stop_due(self) -> bool:
        """A hard budget ran out for an evaluation that is not being cancelled yet."""
        with self._lock:
            running = set(self.futures.values()) - self._cancelling
            if not running:
                return False
            if self._budget_stop(self.open_store(), plan=False) in HARD_STOPS:  # the deadline is no hard stop
                return True
            return any(a.config.budget.exhausted(self.count(a.name), self.elapsed(), self.usage(a.name))
                       in HARD_STOPS for a in self.agents if a.in_flight & running)

    def publish(self, update: dict[str, Any]) -> None:
        """One update from the graph's stream, handed to every listener."""
        self.last_update = update
        self._notify_listeners(force=update.get("kind") != "agent_step", update=update)

    def _notify_listeners(self, force: bool = False, update: dict[str, Any] | None = None) -> None:
        now = time.monotonic()
        with self._lock:
            if update is not None:  # subscribers see every update of the stream
                for subscriber in self.subscribers:
                    subscriber(self, update)
            if not force and now - self._last_notice < 0.25:
                return
            self._last_notice = now
            self.open_store().set_meta("elapsed_s", self.elapsed())
            for listener in self.listeners:
                listener(self)

    def _step(self, store: Store, executor: Executor, agent: Agent, own: int, insights: list[Insight],
              approvals: dict[str, str] | None = None,
              requests: dict[str, dict] | None = None) -> tuple[bool, list[Insight]]:
        """One proposal; returns whether it made a node, and the insights it wrote.

        A gated promotion (``Proposal.approve``) without a decision in ``approvals`` goes
        into ``requests`` instead of being evaluated, and the agent waits for the decision.
        """
        approvals = approvals or {}
        rng = _rng(self.config.seed, agent.name, own, agent.idle_steps)
        with self._lock:
            nodes = [n for n in self.nodes.values() if n.agent == agent.name]
            shared = [n for n in self.nodes.values() if n.status.finished]

        view = SearchView(agent.name, nodes, shared, self.objective, tuple(agent.operators),
                          len(agent.in_flight), rng, seed=self.config.seed,
                          budget_left=self._budget_left(store, agent), space=self._space,
                          to_params=self.domain.to_params, features=self.domain.features,
                          rejected=frozenset(parse_promotion_key(k) for k, d in approvals.items()
                                             if d == "rejected" and k.startswith(PROMOTION)))
        proposal = agent.scaffold.propose(view)
        if proposal is None:
            if not agent.in_flight:  # nothing running and nothing to propose: a dead end
                agent.stopped = agent.scaffold.why_none(view) or "scaffold has nothing to propose"
                left = {k: v for k, v in view.budget_left.items() if v is not None}
                store.log_event("agent_stopped", agent=agent.name, reason=agent.stopped, budget_left=left)
            else:  # waiting for its own evaluations: no slots until one finishes
                agent.waiting = True
            return False, []
        if proposal.role in REEVALUATE_ROLES:  # no operator: the same candidate, evaluated again
            if proposal.approve:
                pid = proposal.parents[0]
                parent = self._node(store, pid)
                key = promotion_key(parent.candidate.hash, proposal.fidelity)
                decision = approvals.get(key)
                if decision is None:  # a person decides first: the agent waits for the gate
                    if requests is not None:
                        requests[key] = self.promotion_request(agent.name, parent, proposal.fidelity)
                    agent.waiting = True
                    return False, []
                if decision == "rejected":  # a scaffold that ignores SearchView.rejected
                    store.log_event("evaluation_rejected", agent=agent.name, node_id=pid, promotion=key)
                    agent.idle_steps += 1
                    return False, []
            with self._lock:
                created = self._reevaluate(store, executor, agent, proposal)
            self._progress(store, agent, created, "evaluations")
            return created, []
        ops = agent.operators.get(proposal.role)
        if not ops:
            raise CambrianError(f"scaffold {agent.scaffold.name!r} asked for a {proposal.role!r} "
                                f"operator, which agent {agent.name!r} does not have")
        op = ops[0] if len(ops) == 1 else rng.choice(ops)
        parents = [self._node(store, pid) for pid in proposal.parents]
        if agent.llm is not None:
            agent.llm.operator, agent.llm.cost = op.name, Cost()
        board = rank_insights(insights, self.config.coordination.max_insights)
        ctx = OperatorContext(
            domain=self.domain, parents=parents, rng=rng, objective=self.objective,
            leaderboard=self.top(10), notes=[_insight_line(i) for i in board], insights=board,
            budget_left=self._budget_left(store, agent), llm=agent.llm,
            persona=agent.config.persona, options=proposal.options, shared=shared,
            run_dir=self.run_dir, llm_left=self._llm_left(agent),
        )
        try:
            candidates = op.apply(ctx)
        except AgentStop as exc:  # nothing this agent does next can succeed: stop it, loudly
            agent.stopped = f"error: {exc}"
            store.log_event("agent_stopped", agent=agent.name, operator=op.name, reason=agent.stopped,
                            error=str(exc)[:1000])
            return False, []
        except Exception as exc:  # an operator (or LLM) failure fails this step only
            store.log_event("operator_failed", agent=agent.name, operator=op.name,
                            error=f"{type(exc).__name__}: {exc}"[:1000])
            candidates = []
        new = [self._insight(agent.name, text, parents) for text in ctx.new_notes]
        new += [i.model_copy(update={"agent": agent.name, "text": i.text[:MAX_INSIGHT_CHARS]})
                for i in ctx.new_insights]
        step_cost = agent.llm.cost if agent.llm is not None else Cost()
        with self._lock:
            created = self._add_candidates(store, executor, agent, op, proposal.parents, candidates,
                                           step_cost, fidelity=proposal.fidelity, seed=proposal.seed)
        if created == 0 and step_cost.llm_tokens:
            store.log_event("llm_step_without_candidate", agent=agent.name, tokens=step_cost.llm_tokens)
        self._progress(store, agent, created > 0, "candidates", wrote=bool(new))
        return created > 0 or bool(new), new

    def _progress(self, store: Store, agent: Agent, created: bool, what: str, wrote: bool = False) -> None:
        """Count a step that made nothing new; an agent stalled that long stops."""
        agent.idle_steps = 0 if created or wrote else agent.idle_steps + 1
        if agent.idle_steps >= MAX_IDLE_STEPS:
            agent.stopped = "stalled"
            store.log_event("agent_stopped", agent=agent.name, reason=f"stalled: no new {what}")
        if created:
            self.made_progress = True

    def _node(self, store: Store, node_id: str) -> Node:
        """A node from the mirror, else from the store (a phase's node)."""
        return self.nodes[node_id] if node_id in self.nodes else store.node(node_id)

    def _insight(self, agent: str, text: str, parents: list[Node]) -> Insight:
        """An analyze step's note as an insight; its evidence: the parents and node ids it cites."""
        cited = [m for m in _NODE_ID.findall(text) if m in self.nodes]
        evidence = tuple(dict.fromkeys([*(p.id for p in parents), *cited]))
        return Insight(text=text.strip()[:MAX_INSIGHT_CHARS], agent=agent, evidence=evidence)

    def _add_candidates(self, store: Store, executor: Executor, agent: Agent, op: Operator,
                        parents: tuple[str, ...], candidates: list[Candidate], step_cost: Cost,
                        fidelity: float = 1.0, seed: int | None = None) -> int:
        """Validate, deduplicate, write and submit an operator's candidates (under the lock)."""
        self._spend_llm(agent.name, step_cost)
        created = 0
        for cand in candidates:

            if not self._room_for_node(agent):  # an operator may return several candidates
                store.log_event("candidate_dropped", agent=agent.name, reason="node budget reached")
                break
            try:
                cand = self.domain.validate(cand)
            except ValueError as exc:
                store.log_event("candidate_rejected", agent=agent.name, reason=str(exc)[:1000])
                continue
            if cand.hash in self._hashes:
                store.log_event("candidate_duplicate", agent=agent.name, hash=cand.hash)
                continue
            node = Node(id=uuid.uuid4().hex[:12], agent=agent.name, operator=op.name,
                        parents=tuple(parents), candidate=cand, fidelity=float(fidelity),
                        seed=self.config.seed if seed is None else seed,
                        cost=step_cost if created == 0 else Cost())
            store.add_node(node)
            self._remember(node, node.cost)
            self._submit(store, executor, agent, node)
            created += 1
        return created


    def _reevaluate(self, store: Store, executor: Executor, agent: Agent, proposal: Proposal) -> bool:
        """A ``promote`` or ``reseed`` proposal: the parent's candidate as a new node (under the lock)."""
        if len(proposal.parents) != 1:
            raise CambrianError(f"scaffold {agent.scaffold.name!r}: a {proposal.role!r} proposal names "
                                f"exactly one parent, got {len(proposal.parents)}")
        pid = proposal.parents[0]
        parent = self._node(store, pid)
        seed = parent.seed if proposal.seed is None else int(proposal.seed)
        key = (parent.candidate.hash, float(proposal.fidelity), seed)
        if key in self._evals:
            store.log_event("evaluation_duplicate", agent=agent.name, node_id=pid,
                            fidelity=key[1], seed=seed)
            return False
        if not self._room_for_node(agent):
            store.log_event("candidate_dropped", agent=agent.name, reason="node budget reached")
            return False
        node = Node(id=uuid.uuid4().hex[:12], agent=agent.name, operator=proposal.role, parents=(pid,),
                    candidate=parent.candidate, seed=seed, fidelity=float(proposal.fidelity))
        store.add_node(node)
        self._remember(node)
        self._submit(store, executor, agent, node)
        return True

    def _room_for_node(self, agent: Agent) -> bool:
        limits = ((self.config.budget.max_nodes, self.count()),
                  (agent.config.budget.max_nodes, self.count(agent.name)))
        return all(limit is None or used < limit for limit, used in limits)

    def _llm_left(self, agent: Agent) -> dict[str, float | None]:
        """LLM tokens and dollars left under the agent's and the campaign's budgets."""
        out: dict[str, float | None] = {}
        for key, used in (("llm_tokens", lambda c: c.llm_tokens), ("llm_cost_usd", lambda c: c.llm_cost_usd)):
            lefts = [getattr(b, key) - used(self.usage(who)) for b, who in
                     ((agent.config.budget, agent.name), (self.config.budget, None)) if getattr(b, key) is not None]
            out[key] = min(lefts) if lefts else None
        return out

    def _budget_left(self, store: Store, agent: Agent) -> dict[str, Any]:
        b = agent.config.budget
        return {"nodes": None if b.max_nodes is None else b.max_nodes - self.count(agent.name),
                "campaign_nodes": None if self.config.budget.max_nodes is None
                else self.config.budget.max_nodes - self.count(),
                "wall_s": None if self.config.budget.wall_s is None
                else self.config.budget.wall_s - self.elapsed(),
                "deadline_nodes": self._deadline_left(store)}

    def _deadline_left(self, store: Store) -> int | None:
        with self._lock:  # agents step in parallel threads; the plan reads the running evaluations
            return self.deadline.search_left(store)

    def make_job(self, node: Node, split: str = "val", seed: int | None = None) -> EvalJob:
        return EvalJob(node_id=node.id, run_dir=str(self.run_dir.resolve()), domain=self.domain.name,
                       domain_options=self.config.domain.options, evaluator=self.evaluator.name,
                       evaluator_options=self.evaluator.options, candidate=node.candidate,
                       split=split, seed=node.seed if seed is None else seed, fidelity=node.fidelity,
                       limits=self.config.sandbox.model_dump())

    def _submit(self, store: Store, executor: Executor, agent: Agent, node: Node) -> None:
        self._remember(store.set_status(node.id, NodeStatus.RUNNING))
        same = self._same_phase_evaluation(store, node)
        if same is None:
            fut = executor.submit(self.make_job(node))
        else:  # recorded like any finished evaluation (next record step), without its cost again
            fut = Future()
            fut.set_result(EvalOutcome(node_id=node.id, status=same.status, metrics=same.metrics))
            store.log_event("evaluation_reused", agent=agent.name, node_id=node.id, source=same.id)
        self.futures[fut] = node.id
        agent.in_flight.add(node.id)

    def _same_phase_evaluation(self, store: Store, node: Node) -> Node | None:
        """A phase's finished, valid evaluation that is exactly this search node's job, if any.

        The references phase trains each reference at the campaign seed and the full budget,
        and a halving search that promotes the best reference (``promote_seeds``) asks for
        exactly that run again; training the same model on the same seed twice gives the same
        numbers on CPU, so the search takes the phase's result. "Exactly" is checked through
        the phase node's id, which is derived from (phase, candidate, split, seed, evaluator
        options, fidelity): a phase run with other evaluator options never matches.
        """
        for other in store.nodes(candidate_hash=node.candidate.hash, status=NodeStatus.DONE):
            if other.phase != "search" and other.id == _phase_node_id(
                    other.phase, node.candidate.hash, node.split, node.seed, self.evaluator.options, node.fidelity):
                return other
        return None

    def _finish(self, store: Store, fut: Future[EvalOutcome]) -> None:
        outcome = fut.result()
        with self._lock:
            node_id = self.futures.pop(fut)
            node = self._remember(store.record_outcome(outcome), outcome.cost)
            agent = self._agents[node.agent]
            agent.in_flight.discard(node_id)
            agent.waiting = False
            self.supervisor.observe(agent.name, self._improves(node))
        agent.scaffold.observe(node)  # between supersteps: no agent step runs now
        self.pm.hook.cambrian_node_evaluated(run_dir=str(self.run_dir), node=node)


    # -- reading ------------------------------------------------------------------------

    def leaderboard(self, k: int = 10) -> list[Node]:
        """The k best candidates' representative nodes (:func:`cambrian.campaign.standings.standings`)."""
        return [s.node for s in standings(self.open_store().nodes(phase="search"), self.objective)[:k]]

    def result(self, reason: str) -> CampaignResult:
        nodes = self.open_store().nodes(phase="search")
        counts: dict[str, int] = {}
        for n in nodes:
            counts[n.status.value] = counts.get(n.status.value, 0) + 1
        best = standings(nodes, self.objective)
        errors, names = self.agent_errors(), tuple(a.name for a in self.agents)
        if reason == "complete" and errors and set(errors) >= set(names):  # resumed after they failed
            reason = "every agent stopped on an error: " + "; ".join(f"{a}: {errors[a]}" for a in names)
        return CampaignResult(self.run_dir, reason, best[0].node if best else None, counts,
                              agent_errors=errors, agent_names=names)

    def agent_errors(self) -> dict[str, str]:
        """Agents stopped by an error no retry fixes (from the store, so also after a resume)."""
        return {e["agent"]: e["payload"]["error"] for e in self.open_store().events("agent_stopped")
                if e["payload"].get("error")}
