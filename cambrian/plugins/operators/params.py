"""``space-draft`` (draft): a candidate from a point of the domain's structured search space.

Model-based scaffolds (``bo``) choose the point and pass it as the proposal's option
``params``; without it, the point is drawn uniformly from :meth:`Domain.search_space`.
The point travels in the candidate's ``meta["params"]`` (not part of its identity), so a
scaffold replaying stored nodes on resume reads back exactly what it asked for.
"""

from __future__ import annotations

import random
from typing import Any

from cambrian import Candidate, Operator, OperatorContext, Options, hookimpl


def sample_point(space: dict[str, dict[str, Any]], rng: random.Random) -> dict[str, Any]:
    """A uniform draw from a search space (see :meth:`Domain.search_space`)."""
    point: dict[str, Any] = {}
    for name, dist in space.items():
        if "choices" in dist:
            point[name] = rng.choice(list(dist["choices"]))
        elif dist.get("int"):
            point[name] = rng.randint(int(dist["low"]), int(dist["high"]))
        else:
            point[name] = rng.uniform(float(dist["low"]), float(dist["high"]))
    return point


class SpaceDraft(Operator):
    name = "space-draft"
    role = "draft"
    Options = Options  # none: the point comes with the proposal

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        params = ctx.options.get("params")
        if params is None:
            params = sample_point(ctx.domain.search_space(), ctx.rng)
        cand = ctx.domain.from_params(params)
        return [cand.model_copy(update={"meta": {**cand.meta, "params": params}})]


@hookimpl
def cambrian_operators():
    return [SpaceDraft]
