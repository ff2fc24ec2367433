"""Records that travel between components and live in the store.

All records are frozen pydantic models: they validate on the way in, serialise
to JSON for the store and for evaluation jobs, and cannot be mutated by a
plugin behind the engine's back (use ``model_copy(update=...)``).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from enum import Enum
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, Field


class Direction(str, Enum):
    MIN = "min"
    MAX = "max"


class NodeStatus(str, Enum):
    PENDING = "pending"  # written, not yet handed to an executor
    RUNNING = "running"  # handed to an executor
    DONE = "done"  # evaluated, objective finite
    INVALID = "invalid"  # evaluated, objective NaN/inf/missing
    FAILED = "failed"  # evaluation crashed, was killed, timed out, ...
    CANCELLED = "cancelled"  # stopped at a budget limit

    @property
    def finished(self) -> bool:
        return self not in (NodeStatus.PENDING, NodeStatus.RUNNING)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Metric(_Record):
    name: str
    value: float
    direction: Direction = Direction.MIN


class MetricSpec(_Record):
    """A metric a task optimises: its name and direction."""

    name: str
    direction: Direction = Direction.MIN


class Cost(_Record):
    wall_s: float = 0.0
    cpu_s: float = 0.0
    flops: float = 0.0
    gpu_s: float = 0.0
    llm_prompt_tokens: int = 0
    llm_completion_tokens: int = 0
    llm_cost_usd: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(**{k: getattr(self, k) + getattr(other, k) for k in Cost.model_fields})

    @property
    def llm_tokens(self) -> int:
        return self.llm_prompt_tokens + self.llm_completion_tokens


class Budget(_Record):
    """Hard limits; ``None`` means unlimited."""

    max_nodes: int | None = Field(None, ge=0)
    wall_s: float | None = Field(None, ge=0)
    llm_tokens: int | None = Field(None, ge=0)
    llm_cost_usd: float | None = Field(None, ge=0)
    eval_flops: float | None = Field(None, ge=0)
    eval_gpu_s: float | None = Field(None, ge=0)
    # The whole run, phases included (campaign budget only): the search stops starting work
    # when what the phases would still need (estimated from the run's own evaluations) would
    # not end in time. See cambrian.campaign.deadline.
    deadline_s: float | None = Field(None, gt=0)

    def exhausted(self, nodes: int, wall_s: float, cost: Cost) -> str | None:
        """Name of the first limit reached, or None while there is budget left."""
        checks = [
            ("max_nodes", self.max_nodes, nodes),
            ("wall_s", self.wall_s, wall_s),
            ("llm_tokens", self.llm_tokens, cost.llm_tokens),
            ("llm_cost_usd", self.llm_cost_usd, cost.llm_cost_usd),
            ("eval_flops", self.eval_flops, cost.flops),
            ("eval_gpu_s", self.eval_gpu_s, cost.gpu_s),
        ]
        for name, limit, used in checks:
            if limit is not None and used >= limit:
                return name
        return None


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


class Candidate(_Record):
    """What is searched: a spec (dict), a module or a script source (str), a vector.

    ``kind`` names the representation; ``content`` is JSON-serialisable.
    """

    kind: str
    content: Any
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def hash(self) -> str:
        """Content hash for deduplication (meta is not part of identity)."""
        payload = canonical_json({"kind": self.kind, "content": self.content})
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


class Node(_Record):
    """A candidate in the search graph, with everything known about it."""

    id: str
    agent: str
    operator: str
    parents: tuple[str, ...] = ()
    candidate: Candidate
    status: NodeStatus = NodeStatus.PENDING
    metrics: dict[str, Metric] = Field(default_factory=dict)
    cost: Cost = Field(default_factory=Cost)
    error: str | None = None
    split: str = "val"
    seed: int = 0
    # The evaluation budget as a multiple of the domain's configured one (1 = as configured):
    # multi-fidelity search screens at a fraction and re-evaluates the best at more.
    fidelity: float = 1.0
    phase: str = "search"
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    def score(self, objective: MetricSpec) -> float | None:
        """The objective's value, or None when the node is not a valid result."""
        if self.status is not NodeStatus.DONE:
            return None
        m = self.metrics.get(objective.name)
        return m.value if m is not None and math.isfinite(m.value) else None


def best_nodes(nodes: Iterable[Node], objective: MetricSpec) -> list[Node]:
    """Valid nodes sorted best first (ties: older first); invalid nodes are never ranked."""
    sign = -1.0 if objective.direction == Direction.MAX else 1.0
    scored = [(sign * v, n.created_at, i, n) for i, n in enumerate(nodes)
              if (v := n.score(objective)) is not None]
    scored.sort(key=lambda t: t[:3])
    return [t[3] for t in scored]


class EvalJob(_Record):
    """Everything an evaluation needs, serialisable so it can cross a process boundary."""

    node_id: str
    run_dir: str
    domain: str
    domain_options: dict[str, Any] = Field(default_factory=dict)
    evaluator: str
    evaluator_options: dict[str, Any] = Field(default_factory=dict)
    candidate: Candidate
    split: str = "val"
    seed: int = 0
    fidelity: float = 1.0  # a multiple of the domain's configured evaluation budget
    limits: dict[str, Any] = Field(default_factory=dict)


class EvalOutcome(_Record):
    """What comes back from an executor for one job."""

    node_id: str
    status: NodeStatus
    metrics: dict[str, Metric] = Field(default_factory=dict)
    cost: Cost = Field(default_factory=Cost)
    error: str | None = None
    artifacts: dict[str, str] = Field(default_factory=dict)


class Insight(_Record):
    """A short lesson on the shared board, with the nodes that support it."""

    text: str
    agent: str
    evidence: tuple[str, ...] = ()  # node ids
    # what it is about, for structured operators: e.g. {"primitive": "mamba2", "effect": "better"}
    about: dict[str, Any] = Field(default_factory=dict)
    created_at: float = Field(default_factory=time.time)


def rank_insights(insights: Iterable[Insight], k: int | None = None) -> list[Insight]:
    """Best-supported first, newest first among equals; at most ``k``."""
    ranked = sorted(insights, key=lambda i: (-len(i.evidence), -i.created_at))
    return ranked if k is None else ranked[:k]


class ReportSection(_Record):
    """A section of the campaign report that a plugin contributes (``cambrian_report_sections``).

    ``html`` is trusted markup, inserted as it is (embed figures as ``data:`` URIs);
    ``phases`` names the phase summaries it shows, which the report then leaves out
    of its generic per-phase JSON.
    """

    title: str
    html: str
    phases: tuple[str, ...] = ()
