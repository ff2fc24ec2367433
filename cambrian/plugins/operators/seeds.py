"""``seeds`` (draft): the domain's own starting candidates, all at once, no LLM.

Drafts exactly what ``Domain.seeds`` returns; a later call proposes them again
and the engine drops the duplicates, so seeds are evaluated once.
"""

from __future__ import annotations

from cambrian import Candidate, Operator, OperatorContext, Options, hookimpl


class Seeds(Operator):
    name = "seeds"
    role = "draft"
    Options = Options  # takes no options

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        return list(ctx.domain.seeds(ctx.rng))


@hookimpl
def cambrian_operators():
    return [Seeds]
