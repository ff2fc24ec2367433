"""Helpers shared by the built-in scaffolds: what a node is, read from the record alone.

Scaffold state is rebuilt from stored nodes on resume, so everything here is a
pure function of node records (parents, status, metrics): a node's role is
inferred from its parents (none = draft; one failed parent = debug; one valid
parent = improve; two = crossover), never kept aside in memory.
"""

from __future__ import annotations

from cambrian import Direction, MetricSpec, Node, NodeStatus, Proposal, SearchView

FAILED = (NodeStatus.FAILED, NodeStatus.INVALID)


def is_failed(node: Node) -> bool:
    """Evaluated and broken: a candidate a debug operator can try to fix."""
    return node.status in FAILED


def debug_depth(node: Node, by_id: dict[str, Node]) -> int:
    """How many debug steps in a row led to ``node`` (0 for a draft or an improvement)."""
    depth = 0
    while len(node.parents) == 1 and node.parents[0] in by_id and is_failed(by_id[node.parents[0]]):
        depth += 1
        node = by_id[node.parents[0]]
    return depth


def normalised(scores: dict[str, float], objective: MetricSpec, mode: str = "minmax") -> dict[str, float]:
    """Map raw objective values to [0, 1], 1 = best seen, respecting the direction.

    ``minmax`` scales linearly between the worst and best seen value; ``rank``
    uses the rank among seen values (robust to heavy tails). Ties share a value.
    """
    if not scores:
        return {}
    sign = 1.0 if objective.direction == Direction.MAX else -1.0
    signed = {k: sign * v for k, v in scores.items()}
    if mode == "rank":
        order = sorted(set(signed.values()))
        if len(order) == 1:
            return {k: 1.0 for k in signed}
        pos = {v: i / (len(order) - 1) for i, v in enumerate(order)}
        return {k: pos[v] for k, v in signed.items()}
    if mode != "minmax":
        raise ValueError(f"normalise must be 'minmax' or 'rank', got {mode!r}")
    lo, hi = min(signed.values()), max(signed.values())
    if hi == lo:
        return {k: 1.0 for k in signed}
    return {k: (v - lo) / (hi - lo) for k, v in signed.items()}


def children_of(nodes: list[Node]) -> dict[str, list[Node]]:
    """Parent id -> its children among ``nodes`` (first parent only: the node it grew from)."""
    out: dict[str, list[Node]] = {}
    for n in nodes:
        if n.parents:
            out.setdefault(n.parents[0], []).append(n)
    return out


def analyze_due(every: int, finished: int, done_upto: int | None, roles: tuple[str, ...]) -> tuple[bool, int]:
    """Whether an analyze step is due after ``finished`` results, and the new watermark.

    Analyze steps write notes, not nodes, so they leave nothing in the node
    table to rebuild from: the first call (also after a resume) starts the
    watermark at the last multiple of ``every`` already passed.
    """
    if every <= 0 or "analyze" not in roles:
        return False, done_upto or 0
    mark = (finished // every) * every
    if done_upto is None:
        return False, mark
    return (mark > done_upto and finished > 0), mark


class AnalyzeEvery:
    """The ``analyze_every`` option of a scaffold: every ``every`` finished results, an
    analyze step over the latest ``every`` of them (when the agent has an analyze operator).

    A scaffold asks first thing in ``propose``: ``if (step := self.analyze.step(view,
    self.seen)): return step``; ``seen`` holds its finished nodes by id.
    """

    def __init__(self, every: int) -> None:
        self.every = every
        self._upto: int | None = None  # the watermark (see analyze_due)

    def step(self, view: SearchView, seen: dict[str, Node]) -> Proposal | None:
        finished = [n for n in view.nodes if n.id in seen]
        due, self._upto = analyze_due(self.every, len(finished), self._upto, view.roles)
        return Proposal("analyze", tuple(n.id for n in finished[::-1][:self.every])) if due else None
