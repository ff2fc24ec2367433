"""Structured operators for vector candidates (the toy domain); no LLM.

vector-sample (draft): a uniform sample from the domain.
vector-perturb (improve): Gaussian steps on the parent; option ``sigma`` (0.3 x bound;
    a scaffold's proposal option ``sigma`` wins).
vector-blend (crossover): a random convex blend of two parents.
vector-analyze (analyze): an insight per coordinate where the best quarter of the finished
    designs sits close together ("coordinate 1: the 3 best designs sit at 0.02 ± 0.1"), with
    those designs as evidence; writes no candidate.

vector-sample's option ``insight_bias`` (0: off) is the chance that a coordinate is drawn
near the centre an insight on the shared board names, instead of uniformly.
"""

from __future__ import annotations

import statistics

from pydantic import Field

from cambrian import Candidate, Insight, Operator, OperatorContext, Options, best_nodes


class Sample(Operator):
    name = "vector-sample"
    role = "draft"
    kinds = ("vector",)

    class Options(Options):
        insight_bias: float = Field(0.0, ge=0, le=1, description="chance a coordinate is drawn near "
                                                                 "an insight's centre")

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        cand = ctx.domain.sample(ctx.rng)
        centres = {i.about["coordinate"]: (i.about["centre"], i.about["spread"]) for i in reversed(ctx.insights)
                   if i.about.get("coordinate") is not None}  # the best-supported insight wins
        if not centres or self.options.insight_bias <= 0:
            return [cand]
        x = list(cand.content)
        for k, (centre, spread) in centres.items():
            if k < len(x) and ctx.rng.random() < self.options.insight_bias:
                x[k] = centre + ctx.rng.gauss(0, max(spread, 1e-3))
        return [Candidate(kind="vector", content=x)]


class Analyze(Operator):
    """Finds coordinates on which the best designs agree; writes insights, no candidate."""

    name = "vector-analyze"
    role = "analyze"
    kinds = ("vector",)

    class Options(Options):
        min_designs: int = Field(8, ge=4, description="finished designs needed before analysing")
        tightness: float = Field(0.5, gt=0, le=1, description="best quarter's spread / all designs' spread "
                                                              "below which a coordinate is reported")

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        ranked = best_nodes(ctx.shared, ctx.objective)
        if len(ranked) < self.options.min_designs:
            return []
        top = ranked[: max(2, len(ranked) // 4)]
        for k in range(len(top[0].candidate.content)):
            every = [n.candidate.content[k] for n in ranked]
            best = [n.candidate.content[k] for n in top]
            spread, overall = statistics.pstdev(best), statistics.pstdev(every)
            if overall > 0 and spread < self.options.tightness * overall:
                centre = statistics.fmean(best)
                ctx.new_insights.append(Insight(
                    text=f"coordinate {k}: the {len(top)} best designs sit at {centre:.3g} ± {spread:.2g} "
                         f"(all {len(ranked)}: {statistics.fmean(every):.3g} ± {overall:.2g})",
                    agent="", evidence=tuple(n.id for n in top),
                    about={"coordinate": k, "centre": centre, "spread": spread}))
        return []


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
