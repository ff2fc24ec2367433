"""The random scaffold: the baseline every other search policy must beat.

Options:
  n_drafts (int, 3): drafts before anything else.
  p_draft (float, 0.3): after that, the chance of a fresh draft instead of
      improving a uniformly chosen valid node.
"""

from __future__ import annotations

from pydantic import Field

from cambrian import Options, Proposal, Scaffold, SearchView, hookimpl


class RandomScaffold(Scaffold):
    name = "random"

    class Options(Options):
        n_drafts: int = Field(3, ge=0, description="drafts before anything else")
        p_draft: float = Field(0.3, ge=0, le=1, description="then, the chance of a fresh draft "
                               "instead of improving a uniformly chosen valid node")

    def propose(self, view: SearchView) -> Proposal | None:
        n_drafts, p_draft = self.options.n_drafts, self.options.p_draft
        valid = [n for n in view.nodes if n.score(view.objective) is not None]
        if len(view.nodes) < n_drafts or not valid or "improve" not in view.roles \
                or view.rng.random() < p_draft:
            return Proposal("draft")
        return Proposal("improve", (view.rng.choice(valid).id,))


@hookimpl
def cambrian_scaffolds():
    return [RandomScaffold]
