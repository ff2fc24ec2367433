"""``toy``: noisy function optimisation, the smallest domain that exercises the engine.

A candidate is a vector in [-bound, bound]^dim; the objective ``loss`` is a
test function (rastrigin, sphere or rosenbrock) plus Gaussian noise drawn from
the evaluation seed. Evaluated in a sandboxed subprocess like any other domain.

Options: dim (4), function ("rastrigin"), noise (0.01), bound (5.12), sleep_s (0.0).
"""

from __future__ import annotations

import random

from cambrian import Candidate, Domain, MetricSpec, hookimpl


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

    def validate(self, candidate: Candidate) -> Candidate:
        candidate = super().validate(candidate)
        x = candidate.content
        if not isinstance(x, list) or len(x) != self.dim:
            raise ValueError(f"a toy candidate is a list of {self.dim} numbers")
        clipped = [round(min(self.bound, max(-self.bound, float(v))), 6) for v in x]
        return candidate.model_copy(update={"content": clipped})


@hookimpl
def cambrian_domains():
    return [ToyDomain]
