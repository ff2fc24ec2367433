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
  seq_len (128), batch_size (16), train_tokens (150_000), val_tokens (32_768),
  lr (6e-3), warmup_steps (10): the proxy training budget (see evaluator.py; about 75
  optimizer steps, about 20 CPU-seconds for a 0.2M-parameter proxy);
  mqar_weight (0.0): score = bpb - mqar_weight * mqar_acc; mqar_steps (60) trains a
    fresh copy of the design on MQAR (mqar_kv_pairs (4) pairs and queries, 4 x that many
    keys and values) for that many steps of 32 sequences (0 = skip MQAR);
  corpus ("stdlib"), cache_dir (null = <run_dir>/cache): the LM data;
  device ("auto"): where evaluations train: auto (CUDA when present), cpu, cuda, cuda:N;
    on CUDA in bf16 autocast with the fused kernels that are installed (docs/scaling.md);
  compile (false): torch.compile each block (CUDA; the scaling steps' larger rungs);
  checkpoint_every (null): save a checkpoint every this many steps (in <run_dir>/checkpoints,
    per node), and resume from it when the evaluation is run again after a crash.
"""

from __future__ import annotations

import random
from typing import Any

from cambrian import Candidate, Domain, MetricSpec

FAMILIES: dict[str, tuple[str, ...]] = {
    "former": ("attention", "swiglu", "mlp"),
    "hybrid": ("attention", "mamba", "mamba2", "swiglu", "mlp"),
}
BASELINES = {"llama": "llama", "composer": "composer", "nemotron": "hybrid"}
BLOCK_LAYERS = {"llama": 2, "composer": 3, "hybrid": 2}  # residual layers per reference block

DEFAULTS: dict[str, Any] = {
    "family": "former", "primitives": None, "d_model": 64, "n_layers": 8,
    "min_layers": None, "max_layers": None, "seq_len": 128, "batch_size": 16,
    "train_tokens": 150_000, "val_tokens": 32_768, "lr": 6e-3, "warmup_steps": 10,
    "mqar_weight": 0.0, "mqar_steps": 60, "mqar_kv_pairs": 4, "corpus": "stdlib", "cache_dir": None,
    "device": "auto", "compile": False, "checkpoint_every": None,
}


def settings(options: dict[str, Any]) -> dict[str, Any]:
    """The domain options with defaults filled in (shared with the evaluator)."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"compose domain: unknown option {unknown[0]!r} (options: {', '.join(DEFAULTS)})")
    s = {**DEFAULTS, **options}
    from cambrian.scaling.device import check_device

    try:
        s["device"] = check_device(s["device"])
    except ValueError as exc:
        raise ValueError(f"compose domain: {exc}") from None
    if s["family"] not in FAMILIES:
        raise ValueError(f"compose domain: family must be one of {', '.join(FAMILIES)}, got {s['family']!r}")
    n = int(s["n_layers"])
    s["min_layers"] = int(s["min_layers"] if s["min_layers"] is not None else max(1, n - 2))
    s["max_layers"] = int(s["max_layers"] if s["max_layers"] is not None else n + 2)
    if not s["min_layers"] <= n <= s["max_layers"]:
        raise ValueError(f"compose domain: n_layers {n} is outside [min_layers, max_layers]")
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

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.s = settings(options)
        from cambrian.architectures import primitive_names
        self.primitives: tuple[str, ...] = tuple(self.s["primitives"] or FAMILIES[self.s["family"]])
        known = set(primitive_names())
        missing = [p for p in self.primitives if p not in known]
        if missing:
            raise ValueError(f"compose domain: unknown primitive {missing[0]!r} (known: {', '.join(sorted(known))})")

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

    def validate(self, candidate: Candidate) -> Candidate:
        candidate = super().validate(candidate)
        from cambrian.architectures import ArchSpec

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

    def seeds(self, rng: random.Random) -> list[Candidate]:
        """The family's reference patterns at the proxy dims (those whose depth fits)."""
        out = []
        for name in ("llama", "composer") + (("nemotron",) if self.s["family"] == "hybrid" else ()):
            try:
                out.append(self.validate(self._reference(name)))
            except ValueError:
                continue  # e.g. a composer stack whose depth is outside the bounds
        return out

    def _reference(self, name: str, d_model: int | None = None, n_layers: int | None = None) -> Candidate:
        from cambrian.architectures import reference_spec

        ref = BASELINES[name]
        depth = n_layers or int(self.s["n_layers"])
        blocks = max(1, round(depth / BLOCK_LAYERS[ref]))
        spec = reference_spec(ref, d_model=d_model or int(self.s["d_model"]), n_layers=blocks,
                              max_seq_len=int(self.s["seq_len"]))
        return Candidate(kind="spec", content=spec.to_dict(), meta={"baseline": name})

    def baselines(self) -> dict[str, Candidate]:
        """Llama-style, Composer-style 1:2 and a Nemotron-H-like hybrid, at the proxy dims."""
        return {name: self._reference(name) for name in BASELINES}

    def phases(self, options: dict[str, Any]) -> list[Any]:
        from cambrian.plugins.domains.compose.phases import make_phases

        return make_phases(self, options)

    # -- prompts -----------------------------------------------------------------------

    def describe(self) -> str:
        from cambrian.plugins.domains.compose.prompts import task_description

        return task_description(self)
