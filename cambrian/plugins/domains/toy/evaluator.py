"""Evaluator for the ``toy`` domain: a test function plus seeded noise."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

from cambrian import EvalJob, Evaluator


def rastrigin(x: list[float]) -> float:
    return 10 * len(x) + sum(v * v - 10 * math.cos(2 * math.pi * v) for v in x)


def sphere(x: list[float]) -> float:
    return sum(v * v for v in x)


def rosenbrock(x: list[float]) -> float:
    return sum(100 * (b - a * a) ** 2 + (1 - a) ** 2 for a, b in zip(x, x[1:]))


FUNCTIONS = {"rastrigin": rastrigin, "sphere": sphere, "rosenbrock": rosenbrock}


class ToyEvaluator(Evaluator):
    name = "toy"

    def evaluate(self, job: EvalJob, workdir: Path) -> dict[str, float]:
        opts = job.domain_options
        fn = FUNCTIONS[opts.get("function", "rastrigin")]
        time.sleep(float(opts.get("sleep_s", 0.0)))
        noise = random.Random(f"{job.seed}:{job.candidate.hash}:{job.split}").gauss(0, 1)
        x = job.candidate.content
        return {"loss": fn(x) + float(opts.get("noise", 0.01)) * noise, "norm": math.sqrt(sphere(x))}
