"""An example Cambrian plugin: one scaffold, one domain (with its evaluator and operators)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from cambrian import (Candidate, Domain, EvalJob, Evaluator, MetricSpec, Operator, OperatorContext,
                      Options, Proposal, Scaffold, SearchView, hookimpl)


class HillClimb(Scaffold):
    """Draft ``n_drafts`` candidates, then always improve the best one so far."""

    name = "hillclimb"

    class Options(Options):  # checked when a config loads; `cambrian plugins --options hillclimb`
        n_drafts: int = Field(2, ge=1, description="drafts before climbing")

    def propose(self, view: SearchView) -> Proposal | None:
        ranked = sorted((n for n in view.nodes if n.score(view.objective) is not None),
                        key=lambda n: n.score(view.objective),
                        reverse=view.objective.direction.value == "max")
        if len(view.nodes) < self.options.n_drafts or not ranked:
            return Proposal("draft")
        return Proposal("improve", (ranked[0].id,))


class OneMax(Domain):
    """Maximise the number of ones in a bit string of ``length`` bits."""

    name = "onemax"
    candidate_kind = "bits"
    default_evaluator = "onemax"
    default_operators = ("bits-random", "bits-flip")

    class Options(Options):
        length: int = Field(16, ge=1, description="bits per candidate")

    @property
    def objective(self) -> MetricSpec:
        return MetricSpec(name="ones", direction="max")

    def seeds(self, rng):
        return [self.random_bits(rng)]

    def random_bits(self, rng) -> Candidate:
        n = self.options.length
        return Candidate(kind="bits", content="".join(rng.choice("01") for _ in range(n)))


class OneMaxEvaluator(Evaluator):
    name = "onemax"
    Options = Options  # takes no options

    def evaluate(self, job: EvalJob, workdir: Path) -> dict[str, float]:
        return {"ones": float(job.candidate.content.count("1"))}


class RandomBits(Operator):
    name = "bits-random"
    role = "draft"
    Options = Options

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        return [ctx.domain.random_bits(ctx.rng)]


class FlipBit(Operator):
    name = "bits-flip"
    role = "improve"
    Options = Options

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        bits = list(ctx.parents[0].candidate.content)
        i = ctx.rng.randrange(len(bits))
        bits[i] = "1" if bits[i] == "0" else "0"
        return [Candidate(kind="bits", content="".join(bits))]


@hookimpl
def cambrian_scaffolds():
    return [HillClimb]


@hookimpl
def cambrian_domains():
    return [OneMax]


@hookimpl
def cambrian_evaluators():
    return [OneMaxEvaluator]


@hookimpl
def cambrian_operators():
    return [RandomBits, FlipBit]
