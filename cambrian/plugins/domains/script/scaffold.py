"""``keep-discard``: the autoresearch loop as a scaffold.

Draft (the task's baseline) until something is valid; then always improve the
incumbent, the agent's last *kept* node (see history.py: a change is kept
only when it beats the incumbent by more than the seed margin). A failed
node is debugged first, up to ``max_debug_depth`` fixes in a row.

Options: n_drafts (1), max_debug_depth (2), margin (0.0: a floor under the seed margin).
State: none beyond the stored nodes.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from cambrian import Options, Node, Proposal, Scaffold, SearchView
from cambrian.plugins.domains.script.history import decide, incumbent
from cambrian.plugins.scaffolds.tree import children_of, debug_depth, is_failed


class KeepDiscardScaffold(Scaffold):
    name = "keep-discard"

    class Options(Options):
        n_drafts: int = Field(1, ge=0, description="drafts (the task's baseline) first")
        max_debug_depth: int = Field(2, ge=0, description="fixes in a row of a failed node")
        margin: float = Field(0.0, ge=0, description="a floor under the seed margin for keeping a change")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.options
        self.n_drafts, self.max_debug_depth, self.margin = o.n_drafts, o.max_debug_depth, o.margin
        self.seen: dict[str, Node] = {}

    def observe(self, node: Node) -> None:
        self.seen[node.id] = node

    def propose(self, view: SearchView) -> Proposal | None:
        if view.in_flight:
            return None  # one change at a time: the next decision needs this result
        finished = sorted(self.seen.values(), key=lambda n: (n.created_at, n.id))
        kids = children_of(view.nodes)
        if finished and "debug" in view.roles:
            last = finished[-1]
            if is_failed(last) and last.id not in kids and debug_depth(last, self.seen) < self.max_debug_depth:
                return Proposal("debug", (last.id,))
        inc = incumbent(decide(finished, view.objective, self.margin))
        if inc is not None and "improve" in view.roles:
            return Proposal("improve", (inc,))
        drafts = [n for n in view.nodes if not n.parents]
        if len(drafts) < self.n_drafts or inc is None:
            return Proposal("draft")
        return None
