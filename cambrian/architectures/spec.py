"""Architecture specs: global dims plus a list of layers, as data.

A spec is validated on construction: every layer names a registered primitive
and only its options, with the right types, and dims that divide. Defaults are
filled in and derived values resolved, so two specs that build the same model
have the same :meth:`ArchSpec.canonical_hash`.

    {"d_model": 128, "vocab_size": 256, "max_seq_len": 256,
     "layers": [{"primitive": "attention", "options": {"n_heads": 4}},
                {"primitive": "swiglu"}]}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cambrian.architectures.primitives.base import Option, SpecError
from cambrian.architectures.registry import get_primitive

# Global fields: everything except d_model has a default.
GLOBAL_OPTIONS: tuple[Option, ...] = (
    Option("d_model", int, None, "residual width", minimum=1),
    Option("vocab_size", int, 256, "byte-level by default", minimum=1),
    Option("max_seq_len", int, 1024, "longest context the model is meant for", minimum=1),
    Option("norm", str, "rmsnorm", "pre-norm and final norm", choices=("rmsnorm", "layernorm")),
    Option("norm_eps", float, 1e-5, "", minimum=0.0),
    Option("pos", str, "rope", "default positions for attention layers", choices=("rope", "none")),
    Option("rope_theta", float, 10000.0, "", minimum=1.0),
    Option("tie_embeddings", bool, True, "share the input embedding and the output head"),
    Option("init_std", float, 0.02, "std of the normal init of weights", minimum=0.0),
)
_GLOBAL_NAMES = [o.name for o in GLOBAL_OPTIONS]


@dataclass(frozen=True)
class LayerSpec:
    """One residual layer: ``x = x + primitive(norm(x))``."""

    primitive: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"primitive": self.primitive, "options": dict(self.options)}


@dataclass(frozen=True)
class ArchSpec:
    """A validated architecture; construct with :meth:`from_dict` (or the file readers)."""

    d_model: int
    layers: tuple[LayerSpec, ...]
    vocab_size: int = 256
    max_seq_len: int = 1024
    norm: str = "rmsnorm"
    norm_eps: float = 1e-5
    pos: str = "rope"
    rope_theta: float = 10000.0
    tie_embeddings: bool = True
    init_std: float = 0.02

    # -- construction ------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ArchSpec":
        """Validate ``data`` and return the spec with every default filled in."""
        if not isinstance(data, dict):
            raise SpecError(f"a spec must be a mapping, got {type(data).__name__}")
        unknown = [k for k in data if k not in _GLOBAL_NAMES and k != "layers"]
        if unknown:
            raise SpecError(f"spec: unknown field {unknown[0]!r} (fields: "
                            f"{', '.join(_GLOBAL_NAMES)}, layers)")
        if data.get("d_model") is None:
            raise SpecError("spec: 'd_model' is required")
        dims = {o.name: o.check(data.get(o.name, o.default), "spec") for o in GLOBAL_OPTIONS}
        raw_layers = data.get("layers")
        if not isinstance(raw_layers, (list, tuple)) or not raw_layers:
            raise SpecError("spec: 'layers' must be a non-empty list")
        # Primitives resolve their defaults against the global dims: a layer-less draft.
        draft = cls(layers=(), **dims)
        layers = tuple(_layer(raw, i, draft) for i, raw in enumerate(raw_layers))
        return cls(layers=layers, **dims)

    @classmethod
    def from_json(cls, text: str) -> "ArchSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"spec is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_yaml(cls, text: str) -> "ArchSpec":
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SpecError(f"spec is not valid YAML: {' '.join(str(exc).split())}") from None
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | Path) -> "ArchSpec":
        p = Path(path)
        text = p.read_text()
        return cls.from_json(text) if p.suffix == ".json" else cls.from_yaml(text)

    # -- output ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The canonical dict: every field, every option, defaults filled in."""
        out: dict[str, Any] = {name: getattr(self, name) for name in _GLOBAL_NAMES}
        out["layers"] = [layer.to_dict() for layer in self.layers]
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def canonical_hash(self) -> str:
        """16 hex chars of SHA-256 over the canonical JSON (sorted keys)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # -- conveniences ------------------------------------------------------------

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def pattern(self) -> str:
        """A short human-readable layer pattern, e.g. ``attention,swiglu x4``."""
        names = [layer.primitive for layer in self.layers]
        for period in range(1, len(names) + 1):
            if len(names) % period == 0 and names == names[:period] * (len(names) // period):
                reps = len(names) // period
                return ",".join(names[:period]) + (f" x{reps}" if reps > 1 else "")
        return ",".join(names)  # pragma: no cover - period len(names) always matches

    def __hash__(self) -> int:  # options dicts are unhashable; the canonical hash is the identity
        return hash(self.canonical_hash())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArchSpec) and self.to_dict() == other.to_dict()


def _layer(raw: Any, index: int, draft: ArchSpec) -> LayerSpec:
    where = f"layer {index}"
    if isinstance(raw, str):
        raw = {"primitive": raw}
    if isinstance(raw, LayerSpec):
        raw = raw.to_dict()
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: must be a mapping with 'primitive' and 'options', "
                        f"got {type(raw).__name__}")
    extra = [k for k in raw if k not in ("primitive", "options")]
    if extra:
        raise SpecError(f"{where}: unknown field {extra[0]!r} (fields: primitive, options)")
    name = raw.get("primitive")
    if not isinstance(name, str):
        raise SpecError(f"{where}: 'primitive' must be a string, got {name!r}")
    try:
        prim = get_primitive(name)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None
    given = raw.get("options") or {}
    if not isinstance(given, dict):
        raise SpecError(f"{where} ({name}): 'options' must be a mapping, got {type(given).__name__}")
    return LayerSpec(name, prim.normalize(given, draft, f"{where} ({name})"))
