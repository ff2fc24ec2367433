"""The greedy scaffold, AIDE-style: draft a few, then keep improving the best.

Each step, in order:
  1. fewer than ``n_drafts`` drafts so far: draft;
  2. with probability ``debug_prob``, and if the agent has a debug operator:
     debug a failed leaf (a failed node with no children yet) whose chain of
     debug steps is shorter than ``max_debug_depth``;
  3. improve the best valid node;
  4. nothing valid yet: debug a failed leaf if there is one, else draft again
     (or wait, when drafts are still being evaluated).
Optionally, every ``analyze_every`` finished nodes, an analyze step over the
latest results (when the agent has an analyze operator).

Options (defaults):
  n_drafts (5), debug_prob (0.5), max_debug_depth (3), analyze_every (0 = never).

State: none beyond the stored nodes (plus the analyze watermark, see tree.py),
so a resumed agent continues exactly where it stopped.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from cambrian import Options, Node, Proposal, Scaffold, SearchView, best_nodes, hookimpl
from cambrian.plugins.scaffolds.tree import AnalyzeEvery, children_of, debug_depth, is_failed


class GreedyScaffold(Scaffold):
    name = "greedy"

    class Options(Options):
        n_drafts: int = Field(5, ge=0, description="drafts before improving")
        debug_prob: float = Field(0.5, ge=0, le=1, description="chance of debugging a failed leaf")
        max_debug_depth: int = Field(3, ge=0, description="debug steps in a row on one chain")
        analyze_every: int = Field(0, ge=0, description="an analyze step every N finished nodes (0: never)")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.options
        self.n_drafts, self.debug_prob = o.n_drafts, o.debug_prob
        self.max_debug_depth = o.max_debug_depth
        self.analyze = AnalyzeEvery(o.analyze_every)
        self.seen: dict[str, Node] = {}  # finished nodes, by id

    def observe(self, node: Node) -> None:
        self.seen[node.id] = node

    def debuggable(self, view: SearchView) -> list[Node]:
        """Failed leaves that may still be debugged, oldest first."""
        if "debug" not in view.roles:
            return []
        kids = children_of(view.nodes)
        return [n for n in self.seen.values() if is_failed(n) and n.id not in kids
                and debug_depth(n, self.seen) < self.max_debug_depth]

    def propose(self, view: SearchView) -> Proposal | None:
        if (step := self.analyze.step(view, self.seen)) is not None:
            return step
        drafts = [n for n in view.nodes if not n.parents]
        if len(drafts) < self.n_drafts:
            return Proposal("draft")
        broken = self.debuggable(view)
        if broken and view.rng.random() < self.debug_prob:
            return Proposal("debug", (view.rng.choice(broken).id,))
        best = best_nodes(list(self.seen.values()), view.objective)
        if best and "improve" in view.roles:
            return Proposal("improve", (best[0].id,))
        if broken:
            return Proposal("debug", (broken[0].id,))
        if view.in_flight:
            return None  # results are on their way; decide when they arrive
        return Proposal("draft")

    def state(self, view: SearchView) -> dict[str, Any]:
        """What the next decision depends on, as plain data (for tests and reports)."""
        best = best_nodes(list(self.seen.values()), view.objective)
        return {"finished": sorted(self.seen), "best": best[0].id if best else None,
                "debuggable": sorted(n.id for n in self.debuggable(view))}


@hookimpl
def cambrian_scaffolds():
    return [GreedyScaffold]
