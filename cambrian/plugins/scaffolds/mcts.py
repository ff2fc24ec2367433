"""The mcts scaffold: Monte-Carlo tree search with UCT over the search graph.

The tree's root is virtual; drafts are its children, and every node's children
are the nodes made from it (improve, or debug for a failed node). Each step
walks down from the root, always to the child with the highest UCT score

    Q + uct_c * sqrt(ln N_parent / N_child)

and expands the first node that still has room: the root drafts until it has
``n_drafts`` children, a valid node is improved until it has ``n_children``,
a failed node is debugged (once, up to ``max_debug_depth`` debug steps in a
row) when the agent has a debug operator. A subtree with nothing to expand is
skipped in favour of the next best child.

Values: a node's value is its objective normalised over all of this agent's
results seen so far (1 = best, 0 = worst; ``normalise`` rank or minmax), 0 for
a failed node. The backup sums visits N over the node's subtree; Q is the
subtree's best value (``backup: max``, suited to optimisation, where only the
best result counts) or its mean value (``backup: mean``, classic UCT).
Evaluations still running count as a visit of value 0 on their ancestors (a
virtual loss), so parallel proposals spread over the tree instead of
re-expanding the same parent. Because values are renormalised as results
arrive, W and N are recomputed from the results at each step: the tree is a
pure function of the stored nodes and survives a resume exactly.

Options (defaults):
  uct_c (0.25, for values in [0, 1]), n_children (3), n_drafts (5), max_debug_depth (3),
  normalise ("rank"), backup ("max"), analyze_every (0 = never).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field

from cambrian import Options, Node, NodeStatus, Proposal, Scaffold, SearchView, hookimpl
from cambrian.plugins.scaffolds.tree import (
    AnalyzeEvery,
    children_of,
    debug_depth,
    is_failed,
    normalised,
)

ROOT = ""


class MCTSScaffold(Scaffold):
    name = "mcts"

    class Options(Options):
        uct_c: float = Field(0.25, ge=0, description="UCT exploration constant")
        n_children: int = Field(3, ge=1, description="children per node before it is fully expanded")
        n_drafts: int = Field(5, ge=0, description="children of the root (drafts)")
        max_debug_depth: int = Field(3, ge=0, description="debug steps in a row on one chain")
        normalise: Literal["rank", "minmax"] = Field("rank", description="how scores become values in [0, 1]")
        backup: Literal["mean", "max"] = Field("max", description="value backed up the tree")
        analyze_every: int = Field(0, ge=0, description="an analyze step every N finished nodes (0: never)")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.options
        self.uct_c, self.n_children, self.n_drafts = o.uct_c, o.n_children, o.n_drafts
        self.max_debug_depth, self.normalise, self.backup_mode = o.max_debug_depth, o.normalise, o.backup
        self.analyze = AnalyzeEvery(o.analyze_every)
        self.seen: dict[str, Node] = {}

    def observe(self, node: Node) -> None:
        self.seen[node.id] = node

    # -- the tree -------------------------------------------------------------------------

    def backup(self, view: SearchView, virtual_loss: bool = True) -> tuple[dict[str, int], dict[str, float]]:
        """Visit counts N and value sums W per node id (ROOT for the root)."""
        by_id = {n.id: n for n in view.nodes}
        scores = {i: s for i, n in self.seen.items() if (s := n.score(view.objective)) is not None}
        value = normalised(scores, view.objective, self.normalise)
        visits: dict[str, int] = {}
        wsum: dict[str, float] = {}
        best: dict[str, float] = {}
        for n in view.nodes:  # creation order: sums come out the same on every rebuild
            if n.id in self.seen:
                if n.status == NodeStatus.CANCELLED:
                    continue  # stopped by a budget: says nothing about the candidate
                v = value.get(n.id, 0.0)
            elif virtual_loss:
                v, n = 0.0, by_id.get(n.parents[0]) if n.parents else None
                if n is None:
                    visits[ROOT] = visits.get(ROOT, 0) + 1
                    continue
            else:
                continue
            cur: Node | None = n
            while cur is not None:
                visits[cur.id] = visits.get(cur.id, 0) + 1
                wsum[cur.id] = wsum.get(cur.id, 0.0) + v
                best[cur.id] = max(best.get(cur.id, 0.0), v)
                cur = by_id.get(cur.parents[0]) if cur.parents else None
            visits[ROOT] = visits.get(ROOT, 0) + 1
            wsum[ROOT] = wsum.get(ROOT, 0.0) + v
            best[ROOT] = max(best.get(ROOT, 0.0), v)
        if self.backup_mode == "max":  # Q = best value in the subtree: W = N * max
            wsum = {k: best.get(k, 0.0) * n for k, n in visits.items()}
        return visits, wsum

    def _room(self, node: Node, kids: int, view: SearchView) -> str | None:
        """The role that would expand ``node`` now, or None when it is full or terminal."""
        if node.status == NodeStatus.DONE and node.score(view.objective) is not None:
            return "improve" if "improve" in view.roles and kids < self.n_children else None
        if is_failed(node) and "debug" in view.roles and kids < 1 \
                and debug_depth(node, self.seen) < self.max_debug_depth:
            return "debug"
        return None

    def select(self, view: SearchView) -> Proposal | None:
        visits, wsum = self.backup(view)
        kids = children_of(view.nodes)
        roots = [n for n in view.nodes if not n.parents]
        if len(roots) < self.n_drafts:
            return Proposal("draft")

        def uct(parent: str, child: Node) -> float:
            n = visits.get(child.id, 0)
            if n == 0:
                return math.inf
            q = wsum.get(child.id, 0.0) / n
            return q + self.uct_c * math.sqrt(math.log(max(1, visits.get(parent, 1))) / n)

        def ranked(parent: str, children: list[Node]) -> list[Node]:
            done = [c for c in children if c.id in self.seen]  # running nodes can't be expanded yet
            return sorted(done, key=lambda c: (uct(parent, c), c.created_at, c.id))  # best last

        stack = ranked(ROOT, roots)  # depth first, best UCT child first, backtracking when full
        while stack:
            node = stack.pop()
            role = self._room(node, len(kids.get(node.id, [])), view)
            if role is not None:
                return Proposal(role, (node.id,))
            stack.extend(ranked(node.id, kids.get(node.id, [])))
        return None

    def propose(self, view: SearchView) -> Proposal | None:
        if (step := self.analyze.step(view, self.seen)) is not None:
            return step
        proposal = self.select(view)
        if proposal is None and not view.in_flight:
            return Proposal("draft")  # the whole tree is full or dead: start a new branch
        return proposal

    def state(self, view: SearchView) -> dict[str, Any]:
        """Visit counts and value sums of finished results (no virtual losses)."""
        visits, wsum = self.backup(view, virtual_loss=False)
        return {"visits": visits, "values": {k: round(v, 12) for k, v in wsum.items()}}


@hookimpl
def cambrian_scaffolds():
    return [MCTSScaffold]
