"""The ``attention`` domain: design a causal token mixer as a Python module.

A candidate (kind ``code``) is the source of a module that defines::

    class Mixer(torch.nn.Module):
        def __init__(self, d_model: int, n_heads: int = 4, **kw): ...
        def forward(self, x):  # x [B, T, d_model] -> [B, T, d_model], causal

using only the standard library, torch and numpy. Output t may depend on
inputs 0..t only. The ``attention`` evaluator runs it in a sandbox: import,
shape and causality checks, parameter count and measured cost, then training
a small model (the mixer alternating with SwiGLU MLPs, built by the
architectures builder) on each configured task; a combined score is the
objective (maximise).

Options (defaults in DEFAULTS):
  model     {d_model, n_heads, n_layers} of the small model
  tasks     {name: options} for mqar, listops, lm; omit a task to skip it
  weights   {task: weight} of the combined score
  corpus    the lm task's corpus: stdlib, {source: text, train, val, hidden}, {source: text,
            paths}, {source: hf, ...} (cambrian.scaling.data.CorpusOption)
  cache_dir corpus cache (default <run_dir>/cache)
  device    where the small models train: auto (CUDA when present), cpu, cuda, cuda:N; on
            CUDA in bf16 autocast (the candidate's code then runs on the GPU, still in its
            unprivileged sandbox; see docs/sandbox.md)
  seeds     names of built-in seed designs (softmax, linear, sliding_window,
            mamba) or sources; default all four
"""

from __future__ import annotations

import ast
import copy
import random
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from cambrian import Candidate, Domain, MetricSpec, Options
from cambrian.execution.harness import check_source
from cambrian.plugins.domains.attention.phases import FinalEvaluation
from cambrian.scaling.data import CorpusOption
from cambrian.scaling.device import DeviceName, check_device

SEEDS_DIR = Path(__file__).parent / "seeds"
SEED_NAMES = ("softmax", "linear", "sliding_window", "mamba")
MAX_SOURCE_CHARS = 100_000

DEFAULTS: dict[str, Any] = {
    "model": {"d_model": 64, "n_heads": 4, "n_layers": 2},
    "tasks": {
        # MQAR: 4 key-value pairs then 4 queries (seq 16); recall needs content-based lookup
        "mqar": {"num_kv_pairs": 4, "num_queries": 4, "num_keys": 16, "num_values": 16,
                 "steps": 150, "batch_size": 32, "lr": 3e-3, "n_train": 4096, "n_eval": 256},
        # ListOps at a CPU-sized length (LRA uses up to 2000 tokens)
        "listops": {"max_len": 32, "max_depth": 2, "max_args": 4,
                    "steps": 150, "batch_size": 32, "lr": 3e-3, "n_train": 4096, "n_eval": 256},
        # byte-level LM on the built-in corpus
        "lm": {"seq_len": 64, "steps": 150, "batch_size": 8, "lr": 3e-3, "train_tokens": 1_000_000,
               "eval_tokens": 8192},
    },
    "weights": {"mqar": 1.0, "listops": 1.0, "lm": 1.0},
    "corpus": {"source": "stdlib"},
    "cost": {"batch": 8, "seq": 128},
    "cache_dir": None,
    "device": "auto",
}

INTERFACE = """\
Write a Python module (standard library, torch and numpy only) that defines

    class Mixer(torch.nn.Module):
        def __init__(self, d_model: int, n_heads: int = 4, **kw): ...
        def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, T, d_model] -> [B, T, d_model]

a causal token mixer: output position t may depend on input positions 0..t only (a design that
peeks at future tokens is rejected). It is used as `x = x + Mixer(norm(x))`, alternating with
SwiGLU MLP layers, in a small model trained from scratch on CPU; there is no positional embedding
outside the mixer."""


class ModelOptions(Options):
    d_model: int = Field(64, ge=1)
    n_heads: int = Field(4, ge=1)
    n_layers: int = Field(2, ge=1, description="mixer layers")


class CostOptions(Options):
    batch: int = Field(8, ge=1)
    seq: int = Field(128, ge=1)


class AttentionOptions(Options):
    """Options overlay DEFAULTS: per-task options merge with the task's; listing tasks selects them."""

    model: ModelOptions = Field(ModelOptions(), description="the small model the mixer is trained in")
    tasks: dict[str, dict[str, Any] | None] | None = Field(
        None, description=f"tasks to train on ({', '.join(DEFAULTS['tasks'])}) with option overrides")
    weights: dict[str, float] | None = Field(None, description="task weights in the score")
    corpus: CorpusOption | None = Field(None, description="the LM task's corpus (stdlib by default; "
                                        "see cambrian.scaling.data.CorpusOption)")
    cost: CostOptions = Field(CostOptions(), description="the batch and length time per step is measured at")
    cache_dir: str | None = None
    device: DeviceName = Field("auto", description="where the small models train: auto, cpu, cuda, cuda:N")
    seeds: list[str] | None = Field(None, description=f"seed designs: names ({', '.join(SEED_NAMES)}) "
                                    "or sources")

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: dict[str, Any] | None) -> dict[str, Any] | None:
        for name, opts in (tasks or {}).items():
            if name not in DEFAULTS["tasks"]:
                raise ValueError(f"unknown task {name!r}; known: {', '.join(DEFAULTS['tasks'])}")
            unknown = sorted(set(opts or {}) - set(DEFAULTS["tasks"][name]))
            if unknown:
                raise ValueError(f"task {name!r}: unknown option {unknown[0]!r}; known: "
                                 f"{', '.join(DEFAULTS['tasks'][name])}")
        return tasks

    @field_validator("weights")
    @classmethod
    def _non_negative(cls, weights: dict[str, float] | None) -> dict[str, float] | None:
        bad = [k for k, w in (weights or {}).items() if w < 0]
        if bad:
            raise ValueError(f"weight of {bad[0]!r} is negative")
        return weights


def options_with_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """DEFAULTS overlaid with ``options`` (per-task options merge; listing tasks selects them)."""
    AttentionDomain.parse_options(options)  # types, bounds and names (ConfigError naming the key)
    out = copy.deepcopy(DEFAULTS)
    for key, value in options.items():
        if key == "tasks":
            out["tasks"] = {name: {**DEFAULTS["tasks"].get(name, {}), **(opts or {})}
                            for name, opts in value.items()}
            unknown = set(out["tasks"]) - set(DEFAULTS["tasks"])
            if unknown:
                raise ValueError(f"attention: unknown task(s) {sorted(unknown)}; known: {list(DEFAULTS['tasks'])}")
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    try:
        out["device"] = check_device(out["device"])
    except ValueError as exc:
        raise ValueError(f"attention: {exc}") from None
    return out


def seed_source(name: str) -> str:
    return (SEEDS_DIR / f"{name}.py").read_text()


class AttentionDomain(Domain):
    name = "attention"
    candidate_kind = "code"
    default_evaluator = "attention"
    preload = ("cambrian.scaling.data", "cambrian.scaling.synthetic")  # what its evaluation worker imports (the candidate runs nested)
    default_operators = ("seeds", "llm-draft", "llm-improve", "llm-debug")
    Options = AttentionOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.settings = options_with_defaults(options)

    @property
    def objective(self) -> MetricSpec:
        return MetricSpec(name="score", direction="max")

    def describe(self) -> str:
        tasks = ", ".join(self.settings["tasks"])
        m = self.settings["model"]
        return (f"{INTERFACE}\n\nModel: d_model={m['d_model']}, n_heads={m['n_heads']}, "
                f"{m['n_layers']} mixer layers. Tasks: {tasks}. The objective `score` is the weighted mean "
                "of MQAR and ListOps accuracy and 1 - bits_per_byte/8 on language modelling (higher is "
                "better); parameter count and measured time per step are reported too.")

    def seeds(self, rng: random.Random) -> list[Candidate]:
        given = self.options.seeds or list(SEED_NAMES)
        return [Candidate(kind="code", content=seed_source(s) if s in SEED_NAMES else s,
                          meta={"seed": s if s in SEED_NAMES else "custom"}) for s in given]

    def baselines(self) -> dict[str, Candidate]:
        return {"softmax": Candidate(kind="code", content=seed_source("softmax"), meta={"seed": "softmax"})}

    @classmethod
    def phase_classes(cls) -> dict[str, Any]:
        return {"final": FinalEvaluation}

    def phases(self, options: dict[str, Any]) -> list[Any]:
        return [FinalEvaluation(**(options["final"] or {}))] if "final" in options else []

    def validate(self, candidate: Candidate) -> Candidate:
        candidate = super().validate(candidate)
        tree = check_source(candidate.content, what="a mixer design is non-empty Python source",
                            max_chars=MAX_SOURCE_CHARS, tree=True)
        if not any(isinstance(n, ast.ClassDef) and n.name == "Mixer" for n in tree.body):
            raise ValueError("the module must define a top-level class `Mixer(nn.Module)`")
        return candidate
