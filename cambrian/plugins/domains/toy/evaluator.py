"""Evaluator for the ``toy`` domain: a test function plus seeded noise.

The noise's standard deviation is ``noise / sqrt(fidelity)``: a higher-fidelity
evaluation is a more precise measurement, as in multi-fidelity search.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

from cambrian import EvalJob, Evaluator, Options
from cambrian.plugins.domains.toy.domain import ToyDomain


def rastrigin(x: list[float]) -> float:
    return 10 * len(x) + sum(v * v - 10 * math.cos(2 * math.pi * v) for v in x)


def sphere(x: list[float]) -> float:
    return sum(v * v for v in x)


def rosenbrock(x: list[float]) -> float:
    return sum(100 * (b - a * a) ** 2 + (1 - a) ** 2 for a, b in zip(x, x[1:]))


FUNCTIONS = {"rastrigin": rastrigin, "sphere": sphere, "rosenbrock": rosenbrock}


class ToyEvaluator(Evaluator):
    name = "toy"
    Options = Options  # takes no options: the function and noise are the domain's

    def evaluate(self, job: EvalJob, workdir: Path) -> dict[str, float]:
        opts = ToyDomain.parse_options(job.domain_options)
        fn = FUNCTIONS[opts.function]
        time.sleep(opts.sleep_s)
        noise = random.Random(f"{job.seed}:{job.candidate.hash}:{job.split}").gauss(0, 1)
        x = job.candidate.content
        # fidelity f is like averaging f times as many noisy measurements: noise sd / sqrt(f)
        return {"loss": fn(x) + opts.noise / math.sqrt(job.fidelity) * noise, "norm": math.sqrt(sphere(x))}
