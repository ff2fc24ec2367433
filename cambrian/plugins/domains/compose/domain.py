"""The ``compose`` domain: language-model architectures composed from primitives.

A candidate (kind ``spec``) is an architecture spec dict (see
:mod:`cambrian.architectures.spec`) at the proxy width and depth: global dims
plus a list of layers, each a primitive from the family's set. ``validate``
runs :meth:`ArchSpec.from_dict` and returns the canonical dict (defaults
filled in), so two specs that build the same model have the same
:attr:`Candidate.hash` and the engine evaluates them once.

Options (defaults):
  family ("former"): "former" (attention + MLP variants) or "hybrid" (attention +
    Mamba / Mamba-2 + MLP variants);
  primitives (null): the primitive names agents may use; null = the family's set.
    Any registered primitive works, third-party ones included (``cambrian_primitives``);
  d_model (64), n_layers (8): the proxy width and depth;
  min_layers / max_layers (n_layers - 2 / n_layers + 2): depth bounds for mutations
    and for LLM proposals;
  space ("layers"): the structured space model-based scaffolds (bo) search: "layers", any
    primitive in any slot; "blocks", token mixers (attention, Mamba...) in the even slots and
    channel mixers (SwiGLU, MLP...) in the odd ones, the mixer-then-MLP block that
    Transformers and the hand-built hybrids are made of;
  seq_len (128), batch_size (8), train_tokens (600_000), val_tokens (131_072),
  lr (3e-3), warmup_steps (10): the proxy training budget (see evaluator.py; about 590
  optimizer steps, 19-45 CPU-seconds for a 0.2M-parameter proxy depending on the mixers).
  Chosen by the sweep in docs/benchmarks.md (bench/proxy_sweep.py): there every reference
  (llama, composer, the Mamba-2 and Mamba-1 hybrids) is below the count-based bigram floor
  of the val split; the former default (batch 16, 150k tokens, 6e-3: 73 steps) left llama
  and composer above it;
  mqar_weight (0.0): score = bpb - mqar_weight * mqar_acc; mqar_steps (60) trains a
    fresh copy of the design on MQAR (mqar_kv_pairs (4) pairs and queries, 4 x that many
    keys and values) for that many steps of 32 sequences (0 = skip MQAR);
  corpus ("stdlib"): the LM data: stdlib; {source: text, train: PATH, val: PATH, hidden: PATH}
    (your files or folders, the split fixed by you); {source: text, paths: [...]} (split by
    document); {source: hf, path, name, text_field} (:data:`cambrian.scaling.data.CorpusOption`,
    checked when the config loads); cache_dir (null = <run_dir>/cache): its shards;
  device ("auto"): where evaluations train: auto (CUDA when present), cpu, cuda, cuda:N;
    on CUDA in bf16 autocast with the fused kernels that are installed (docs/scaling.md);
  compile (false): torch.compile each block (CUDA; the scaling steps' larger rungs);
  checkpoint_every (null): save a checkpoint every this many steps (in <run_dir>/checkpoints,
    per node), and resume from it when the evaluation is run again after a crash.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from cambrian import Candidate, Domain, MetricSpec, Options
from cambrian.architectures import ArchSpec, count, get_primitive, primitive_names, reference_spec
from cambrian.plugins.domains.compose.prompts import task_description
from cambrian.scaling.data import CorpusOption
from cambrian.scaling.device import DeviceName

FAMILIES: dict[str, tuple[str, ...]] = {
    "former": ("attention", "swiglu", "mlp"),
    "hybrid": ("attention", "mamba", "mamba2", "swiglu", "mlp"),
}
# baseline name -> reference spec (cambrian.architectures.references): nemotron is the
# Mamba-2 hybrid (Nemotron-H style), jamba the same layout with Mamba-1 mixers (Jamba's, no MoE)
BASELINES = {"llama": "llama", "composer": "composer", "nemotron": "hybrid", "jamba": "mamba_hybrid"}
BLOCK_LAYERS = {"llama": 2, "composer": 3, "hybrid": 2, "mamba_hybrid": 2}  # residual layers per block

class ComposeOptions(Options):
    """The compose domain's options (see the module docstring)."""

    family: Literal["former", "hybrid"] = Field("former", description="the primitive family")
    primitives: list[str] | None = Field(None, min_length=1,
                                         description="primitive names agents may use (null: the family's)")
    d_model: int = Field(64, ge=1, description="proxy width")
    n_layers: int = Field(8, ge=1, description="proxy depth")
    min_layers: int | None = Field(None, ge=1, description="fewest layers (null: n_layers - 2)")
    max_layers: int | None = Field(None, ge=1, description="most layers (null: n_layers + 2)")
    space: Literal["layers", "blocks"] = Field("layers", description="bo's space: any primitive per "
                                               "layer slot, or token mixers in even slots and channel "
                                               "mixers in odd ones (blocks)")
    seq_len: int = Field(128, ge=2)
    batch_size: int = Field(8, ge=1)
    train_tokens: int = Field(600_000, ge=1, description="proxy training budget in tokens (fidelity 1)")
    val_tokens: int = Field(131_072, ge=1, description="tokens scored for bpb, in windows spread over the split")
    lr: float = Field(3e-3, gt=0)
    warmup_steps: int = Field(10, ge=0)
    mqar_weight: float = Field(0.0, ge=0, description="score = bpb - mqar_weight * mqar_acc")
    mqar_steps: int = Field(60, ge=0, description="MQAR training steps (0: skip MQAR)")
    mqar_kv_pairs: int = Field(4, ge=1)
    corpus: CorpusOption = Field("stdlib", validate_default=True,
                                 description="stdlib; {source: text, train, val, hidden}; {source: text, "
                                 "paths}; or {source: hf, path, name, text_field}")
    cache_dir: str | None = Field(None, description="data cache (null: <run_dir>/cache)")
    device: DeviceName = Field("auto", description="auto, cpu, cuda or cuda:N")
    compile: bool = Field(False, description="torch.compile the model")
    checkpoint_every: int | None = Field(None, ge=1, description="training steps between checkpoints")

    @field_validator("primitives")
    @classmethod
    def _known_primitives(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return names

        known = set(primitive_names())
        missing = [p for p in names if p not in known]
        if missing:
            raise ValueError(f"unknown primitive {missing[0]!r} (known: {', '.join(sorted(known))})")
        return names

    @model_validator(mode="after")
    def _depth_bounds(self) -> "ComposeOptions":
        lo = self.min_layers if self.min_layers is not None else max(1, self.n_layers - 2)
        hi = self.max_layers if self.max_layers is not None else self.n_layers + 2
        if not lo <= self.n_layers <= hi:
            raise ValueError(f"n_layers {self.n_layers} is outside [min_layers {lo}, max_layers {hi}]")
        kinds = {get_primitive(p).kind for p in self.primitives or FAMILIES[self.family]}
        if self.space == "blocks" and not {"token", "channel"} <= kinds:
            raise ValueError("space: blocks needs token mixers and channel mixers among the primitives; "
                             "add both kinds or use space: layers")
        return self


DEFAULTS: dict[str, Any] = {k: f.default for k, f in ComposeOptions.model_fields.items()}


def settings(options: dict[str, Any]) -> dict[str, Any]:
    """The domain options with defaults filled in (shared with the evaluator); raises ConfigError."""
    s = ComposeDomain.parse_options(options).model_dump()
    n = s["n_layers"]
    s["min_layers"] = s["min_layers"] if s["min_layers"] is not None else max(1, n - 2)
    s["max_layers"] = s["max_layers"] if s["max_layers"] is not None else n + 2
    return s


class ComposeDomain(Domain):
    name = "compose"
    candidate_kind = "spec"
    default_evaluator = "compose"
    default_operators = ("spec-random", "spec-mutate", "spec-crossover")
    description = "Compose a language-model architecture from primitives (a layer list)."
    # What an evaluation builds and trains with. fused:available loads the fused CPU kernels
    # (built in about a second, once per machine); the selective scan's torch extension takes
    # a minute or more to build the first time, so it is left to the first evaluation that
    # uses Mamba.
    preload = ("cambrian.architectures.model", "cambrian.scaling.data", "cambrian.scaling.trainer",
               "cambrian.scaling.synthetic", "cambrian.architectures.modules.fused:available")
    Options = ComposeOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.s = settings(options)
        self.primitives: tuple[str, ...] = tuple(self.s["primitives"] or FAMILIES[self.s["family"]])
        # each primitive's kind ("token" mixer or "channel" mixer), and the primitives by kind
        # in the set's order: read by the operators' draws and edits, so computed once
        self.kind_of: dict[str, str] = {p: get_primitive(p).kind for p in self.primitives}
        self.by_kind: dict[str, list[str]] = {}
        for p in self.primitives:
            self.by_kind.setdefault(self.kind_of[p], []).append(p)

    @property
    def objective(self) -> MetricSpec:
        return MetricSpec(name="score", direction="min")

    # -- specs -------------------------------------------------------------------------

    @property
    def dims(self) -> dict[str, Any]:
        """The global fields every proxy candidate has."""
        return {"d_model": int(self.s["d_model"]), "vocab_size": 256, "max_seq_len": int(self.s["seq_len"])}

    def spec(self, layers: list[Any]) -> Candidate:
        """A candidate from a list of layers (names or {primitive, options} dicts), canonicalised."""
        return self.validate(Candidate(kind="spec", content={**self.dims, "layers": list(layers)}))

    def inspect(self, candidate: Candidate) -> dict[str, Any]:
        """Parameters, FLOPs per token, KV cache and state of a spec (counted, not trained)."""
        c = count(ArchSpec.from_dict(candidate.content))
        return {"params": c.params, "non_embedding_params": c.non_embedding_params,
                "flops_per_token": c.flops_per_token, "kv_cache_bytes_per_token": c.kv_cache_bytes_per_token,
                "state_bytes": c.state_bytes, "layers": [lc.primitive for lc in c.layers]}

    def curve(self, run_dir: Any, node: Any) -> list[tuple[float, float]]:
        # here and below: a cycle (phases imports the evaluator, which imports this module)
        from cambrian.plugins.domains.compose.phases import curve_points

        return curve_points(Path(run_dir), node)

    def validate(self, candidate: Candidate) -> Candidate:
        candidate = super().validate(candidate)

        content = candidate.content
        if not isinstance(content, dict):
            raise ValueError(f"a compose candidate is a JSON object (a spec), got {type(content).__name__}")  # noqa: TRY004 - the engine rejects on ValueError
        content = {**self.dims, **content}
        for key, want in self.dims.items():
            if content[key] != want:
                raise ValueError(f"{key} must be {want} at the proxy scale, got {content[key]!r}")
        spec = ArchSpec.from_dict(content)  # SpecError is a ValueError with a readable message
        lo, hi = self.s["min_layers"], self.s["max_layers"]
        if not lo <= spec.n_layers <= hi:
            raise ValueError(f"the spec has {spec.n_layers} layers; the proxy allows {lo} to {hi}")
        foreign = sorted({layer.primitive for layer in spec.layers} - set(self.primitives))
        if foreign:
            raise ValueError(f"primitive {foreign[0]!r} is not in this campaign's set "
                             f"({', '.join(self.primitives)})")
        return candidate.model_copy(update={"content": spec.to_dict()})

    def _slot_choices(self, i: int) -> list[str]:
        """The primitives layer slot ``i`` may hold: any (space: layers), or a token mixer in
        an even slot and a channel mixer in an odd one (space: blocks)."""
        if self.s["space"] == "layers":
            return list(self.primitives)
        return list(self.by_kind.get("token" if i % 2 == 0 else "channel", []))

    def search_space(self) -> dict[str, dict[str, Any]]:
        """Depth in [min_layers, max_layers] and one primitive per layer slot (the first
        ``n_layers`` slots are used), with default options: the space Composer searches.
        With ``space: blocks`` a slot's choices are of one kind (:meth:`_slot_choices`):
        every point is then a stack of mixer-then-MLP blocks, as the hand-built designs are,
        and a random draw is no longer mostly MLPs in a row or mixers with no MLP between."""
        lo, hi = self.s["min_layers"], self.s["max_layers"]
        space: dict[str, dict[str, Any]] = {"n_layers": {"low": lo, "high": hi, "int": True}}
        for i in range(hi):
            space[f"layer_{i}"] = {"choices": self._slot_choices(i)}
        return space

    def features(self, params: dict[str, Any]) -> dict[str, float]:
        """How many layers of each primitive the point's design has (its depth is their sum).

        The space gives every layer slot its own parameter, so a model of it (TPE) learns what
        a primitive does in slot 3 apart from what it does in slot 4, and with a campaign's
        20-odd screenings it never learns that, say, Mamba layers help wherever they sit.
        A model of the counts does (``bo`` with ``model: gp``); the order of the layers is
        left to its draws."""
        layers = [params[f"layer_{i}"] for i in range(int(params["n_layers"]))]
        return {f"n_{name}": float(layers.count(name)) for name in self.primitives}

    def from_params(self, params: dict[str, Any]) -> Candidate:
        n = int(params["n_layers"])
        return self.spec([params[f"layer_{i}"] for i in range(n)])

    def to_params(self, candidate: Candidate) -> dict[str, Any] | None:
        """The point of the space with the spec's layer pattern: the same primitives in the same
        order (the space gives them their default options: the hand-built references' attention
        has 2 heads of 32 where the space's has 4 of 16, and an edit may have changed an option,
        but the pattern is what bo models). The slots past its depth, which the design does not
        use, repeat the pattern (two layers back at a time with ``space: blocks``, so each keeps
        its kind). None when the depth or a primitive is outside this campaign's space."""
        if "params" in candidate.meta:
            return candidate.meta["params"]
        layers = candidate.content.get("layers") if isinstance(candidate.content, dict) else None
        if not layers or not self.s["min_layers"] <= len(layers) <= self.s["max_layers"]:
            return None
        names = [layer["primitive"] if isinstance(layer, dict) else layer for layer in layers]
        if any(name not in self._slot_choices(i) for i, name in enumerate(names)):
            return None
        n, point = len(names), {"n_layers": len(names)}
        for i in range(self.s["max_layers"]):
            if self.s["space"] == "layers":
                point[f"layer_{i}"] = names[i % n]
            else:
                j = n - 2 + (i - n) % 2 if i >= n else i  # the last layer of the slot's kind
                point[f"layer_{i}"] = names[j] if 0 <= j < n else self._slot_choices(i)[0]
        return point

    def seeds(self, rng: random.Random) -> list[Candidate]:
        """The family's reference patterns at the proxy dims (those whose depth fits)."""
        out = []
        for name in ("llama", "composer") + (("nemotron", "jamba") if self.s["family"] == "hybrid" else ()):
            try:
                out.append(self.validate(self._reference(name)))
            except ValueError:
                continue  # e.g. a composer stack whose depth is outside the bounds
        return out

    def _reference(self, name: str, d_model: int | None = None, n_layers: int | None = None) -> Candidate:
        ref = BASELINES[name]
        depth = n_layers or int(self.s["n_layers"])
        blocks = max(1, round(depth / BLOCK_LAYERS[ref]))
        spec = reference_spec(ref, d_model=d_model or int(self.s["d_model"]), n_layers=blocks,
                              max_seq_len=int(self.s["seq_len"]))
        return Candidate(kind="spec", content=spec.to_dict(), meta={"baseline": name})

    def baselines(self, n_layers: int | None = None) -> dict[str, Candidate]:
        """Llama-style, Composer-style 1:2, a Nemotron-H-like Mamba-2 hybrid and a Jamba-like
        Mamba-1 hybrid, at the proxy dims (or ``n_layers`` residual layers, as near as whole
        blocks allow)."""
        return {name: self._reference(name, n_layers=n_layers) for name in BASELINES}

    def phases(self, options: dict[str, Any]) -> list[Any]:
        from cambrian.plugins.domains.compose.phases import make_phases  # cycle, as in curve()

        return make_phases(self, options)

    @classmethod
    def phase_classes(cls) -> dict[str, Any]:
        from cambrian.plugins.domains.compose.phases import PHASES  # cycle, as in curve()

        return PHASES

    # -- prompts -----------------------------------------------------------------------

    def describe(self) -> str:
        return task_description(self)
