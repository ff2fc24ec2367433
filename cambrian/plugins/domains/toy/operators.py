"""Structured operators for vector candidates (the toy domain); no LLM.

vector-sample (draft): a uniform sample from the domain.
vector-perturb (improve): Gaussian steps on the parent; option ``sigma`` (0.3 x bound;
    a scaffold's proposal option ``sigma`` wins).
vector-blend (crossover): a random convex blend of two parents.
"""

from __future__ import annotations

from pydantic import Field

from cambrian import Candidate, Operator, OperatorContext, Options


class Sample(Operator):
    name = "vector-sample"
    role = "draft"
    kinds = ("vector",)
    Options = Options  # takes no options

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        return [ctx.domain.sample(ctx.rng)]


class Perturb(Operator):
    name = "vector-perturb"
    role = "improve"
    kinds = ("vector",)

    class Options(Options):
        sigma: float | None = Field(None, gt=0, description="step size (default 0.3 x the domain's bound)")

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        sigma = float(ctx.options.get("sigma") or self.options.sigma or 0.3 * ctx.domain.bound)
        x = ctx.parents[0].candidate.content
        scale = sigma * ctx.rng.choice([1.0, 0.3, 0.1])  # mix of large and fine steps
        return [Candidate(kind="vector", content=[v + ctx.rng.gauss(0, scale) for v in x])]


class Blend(Operator):
    name = "vector-blend"
    role = "crossover"
    kinds = ("vector",)
    Options = Options  # takes no options

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        a, b = (p.candidate.content for p in ctx.parents[:2])
        w = ctx.rng.random()
        return [Candidate(kind="vector", content=[w * u + (1 - w) * v for u, v in zip(a, b)])]
