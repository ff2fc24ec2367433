"""``toy``: noisy function optimisation, the smallest domain that exercises the engine.

A candidate is a vector in [-bound, bound]^dim; the objective ``loss`` is a
test function (rastrigin, sphere or rosenbrock) plus Gaussian noise drawn from
the evaluation seed. Evaluated in a sandboxed subprocess like any other domain.

Options: dim (4), function ("rastrigin"), noise (0.01), bound (5.12), sleep_s (0.0).
Phases (config ``phases.hidden``): ``{top_k: 3, seeds: [0, 1, 2]}`` re-evaluates the
top designs on the hidden split under several seeds and reports mean and spread.
"""

from __future__ import annotations

import random

import statistics
from typing import Any

from cambrian import Candidate, Domain, MetricSpec, Phase, best_nodes


class ToyDomain(Domain):
    name = "toy"
    candidate_kind = "vector"
    default_evaluator = "toy"
    default_operators = ("vector-sample", "vector-perturb", "vector-blend")
    description = "Minimise a noisy test function over a box; candidates are lists of floats."

    @property
    def objective(self) -> MetricSpec:
        return MetricSpec(name="loss", direction="min")

    @property
    def dim(self) -> int:
        return int(self.options.get("dim", 4))

    @property
    def bound(self) -> float:
        return float(self.options.get("bound", 5.12))

    def sample(self, rng: random.Random) -> Candidate:
        return Candidate(kind="vector", content=[round(rng.uniform(-self.bound, self.bound), 6)
                                                 for _ in range(self.dim)])

    def seeds(self, rng: random.Random) -> list[Candidate]:
        return [self.sample(rng)]

    def phases(self, options: dict[str, Any]) -> list[Phase]:
        return [HiddenCheck(**options["hidden"])] if "hidden" in options else []

    def validate(self, candidate: Candidate) -> Candidate:
        candidate = super().validate(candidate)
        x = candidate.content
        if not isinstance(x, list) or len(x) != self.dim:
            raise ValueError(f"a toy candidate is a list of {self.dim} numbers")
        clipped = [round(min(self.bound, max(-self.bound, float(v))), 6) for v in x]
        return candidate.model_copy(update={"content": clipped})


class HiddenCheck(Phase):
    """Re-evaluate the search's top-k on the hidden split, each under several seeds."""

    name = "hidden"

    def run(self, campaign: Any) -> dict[str, Any]:
        top = best_nodes(campaign.nodes.values(), campaign.objective)[: int(self.options.get("top_k", 3))]
        seeds = tuple(self.options.get("seeds", (0, 1, 2)))
        nodes = campaign.evaluate([n.candidate for n in top], phase=self.name, split="hidden", seeds=seeds)
        obj = campaign.objective.name
        rows = []
        for i, origin in enumerate(top):
            runs = nodes[i * len(seeds):(i + 1) * len(seeds)]
            vals = [n.metrics[obj].value for n in runs if n.score(campaign.objective) is not None]
            rows.append({"label": origin.id, "pattern": str(origin.candidate.content),
                         "val": origin.score(campaign.objective), "values": vals,
                         "mean": statistics.fmean(vals) if vals else None,
                         "std": statistics.pstdev(vals) if len(vals) > 1 else 0.0,
                         "failed": len(runs) - len(vals)})
        return {"metric": obj, "seeds": list(seeds), "designs": rows,
                "verdict": f"top {len(top)} search designs re-evaluated on the hidden split"}
