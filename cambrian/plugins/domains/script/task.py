"""Script tasks: a folder with a ``task.yaml``, read into a validated :class:`ScriptTask`.

    my-task/
      task.yaml         what follows
      description.md    the task for the agent (markdown)
      train.py          the editable file: the candidate is its source
      prepare.py ...    read-only files copied next to it (helpers, small data)

task.yaml keys (see docs/script-tasks.md):
  name, description (file, default description.md), editable ([one file]), readonly ([files]),
  command (default [python, <editable>]), evaluate (trusted evaluation: a built-in
  name, ``lm-bpb`` or ``lm-target``, or ``module:function``), metrics ([{name, direction}]),
  objective (a metric name), data ({corpus: {...}, train_tokens, val_tokens}),
  budgets ({time_s, timeout_s, repeats, seq_len}), baseline ({metric: value, seed_spread,
  measured_on}), best_known ({metric: value}), reference ({...}, task-specific), options ({...}).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cambrian import MetricSpec
from cambrian.plugins.domains.script.layouts import detect_layout
from cambrian.scaling.data import parse_corpus

BUILTIN_TASKS = Path(__file__).parent / "tasks"


class Budgets(BaseModel):
    model_config = ConfigDict(extra="forbid")
    time_s: float = 8.0  # the script's training budget (passed as TASK_TIME_BUDGET_S)
    timeout_s: float = 120.0  # hard limit of one run of the script
    repeats: int = Field(2, ge=1)  # runs (seeds 0..repeats-1) per evaluation
    seq_len: int = 64


class Baseline(BaseModel):
    model_config = ConfigDict(extra="allow")  # plus one value per metric
    seed_spread: float = 0.0  # max - min of the objective across seeds, measured here
    measured_on: str = ""

    def value(self, metric: str) -> float | None:
        v = (self.model_extra or {}).get(metric)
        return None if v is None else float(v)


class ScriptTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    root: Path
    description: str = "description.md"
    editable: list[str] = Field(min_length=1, max_length=1)
    readonly: list[str] = Field(default_factory=list)
    command: list[str] | None = None
    evaluate: str = "lm-bpb"
    metrics: list[MetricSpec]
    objective: str
    data: dict[str, Any] = Field(default_factory=dict)
    budgets: Budgets = Budgets()
    baseline: Baseline = Baseline()
    best_known: dict[str, float] = Field(default_factory=dict)
    reference: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    source_format: str = "cambrian"  # or airs-bench / mlgym when loaded from those layouts

    @model_validator(mode="after")
    def _check(self) -> "ScriptTask":
        names = [m.name for m in self.metrics]
        if self.objective not in names:
            raise ValueError(f"objective {self.objective!r} is not one of the metrics {names}")
        if "corpus" in self.data:  # one line naming data.corpus.<key> when the task loads
            parse_corpus(self.data["corpus"], "data.corpus")
        for f in [*self.editable, *self.readonly]:
            if Path(f).is_absolute() or ".." in Path(f).parts:
                raise ValueError(f"file {f!r} must be a relative path inside the task folder")
        return self

    @property
    def objective_spec(self) -> MetricSpec:
        return next(m for m in self.metrics if m.name == self.objective)

    @property
    def editable_file(self) -> str:
        return self.editable[0]

    def run_command(self) -> list[str]:
        return self.command or ["python", self.editable_file]

    def description_text(self) -> str:
        p = self.root / self.description
        return p.read_text() if p.is_file() else self.description

    def seed_source(self) -> str:
        return (self.root / self.editable_file).read_text()

    def with_overrides(self, overrides: dict[str, Any]) -> "ScriptTask":
        data = self.model_dump()
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return ScriptTask.model_validate(data)


def builtin_task_names() -> list[str]:
    return sorted(p.name for p in BUILTIN_TASKS.iterdir() if (p / "task.yaml").is_file())


def load_task(ref: str | Path) -> ScriptTask:
    """A task by built-in name or folder path; AIRS-Bench and MLGym layouts are recognised."""
    root = BUILTIN_TASKS / str(ref) if str(ref) in builtin_task_names() else Path(ref).expanduser()
    if not root.is_dir():
        raise ValueError(f"task: {ref!r} is neither a built-in task ({', '.join(builtin_task_names())}) "
                         "nor a folder")
    if (root / "task.yaml").is_file():
        try:
            raw = yaml.safe_load((root / "task.yaml").read_text()) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{root / 'task.yaml'}: malformed YAML: {exc}") from None
    else:
        layout = detect_layout(root)
        if layout is None:
            raise ValueError(f"{root}: no task.yaml, and not an AIRS-Bench or MLGym task layout")
        raw = layout(root)
    try:
        task = ScriptTask.model_validate({**raw, "root": root.resolve()})
    except ValidationError as err:
        parts = [f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in err.errors()]
        raise ValueError(f"{root / 'task.yaml'}: " + "; ".join(parts)) from None
    for f in [*task.editable, *task.readonly]:
        if not (task.root / f).exists():
            raise ValueError(f"{root}: file {f!r} named in the task does not exist")
    return task
