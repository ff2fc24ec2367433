"""Base classes for the components plugins provide.

A component is a class with a unique ``name`` in its kind; the engine
instantiates it with the options from the campaign config. Each component
declares its options as a pydantic model, a nested class named ``Options``
(a subclass of :class:`Options`): the config is checked against it when it
loads (unknown keys, wrong types and out-of-range values fail naming the full
key path), ``cambrian plugins --options NAME`` prints it, and the instance
reads its validated options as ``self.options.<field>``.

    class MyScaffold(Scaffold):
        name = "mine"

        class Options(Options):
            n_drafts: int = Field(3, ge=0, description="drafts before improving")

A component that takes no options says so with ``Options = Options``.
"""

from __future__ import annotations

import json
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cambrian.core.errors import ConfigError, validation_message
from cambrian.core.records import Candidate, Cost, EvalJob, EvalOutcome, MetricSpec, Node

if TYPE_CHECKING:
    from pathlib import Path


class Options(BaseModel):
    """Base of every component's options model: unknown keys are errors; values are
    read-only once validated. Give fields defaults, bounds (``Field(ge=...)``) and
    a ``description``: ``cambrian plugins --options NAME`` prints them."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class UntypedOptions(Options):
    """What a component that declares no ``Options`` model gets: any key, no checks.

    Built-ins never use it (a test checks); it keeps older third-party components
    working, reading their options as attributes."""

    model_config = ConfigDict(extra="allow", frozen=True)

    def get(self, key: str, default: Any = None) -> Any:
        """``options.get(key, default)``, as older components read their options dict."""
        return getattr(self, key, default)


class Component:
    name: ClassVar[str]
    kind: ClassVar[str] = "component"  # scaffold, operator, ...: used in error messages
    Options: ClassVar[type[Options]] = UntypedOptions

    def __init__(self, **options: Any) -> None:
        self.options = self.parse_options(options)

    @classmethod
    def parse_options(cls, options: Mapping[str, Any] | None, where: str | None = None) -> Options:
        """Validate ``options`` against this component's model.

        Raises ConfigError in one line naming each bad key as ``where.key``
        (``where`` defaults to "<kind> <name> options").
        """
        try:
            return cls.Options.model_validate(dict(options or {}))
        except ValidationError as err:
            if where is not None:
                raise ConfigError(validation_message(err, where, cls.Options)) from None
            label = f"{cls.kind} {getattr(cls, 'name', cls.__name__)!r} options"
            raise ConfigError(f"{label}: {validation_message(err, '', cls.Options)}") from None

    @classmethod
    def typed_options(cls) -> bool:
        """True when the component's options model refuses unknown keys (it declares them)."""
        return cls.Options.model_config.get("extra") == "forbid"


class Domain(Component, ABC):
    """A family of problems: candidate kind, seeds, objective, evaluator, operators."""

    kind = "domain"

    candidate_kind: ClassVar[str]
    default_evaluator: ClassVar[str]
    default_operators: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    # Modules its evaluation workers import (or "module:function" to call), loaded once by an
    # executor that starts workers ahead of time (the local executor's fork server).
    preload: ClassVar[tuple[str, ...]] = ()

    @property
    @abstractmethod
    def objective(self) -> MetricSpec:
        """The metric agents optimise and its direction."""

    @abstractmethod
    def seeds(self, rng: random.Random) -> list[Candidate]:
        """Starting candidates (drafts made without an LLM)."""

    def validate(self, candidate: Candidate) -> Candidate:
        """Return a normalised candidate, or raise ValueError with a readable reason."""
        if candidate.kind != self.candidate_kind:
            raise ValueError(f"expected a {self.candidate_kind!r} candidate, got {candidate.kind!r}")
        return candidate

    def baselines(self) -> dict[str, Candidate]:
        """Named reference candidates evaluated by the same pipeline."""
        return {}

    def search_space(self) -> dict[str, dict[str, Any]]:
        """The structured space model-based scaffolds (``bo``) search, as named parameters:
        ``{"choices": [...]}`` (categorical), ``{"low": a, "high": b}`` (float) or
        ``{"low": a, "high": b, "int": True}``. Empty: the domain has no such space."""
        return {}

    def from_params(self, params: dict[str, Any]) -> Candidate:
        """The candidate a point of :meth:`search_space` stands for (validated)."""
        raise NotImplementedError(f"domain {self.name!r} has no structured search space")

    def to_params(self, candidate: Candidate) -> dict[str, Any] | None:
        """The point of :meth:`search_space` a candidate stands for, or None when it is not one
        (the inverse of :meth:`from_params`, for candidates other operators made). By default
        the point a ``space-draft`` candidate carries in its meta."""
        return candidate.meta.get("params")

    def features(self, params: dict[str, Any]) -> dict[str, float] | None:
        """A numeric description of a point of :meth:`search_space` that a model of the space
        can generalise over (the compose domain: how many layers of each primitive, wherever
        they sit), or None: a model then reads the parameters themselves."""
        return None

    def phases(self, options: dict[str, Any]) -> list["Phase"]:
        """Steps after search (aggregation, scaling, hidden evaluation), in order.

        ``options`` is the campaign config's ``phases`` mapping.
        """
        return []

    @classmethod
    def phase_classes(cls) -> "dict[str, type[Phase]] | None":
        """The phases the config's ``phases`` mapping may name, by key (None: unchecked).

        The config is checked against these when it loads; import heavy modules
        here, not at module level (plugin modules must import cheaply)."""
        return None

    @classmethod
    def check_phases(cls, options: dict[str, Any]) -> None:
        """Validate the config's ``phases`` mapping: known phase names, typed options
        (``false`` or null leaves a phase at its defaults or skips it, as the domain says)."""
        classes = cls.phase_classes()
        if classes is None:
            return
        for key, opts in options.items():
            if key not in classes:
                known = ", ".join(classes) or "none"
                raise ConfigError(f"phases.{key}: unknown phase for domain {cls.name!r} (phases: {known})")
            if isinstance(opts, bool) or opts is None:
                continue
            classes[key].parse_options(opts, f"phases.{key}")

    def inspect(self, candidate: Candidate) -> dict[str, Any]:
        """Facts about a validated candidate, known without evaluating it (parameters,
        FLOPs, ...), for agents that check a draft before submitting it. Default: none."""
        return {}

    def curve(self, run_dir: "Path", node: Node) -> list[tuple[float, float]]:
        """A finished node's training curve as (x, loss) points, where the domain keeps one."""
        return []

    def describe(self) -> str:
        """The task description given to LLM operators."""
        return self.description

    def render(self, candidate: Candidate) -> str:
        """The candidate as text for a prompt (a fenced JSON or code block)."""
        if isinstance(candidate.content, str):
            return f"```python\n{candidate.content}\n```"
        return f"```json\n{json.dumps(candidate.content, indent=1)}\n```"

    def parse(self, text: str) -> Candidate:
        """Turn an LLM reply into a candidate of this domain's kind.

        Takes the last fenced block (```json for data kinds, ```python for code
        kinds); raises ValueError with a reason the repair prompt can quote.
        """
        want_code = self.candidate_kind in CODE_KINDS
        block = last_fenced_block(text, ("python", "py", "") if want_code else ("json", ""))
        if block is None:
            lang = "```python" if want_code else "```json"
            raise ValueError(f"no {lang} fenced block found in the reply")
        if want_code:
            content: Any = block
        else:
            try:
                content = json.loads(block)
            except json.JSONDecodeError as exc:
                raise ValueError(f"the JSON block does not parse: {exc}") from None
        return self.validate(Candidate(kind=self.candidate_kind, content=content))


CODE_KINDS = ("code", "script")
_FENCE = re.compile(r"```([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)


def last_fenced_block(text: str, langs: tuple[str, ...]) -> str | None:
    """The body of the last ```lang block whose language is in ``langs`` ('' = unlabelled)."""
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]
    for lang, body in reversed(blocks):
        if lang in langs:
            return body.strip("\n")
    return None


class Evaluator(Component, ABC):
    """Turns a candidate into metrics. Runs inside an evaluation worker process."""

    kind = "evaluator"

    @abstractmethod
    def evaluate(self, job: EvalJob, workdir: "Path") -> dict[str, float] | tuple[dict[str, float], Cost]:
        """Evaluate ``job.candidate`` on ``job.split`` with ``job.seed``.

        Returns metric values (and optionally a Cost). Raise to fail the node;
        the message becomes the node's error.
        """

    def uses_gpu(self, job: EvalJob) -> bool:
        """Will this job's worker train on a GPU? Asked in the campaign process before the worker
        starts, so it must not initialise CUDA (count GPUs through NVML: see
        :func:`cambrian.scaling.device.wants_cuda`). A GPU job's worker gets no address-space
        limit: the CUDA driver maps far more virtual memory than it uses (docs/sandbox.md)."""
        return False


class Phase(Component, ABC):
    """A step after search (or before it, with ``before_search``). It must be idempotent:
    its evaluations go through :meth:`Campaign.evaluate`, which reuses finished nodes,
    so a campaign killed during a phase resumes it without repeating finished work."""

    before_search: bool = False  # True: runs before the agents start (e.g. a check of the proxy)

    kind = "phase"

    @abstractmethod
    def run(self, campaign: Any) -> dict[str, Any]:
        """Do the phase's work; return a JSON-able summary (stored as meta ``phase:<name>``)."""

    def ahead(self, campaign: Any) -> list["PhaseEvaluations"]:
        """Evaluations :meth:`run` will ask for whatever the search finds (e.g. the baselines'
        hidden seeds), asked again whenever the campaign has an idle slot during the search.
        The campaign runs them there at idle CPU priority where the executor has an idle lane
        (``Executor.submit_idle``) and :meth:`run`'s ``evaluate`` call then reuses them: same
        arguments, same node ids. A guess the search later makes wrong (a seed it came to use)
        costs only idle CPU time: ``run`` asks for other nodes. Default: none."""
        return []

    def planned(self, campaign: Any) -> list["PhaseEvaluations"]:
        """Evaluations :meth:`run` would ask for if the search stopped now (e.g. the best
        design's hidden seeds besides the baselines'): what ``budget.deadline_s`` plans the
        phases' time by (:mod:`cambrian.campaign.deadline`). Default: :meth:`ahead`."""
        return self.ahead(campaign)

    def estimate(self, campaign: Any) -> dict[str, Any]:
        """What running the phase will cost, shown when it needs a person's approval.

        Keys where known: ``evaluations``, ``params``, ``tokens``, ``flops``, ``est_s``.
        The default counts nothing; phases override it.
        """
        return {}


@dataclass(frozen=True)
class PhaseEvaluations:
    """Arguments of one ``Campaign.evaluate`` call: every candidate under every seed."""

    candidates: tuple[Candidate, ...]
    phase: str
    split: str = "val"
    seeds: tuple[int, ...] = (0,)
    evaluator_options: dict[str, Any] | None = None
    agent: str = "campaign"
    fidelity: float = 1.0


@dataclass
class Proposal:
    """A scaffold's request: apply an operator of ``role`` to ``parents`` (node ids).

    The new candidates are evaluated at ``fidelity`` (a multiple of the domain's
    configured budget) with ``seed`` (None: the campaign's seed). Two roles need no
    operator; the engine re-evaluates the single parent's candidate as a new node:
    ``promote`` (at a higher fidelity) and ``reseed`` (at another seed), see
    :data:`REEVALUATE_ROLES`. A re-evaluation that already exists is not repeated.
    A ``promote`` with ``approve`` waits for a person's decision (``cambrian approve``)
    before it is evaluated; a rejected one is never evaluated (see ``SearchView.rejected``).
    """

    role: str
    parents: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    fidelity: float = 1.0
    seed: int | None = None
    approve: bool = False


REEVALUATE_ROLES = ("promote", "reseed")


@dataclass
class SearchView:
    """What a scaffold sees when asked for its next move."""

    agent: str
    nodes: list[Node]  # this agent's nodes, oldest first
    shared: list[Node]  # every agent's finished nodes (the shared leaderboard)
    objective: MetricSpec
    roles: tuple[str, ...]  # operator roles this agent has (draft, improve, ...)
    in_flight: int  # this agent's evaluations not yet finished
    rng: random.Random
    seed: int = 0  # the campaign's seed (the seed of every evaluation not reseeded)
    budget_left: dict[str, Any] = field(default_factory=dict)  # nodes / campaign_nodes / wall_s / deadline_nodes left (None: unlimited)
    space: dict[str, dict[str, Any]] = field(default_factory=dict)  # the domain's search_space()
    # (candidate hash, fidelity) of promotions a person rejected: propose them no more
    rejected: frozenset[tuple[str, float]] = frozenset()
    # the domain's Domain.to_params: a candidate's point in ``space``, or None
    to_params: Callable[[Candidate], dict[str, Any] | None] | None = None
    # the domain's Domain.features: a point's numeric description, or None
    features: Callable[[dict[str, Any]], dict[str, float] | None] | None = None


class Scaffold(Component, ABC):
    """A search policy: which node to expand next, with which operator.

    A scaffold's state must be a function of the nodes it has seen: on resume
    the engine replays :meth:`observe` over the stored nodes, oldest first.
    """

    kind = "scaffold"

    @abstractmethod
    def propose(self, view: SearchView) -> Proposal | None:
        """Next move, or None to wait for running evaluations."""

    def why_none(self, view: SearchView) -> str | None:
        """Why :meth:`propose` just returned None, when the agent then stops (nothing of
        its own running): the agent's stop reason says it. None: "nothing to propose"."""
        return None

    def observe(self, node: Node) -> None:
        """Called for each of this agent's nodes when it finishes (and on resume)."""


@dataclass
class OperatorContext:
    domain: Domain
    parents: list[Node]
    rng: random.Random
    objective: MetricSpec
    leaderboard: list[Node]
    notes: list[str]
    budget_left: dict[str, Any]
    llm: "LLMBackend | None" = None
    persona: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    new_notes: list[str] = field(default_factory=list)  # analyze operators append here (-> insights)
    insights: list[Any] = field(default_factory=list)  # the shared board (Insight), best-supported first
    new_insights: list[Any] = field(default_factory=list)  # structured analyze operators append Insights
    shared: list[Node] = field(default_factory=list)  # every agent's finished nodes
    run_dir: "Path | None" = None  # where evaluations keep their files (curves)
    # LLM use this step may still spend under the agent's and the campaign's budgets (None: no limit)
    llm_left: dict[str, float | None] = field(default_factory=dict)
    cost: Cost = field(default_factory=Cost)  # operators add LLM usage here


ROLES = ("draft", "improve", "debug", "crossover", "analyze")


class Operator(Component, ABC):
    """Makes new candidates from context (parents, leaderboard, notes).

    ``role`` is what scaffolds ask for: draft (no parent), improve (one valid
    parent), debug (one failed parent), crossover (two parents) or analyze
    (writes a note, returns no candidate).
    """

    kind = "operator"

    role: ClassVar[str]
    needs_llm: ClassVar[bool] = False
    kinds: ClassVar[tuple[str, ...]] = ()  # candidate kinds it handles; empty = any

    @abstractmethod
    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        """Return new candidates (possibly none). Raise to fail this step only."""


@dataclass(frozen=True)
class LLMResponse:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    model: str = ""


class LLMBackend(Component, ABC):
    kind = "llm"

    @abstractmethod
    def complete(self, messages: list[dict[str, str]], **kwargs: Any) -> LLMResponse:
        """Send chat messages; return the reply with its token counts and cost."""


class ExecutorOptions(Options):
    """Every executor's options start with ``workers``."""

    workers: int = Field(1, ge=1, description="evaluations running at once")


class Executor(Component, ABC):
    """Where evaluations run. ``submit`` never blocks on the evaluation itself."""

    kind = "executor"

    Options: ClassVar[type[Options]] = ExecutorOptions  # subclasses extend it with their own

    def __init__(self, worker_preload: tuple[str, ...] = (), **options: Any) -> None:
        super().__init__(**options)
        self.workers: int = self.options.workers
        self.worker_preload = tuple(worker_preload)  # the campaign's Domain.preload, not a config option
        self.idle_workers: int = 0  # evaluations submit_idle runs at once (0: no idle lane)

    @abstractmethod
    def submit(self, job: EvalJob) -> "Future[EvalOutcome]":
        """Start evaluating ``job``; the future resolves to its outcome (never raises)."""

    def submit_idle(self, job: EvalJob) -> "Future[EvalOutcome] | None":
        """Start ``job`` beside the ``workers`` at the lowest CPU priority: work that can wait
        (a phase's evaluations known before the search ends, :meth:`Phase.ahead`) runs only
        on CPU time the other evaluations leave idle. None: not in this executor's lane (it has
        none, ``idle_workers`` 0, the default; or the job needs what idle CPU priority does not
        share, a GPU); the job then runs when its phase asks for it."""
        return None

    def cancel(self, node_id: str) -> None:
        """Stop the evaluation of ``node_id`` if it is running (best effort)."""

    def shutdown(self) -> None:
        """Stop all running evaluations and release resources."""
