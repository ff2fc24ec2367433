"""The ``script`` domain: improve a training (or solution) script of a task folder.

A candidate (kind ``script``) is the full source of the task's editable file.
Options:
  task       a built-in task name (autoresearch-cpu, speedrun-cpu) or a task folder path
             (task.yaml, or an AIRS-Bench / MLGym layout)
  overrides  task.yaml keys to override, e.g. {budgets: {time_s: 4, repeats: 1}}
  show_readonly (true)  include the read-only files' source in the task description
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from typing import Any

from pydantic import Field

from cambrian import Candidate, Domain, MetricSpec, Options
from cambrian.core.records import canonical_json
from cambrian.execution.harness import check_source
from cambrian.plugins.domains.attention.phases import FinalEvaluation
from cambrian.plugins.domains.script.task import load_task

MAX_SOURCE_CHARS = 200_000


@lru_cache(maxsize=16)
def _task(key: str) -> Any:
    opts = json.loads(key)
    task = load_task(opts.get("task", "autoresearch-cpu"))
    return task.with_overrides(opts["overrides"]) if opts.get("overrides") else task


def task_from_options(options: dict[str, Any]):
    return _task(canonical_json({"task": options.get("task", "autoresearch-cpu"),
                                 "overrides": options.get("overrides") or {}}))


class ScriptDomain(Domain):
    name = "script"
    candidate_kind = "script"
    default_evaluator = "script"
    preload = ("cambrian.scaling.data",)  # what its evaluation worker imports (the candidate runs nested)
    default_operators = ("seeds", "llm-draft", "llm-improve", "llm-debug")

    class Options(Options):
        task: str = Field("autoresearch-cpu", description="a built-in task name or a task folder path")
        overrides: dict[str, Any] = Field(default_factory=dict, description="task.yaml keys to override")
        show_readonly: bool = Field(True, description="show read-only files' source in the task description")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.task = task_from_options(self.options.model_dump())

    @property
    def objective(self) -> MetricSpec:
        return self.task.objective_spec

    def describe(self) -> str:
        t = self.task
        parts = [t.description_text().strip(), "",
                 f"You edit `{t.editable_file}` only; reply with its complete new source. It is run as "
                 f"`{' '.join(t.run_command())}` with a training budget of {t.budgets.time_s:g} s, "
                 f"{t.budgets.repeats} seed(s) per evaluation."]
        if t.baseline.value(t.objective) is not None:
            parts.append(f"Baseline {t.objective} on this machine: {t.baseline.value(t.objective):.4f} "
                         f"(seed spread {t.baseline.seed_spread:.4f}).")
        if t.best_known:
            parts.append("Best known: " + ", ".join(f"{k}={v}" for k, v in t.best_known.items()))
        if self.options.show_readonly:
            for f in t.readonly:
                p = t.root / f
                if p.is_file() and p.suffix == ".py" and p.stat().st_size < 20_000:
                    parts += ["", f"Read-only `{f}`:", f"```python\n{p.read_text().strip()}\n```"]
        return "\n".join(parts)

    def seeds(self, rng: random.Random) -> list[Candidate]:
        return [Candidate(kind="script", content=self.task.seed_source(), meta={"seed": "task baseline"})]

    def baselines(self) -> dict[str, Candidate]:
        return {"task-baseline": self.seeds(random.Random(0))[0]}

    @classmethod
    def phase_classes(cls) -> dict[str, Any]:
        return {"final": FinalEvaluation}

    def phases(self, options: dict[str, Any]) -> list[Any]:
        """``phases: {final: {top_k, seeds, split: hidden}}``: the task's baseline script and the
        top-k re-run on the final hidden slice under every seed (the attention pack's phase)."""
        return [FinalEvaluation(**(options["final"] or {}))] if "final" in options else []

    def validate(self, candidate: Candidate) -> Candidate:
        candidate = super().validate(candidate)
        py = self.task.editable_file.endswith(".py")
        check_source(candidate.content, what="a script candidate is the non-empty source of the editable file",
                     max_chars=MAX_SOURCE_CHARS, filename=self.task.editable_file if py else None)
        return candidate
