"""``python-task``: search over Python source that solves a task the harness scores.

A candidate (kind ``code``) is a module defining the task's entry function.
It runs in a nested, unprivileged sandbox (the ``python-code`` evaluator);
the task's ``score`` runs in the harness, so a candidate cannot report its own
metrics.

Options:
  task ("fit")     a built-in task name, or "package.module:attr" naming a task class
  task_options ({})  keyword arguments for the task class
  seeds (None)     candidate sources that replace the task's seeds (drafted by the
                   ``seeds`` operator)

A task is any class with: description, entry (function name), objective
(MetricSpec), seeds() -> list[str], inputs(split, seed) -> dict of JSON
keyword arguments, score(output, split, seed) -> dict of metrics (raise
ValueError to reject an answer).
"""

from __future__ import annotations

import importlib
import math
import random
from typing import Any

from pydantic import Field

from cambrian import Candidate, Domain, MetricSpec, Options
from cambrian.execution.harness import check_source

MAX_SOURCE_CHARS = 200_000


class FitTask:
    """Approximate a hidden function on [-2, 2]: ``solve(xs) -> ys``; loss is the mean squared error."""

    description = ("Write a Python module defining `solve(xs: list[float]) -> list[float]` that "
                   "approximates an unknown smooth function on [-2, 2] (it looks like a sine wave on "
                   "a slope). Standard library only. Loss: mean squared error on held-out points.")
    entry = "solve"
    objective = MetricSpec(name="loss", direction="min")

    def __init__(self, points: int = 64) -> None:
        self.points = points

    @staticmethod
    def target(x: float) -> float:
        return math.sin(3 * x) + 0.5 * x

    def seeds(self) -> list[str]:
        return ["def solve(xs):\n    return [0.0 for x in xs]\n",
                "def solve(xs):\n    return [0.5 * x for x in xs]\n"]

    def xs(self, split: str, seed: int) -> list[float]:
        rng = random.Random(f"{split}:{seed}")
        return [rng.uniform(-2, 2) for _ in range(self.points)]

    def inputs(self, split: str, seed: int) -> dict[str, Any]:
        return {"xs": self.xs(split, seed)}

    def score(self, output: Any, split: str, seed: int) -> dict[str, float]:
        xs = self.xs(split, seed)
        if not isinstance(output, list) or len(output) != len(xs):
            raise ValueError(f"solve() must return a list of {len(xs)} numbers")
        if not all(isinstance(y, (int, float)) and not isinstance(y, bool) for y in output):
            raise ValueError("solve() returned something that is not a number")
        err = [(float(y) - self.target(x)) ** 2 for x, y in zip(xs, output)]
        return {"loss": sum(err) / len(err), "max_error": math.sqrt(max(err))}


TASKS: dict[str, type] = {"fit": FitTask}


def load_task(ref: str, options: dict[str, Any]) -> Any:
    if ref in TASKS:
        return TASKS[ref](**options)
    module, _, attr = ref.partition(":")
    if not attr:
        raise ValueError(f"task: {ref!r} is neither a built-in task ({', '.join(TASKS)}) nor 'module:attr'")
    return getattr(importlib.import_module(module), attr)(**options)


class PythonTaskDomain(Domain):
    name = "python-task"
    candidate_kind = "code"
    default_evaluator = "python-code"
    default_operators = ("seeds", "llm-draft", "llm-improve", "llm-debug")

    class Options(Options):
        task: str = Field("fit", description=f"a built-in task ({', '.join(TASKS)}) or 'module:attr'")
        task_options: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the task")
        seeds: list[str] | None = Field(None, description="seed sources (default: the task's)")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.task = load_task(self.options.task, self.options.task_options)

    @property
    def objective(self) -> MetricSpec:
        return self.task.objective

    def describe(self) -> str:
        return f"{self.task.description}\nThe module must define `{self.task.entry}`."

    def seeds(self, rng: random.Random) -> list[Candidate]:
        sources = self.options.seeds or self.task.seeds()
        return [Candidate(kind="code", content=s) for s in sources]

    def validate(self, candidate: Candidate) -> Candidate:
        candidate = super().validate(candidate)
        check_source(candidate.content, what="a code candidate is non-empty Python source",
                     max_chars=MAX_SOURCE_CHARS)
        return candidate
