"""The primitive contract: options, formulas, and a builder, importable without torch.

A primitive is a descriptor object. It declares its options (with types and
defaults), checks them against the model's dims, gives its parameter count,
forward FLOPs per token and cache size as closed-form formulas, and builds the
``nn.Module`` (the only step that imports torch). Modules map ``x [B, T, d_model]``
to ``[B, T, d_model]`` and must be causal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from cambrian.architectures.spec import ArchSpec


class SpecError(ValueError):
    """An invalid architecture spec; the message is one readable line."""


_NO_DEFAULT = object()


@dataclass(frozen=True)
class Option:
    """One option of a primitive: its type, default and meaning.

    ``type`` is ``int``, ``float``, ``bool`` or ``str``. ``nullable`` options accept
    ``None`` (the default then usually means "derive from the dims").
    """

    name: str
    type: type
    default: Any
    doc: str = ""
    nullable: bool = False
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None

    def check(self, value: Any, where: str) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise SpecError(f"{where}: option {self.name!r} must not be null")
        ok = isinstance(value, self.type) and not (self.type is not bool and isinstance(value, bool))
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise SpecError(f"{where}: option {self.name!r} must be {self.type.__name__}"
                            f"{' or null' if self.nullable else ''}, got "
                            f"{type(value).__name__} {value!r}")
        if self.choices is not None and value not in self.choices:
            raise SpecError(f"{where}: option {self.name!r} must be one of "
                            f"{', '.join(map(repr, self.choices))}, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise SpecError(f"{where}: option {self.name!r} must be >= {self.minimum}, got {value!r}")
        return value


@dataclass(frozen=True)
class Flops:
    """Forward FLOPs per token (multiply-add = 2 FLOPs).

    ``matmul``: dense projections, convolutions and attention-score products;
    ``other``: the sequence-mixing work of recurrent scans (elementwise, estimated).
    """

    matmul: float
    other: float = 0.0

    @property
    def total(self) -> float:
        return self.matmul + self.other


@dataclass(frozen=True)
class Cache:
    """What a layer keeps per sequence during autoregressive decoding, in elements.

    ``per_token`` elements are held for each token of context (a KV cache), up to
    ``max_tokens`` tokens (a sliding window) or without bound (``None``);
    ``fixed`` elements are held regardless of length (recurrent and conv state).
    """

    per_token: int = 0
    fixed: int = 0
    max_tokens: int | None = None

    def elements(self, seq_len: int) -> int:
        held = seq_len if self.max_tokens is None else min(seq_len, self.max_tokens)
        return self.per_token * held + self.fixed


class Primitive:
    """Base class of architecture primitives; subclass it and register an instance.

    Subclasses set ``name``, ``kind`` (``"token"`` or ``"channel"``), ``options`` and
    ``description``, and implement :meth:`params`, :meth:`flops`, :meth:`cache`
    and :meth:`build`. :meth:`resolve` fills derived defaults (``None`` -> a number)
    and :meth:`check` raises :class:`SpecError` for dims that don't fit.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "token"
    description: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()

    # -- options -----------------------------------------------------------------

    def normalize(self, given: dict[str, Any], spec: "ArchSpec", where: str) -> dict[str, Any]:
        """Type-check ``given``, fill defaults, resolve derived ones, check dims."""
        known = {o.name: o for o in self.options}
        for key in given:
            if key not in known:
                names = ", ".join(known) or "none"
                raise SpecError(f"{where}: unknown option {key!r} (options: {names})")
        opts = {name: opt.check(given.get(name, opt.default), where) for name, opt in known.items()}
        opts = self.resolve(opts, spec)
        self.check(opts, spec, where)
        return opts

    def resolve(self, opts: dict[str, Any], spec: "ArchSpec") -> dict[str, Any]:
        return opts

    def check(self, opts: dict[str, Any], spec: "ArchSpec", where: str) -> None:
        return None

    # -- formulas ----------------------------------------------------------------

    def params(self, opts: dict[str, Any], d_model: int) -> int:
        raise NotImplementedError

    def flops(self, opts: dict[str, Any], d_model: int, seq_len: int) -> Flops:
        raise NotImplementedError

    def cache(self, opts: dict[str, Any], d_model: int) -> Cache:
        return Cache()

    # -- the module ----------------------------------------------------------------

    def build(self, opts: dict[str, Any], spec: "ArchSpec", layer_index: int) -> Any:
        """Return an ``nn.Module`` mapping ``[B, T, d_model]`` to ``[B, T, d_model]``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"
