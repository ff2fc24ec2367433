"""``toy``: noisy function optimisation, the smallest domain that exercises the engine.

A candidate is a vector in [-bound, bound]^dim; the objective ``loss`` is a
test function (rastrigin, sphere or rosenbrock) plus Gaussian noise drawn from
the evaluation seed. Evaluated in a sandboxed subprocess like any other domain.

Options: dim (4), function ("rastrigin"), noise (0.01), bound (5.12), sleep_s (0.0).
Phases (config ``phases.hidden``): ``{top_k: 3, seeds: 3}`` re-evaluates the top designs
on the hidden split under fresh seeds (never used by the search) and reports mean and spread;
``references: [[0, 0, 0, 0]]`` adds hand-set vectors, which the campaign evaluates during the
search in idle CPU time (``Phase.ahead``: they do not depend on what the search finds).
"""

from __future__ import annotations

import random

import statistics
from typing import Any, Literal

from pydantic import Field

from cambrian import Candidate, Domain, MetricSpec, Options, Phase, PhaseEvaluations, standings
from cambrian.scaling.verdict import hidden_seeds


class ToyDomain(Domain):
    name = "toy"
    candidate_kind = "vector"
    default_evaluator = "toy"
    default_operators = ("vector-sample", "vector-perturb", "vector-blend")
    description = "Minimise a noisy test function over a box; candidates are lists of floats."

    class Options(Options):
        dim: int = Field(4, ge=1, description="length of a candidate vector")
        function: Literal["rastrigin", "sphere", "rosenbrock"] = "rastrigin"
        noise: float = Field(0.01, ge=0, description="sd of the Gaussian noise on the loss")
        bound: float = Field(5.12, gt=0, description="candidates lie in [-bound, bound]^dim")
        sleep_s: float = Field(0.0, ge=0, description="seconds each evaluation sleeps (tests, demos)")

    @property
    def objective(self) -> MetricSpec:
        return MetricSpec(name="loss", direction="min")

    @property
    def dim(self) -> int:
        return self.options.dim

    @property
    def bound(self) -> float:
        return self.options.bound

    def sample(self, rng: random.Random) -> Candidate:
        return Candidate(kind="vector", content=[round(rng.uniform(-self.bound, self.bound), 6)
                                                 for _ in range(self.dim)])

    def search_space(self) -> dict[str, dict[str, Any]]:
        return {f"x{i}": {"low": -self.bound, "high": self.bound} for i in range(self.dim)}

    def from_params(self, params: dict[str, Any]) -> Candidate:
        return self.validate(Candidate(kind="vector", content=[float(params[f"x{i}"]) for i in range(self.dim)]))

    def to_params(self, candidate: Candidate) -> dict[str, Any] | None:
        x = candidate.content
        if not isinstance(x, list) or len(x) != self.dim or any(abs(float(v)) > self.bound for v in x):
            return None
        return {f"x{i}": float(v) for i, v in enumerate(x)}

    def seeds(self, rng: random.Random) -> list[Candidate]:
        return [self.sample(rng)]

    @classmethod
    def phase_classes(cls) -> dict[str, type[Phase]]:
        return {"hidden": HiddenCheck}

    def phases(self, options: dict[str, Any]) -> list[Phase]:
        return [HiddenCheck(**(options["hidden"] or {}))] if options.get("hidden") not in (None, False) else []

    def inspect(self, candidate: Candidate) -> dict[str, Any]:
        """The vector's size and length (the loss needs an evaluation)."""
        x = candidate.content
        return {"dim": len(x), "norm": round(sum(v * v for v in x) ** 0.5, 6)}

    def validate(self, candidate: Candidate) -> Candidate:
        candidate = super().validate(candidate)
        x = candidate.content
        if not isinstance(x, list) or len(x) != self.dim:
            raise ValueError(f"a toy candidate is a list of {self.dim} numbers")
        clipped = [round(min(self.bound, max(-self.bound, float(v))), 6) for v in x]
        return candidate.model_copy(update={"content": clipped})


class HiddenCheck(Phase):
    """Re-evaluate the search's top-k on the hidden split, each under several fresh seeds.

    The top-k are the leaderboard's (:func:`cambrian.standings`: mean at the highest
    fidelity reached); they are evaluated at fidelity 1 (or the search's highest, if above), with
    ``seeds`` fresh seeds (a count, or a list that must not reuse a search seed).
    """

    name = "hidden"

    class Options(Options):
        top_k: int = Field(3, ge=1, description="search designs re-evaluated")
        seeds: int | list[int] = Field(3, description="a count of fresh seeds (never used by the "
                                       "search), or a list of seeds the search did not use")
        references: list[list[float]] = Field(default_factory=list, description="hand-set vectors "
                                              "evaluated too (known before the search ends: run in its idle time)")

    def estimate(self, campaign: Any) -> dict[str, Any]:
        valid = [n for n in campaign.nodes.values() if n.score(campaign.objective) is not None]
        seeds = self.options.seeds
        evaluations = ((min(self.options.top_k, len(valid)) + len(self.options.references))
                       * (seeds if isinstance(seeds, int) else len(seeds)))
        return {"evaluations": evaluations, **campaign.estimate_evaluations(evaluations)}

    def _request(self, campaign: Any, candidates: list[Candidate]) -> PhaseEvaluations:
        search = list(campaign.nodes.values())
        return PhaseEvaluations(
            candidates=tuple(candidates), phase=self.name, split="hidden",
            seeds=tuple(hidden_seeds(self.options.seeds, {n.seed for n in search})),
            fidelity=max([1.0] + [n.fidelity for n in search]))  # the full budget (or the finalists')

    def _references(self, campaign: Any) -> list[Candidate]:
        return [campaign.domain.validate(Candidate(kind="vector", content=list(v))) for v in self.options.references]

    def ahead(self, campaign: Any) -> list[PhaseEvaluations]:
        return [self._request(campaign, self._references(campaign))] if self.options.references else []

    def planned(self, campaign: Any) -> list[PhaseEvaluations]:
        """The search's top-k as it stands, and the references."""
        top = standings(list(campaign.nodes.values()), campaign.objective)[: self.options.top_k]
        return [self._request(campaign, [r.node.candidate for r in top] + self._references(campaign))]

    def run(self, campaign: Any) -> dict[str, Any]:
        top = standings(list(campaign.nodes.values()), campaign.objective)[: self.options.top_k]
        origins = [(r.node.id, r) for r in top] + [(f"reference {i}", None)
                                                    for i in range(len(self.options.references))]
        want = self._request(campaign, [r.node.candidate for r in top] + self._references(campaign))
        seeds, fidelity = want.seeds, want.fidelity
        nodes = campaign.evaluate(list(want.candidates), phase=want.phase, split=want.split, seeds=seeds,
                                  fidelity=fidelity)
        obj = campaign.objective.name
        rows = []
        for i, ((label, origin), cand) in enumerate(zip(origins, want.candidates)):
            runs = nodes[i * len(seeds):(i + 1) * len(seeds)]
            vals = [n.metrics[obj].value for n in runs if n.score(campaign.objective) is not None]
            rows.append({"label": label, "pattern": str(cand.content),
                         "val": origin.mean if origin else None,
                         "val_seeds": list(origin.seeds) if origin else [], "values": vals,
                         "mean": statistics.fmean(vals) if vals else None,
                         "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                         "failed": len(runs) - len(vals)})
        return {"metric": obj, "seeds": list(seeds), "fidelity": fidelity, "designs": rows,
                "verdict": f"top {len(top)} search designs re-evaluated on the hidden split"}
