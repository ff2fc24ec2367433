"""Base classes for the components plugins provide.

A component is a class with a unique ``name`` in its kind; the engine
instantiates it with the options from the campaign config. Subclasses
document their options and defaults in their docstrings.
"""

from __future__ import annotations

import json
import random
import re
from abc import ABC, abstractmethod
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from cambrian.core.records import Candidate, Cost, EvalJob, EvalOutcome, MetricSpec, Node

if TYPE_CHECKING:
    from pathlib import Path


class Component:
    name: ClassVar[str]

    def __init__(self, **options: Any) -> None:
        self.options = options


class Domain(Component, ABC):
    """A family of problems: candidate kind, seeds, objective, evaluator, operators."""

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

    def phases(self, options: dict[str, Any]) -> list["Phase"]:
        """Steps after search (aggregation, scaling, hidden evaluation), in order.

        ``options`` is the campaign config's ``phases`` mapping.
        """
        return []

    def describe(self) -> str:
        """The task description given to LLM operators."""
        return self.description

    def report_html(self, run_dir: "Path") -> str:
        """An HTML section of the domain's own for the campaign report ('' for none)."""
        return ""

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
    """A step after search. It must be idempotent: its evaluations go through
    :meth:`Campaign.evaluate`, which reuses finished nodes, so a campaign killed
    during a phase resumes it without repeating finished work."""

    @abstractmethod
    def run(self, campaign: Any) -> dict[str, Any]:
        """Do the phase's work; return a JSON-able summary (stored as meta ``phase:<name>``)."""


@dataclass
class Proposal:
    """A scaffold's request: apply an operator of ``role`` to ``parents`` (node ids)."""

    role: str
    parents: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


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


class Scaffold(Component, ABC):
    """A search policy: which node to expand next, with which operator.

    A scaffold's state must be a function of the nodes it has seen: on resume
    the engine replays :meth:`observe` over the stored nodes, oldest first.
    """

    @abstractmethod
    def propose(self, view: SearchView) -> Proposal | None:
        """Next move, or None to wait for running evaluations."""

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
    new_notes: list[str] = field(default_factory=list)  # analyze operators append here
    cost: Cost = field(default_factory=Cost)  # operators add LLM usage here


ROLES = ("draft", "improve", "debug", "crossover", "analyze")


class Operator(Component, ABC):
    """Makes new candidates from context (parents, leaderboard, notes).

    ``role`` is what scaffolds ask for: draft (no parent), improve (one valid
    parent), debug (one failed parent), crossover (two parents) or analyze
    (writes a note, returns no candidate).
    """

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
    @abstractmethod
    def complete(self, messages: list[dict[str, str]], **kwargs: Any) -> LLMResponse:
        """Send chat messages; return the reply with its token counts and cost."""


class Executor(Component, ABC):
    """Where evaluations run. ``submit`` never blocks on the evaluation itself."""

    def __init__(self, workers: int = 1, worker_preload: tuple[str, ...] = (), **options: Any) -> None:
        super().__init__(**options)
        self.workers = workers
        self.worker_preload = tuple(worker_preload)  # the campaign's Domain.preload

    @abstractmethod
    def submit(self, job: EvalJob) -> "Future[EvalOutcome]":
        """Start evaluating ``job``; the future resolves to its outcome (never raises)."""

    def cancel(self, node_id: str) -> None:
        """Stop the evaluation of ``node_id`` if it is running (best effort)."""

    def shutdown(self) -> None:
        """Stop all running evaluations and release resources."""
