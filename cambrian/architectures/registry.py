"""The primitive registry: name -> descriptor. The one place specs look primitives up.

Built-ins are registered at import. More arrive two ways, both into this registry:
:func:`register_primitive` (a script, a test, the attention pack's runner), and
*sources*: callables that return the primitives some provider offers right now.
Cambrian's plugin side adds one source, the ``cambrian_primitives`` hook of the
process's plugin manager (cambrian/plugins/__init__.py), so a plugin's primitive is
usable in specs as soon as the plugin is registered, with no call to remember.
This module imports nothing outside ``cambrian.architectures``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from cambrian.architectures.primitives.base import Primitive, SpecError
from cambrian.architectures.primitives.builtin import BUILTIN_PRIMITIVES

PrimitiveSource = Callable[[], Iterable[Any]]  # -> primitives (classes or instances), each with a name

_REGISTRY: dict[str, Primitive] = {}
_SOURCES: list[PrimitiveSource] = []
_FROM_SOURCES: dict[int, tuple[Any, Primitive]] = {}  # id(offered class/object) -> (it, checked instance)


def _checked(primitive: Primitive | type[Primitive]) -> Primitive:
    inst = primitive() if isinstance(primitive, type) else primitive
    name = getattr(inst, "name", "")
    if not name or not isinstance(name, str):
        raise SpecError(f"primitive {inst!r} has no name")
    if not isinstance(inst, Primitive):
        raise SpecError(f"primitive {name!r} ({type(inst).__qualname__}) must subclass "
                        "cambrian.architectures.Primitive")
    if inst.kind not in ("token", "channel"):
        raise SpecError(f"primitive {name!r}: kind must be 'token' or 'channel', got {inst.kind!r}")
    return inst


def register_primitive(primitive: Primitive | type[Primitive], *, replace: bool = False) -> Primitive:
    """Register a primitive (a class is instantiated); returns the registered instance."""
    inst = _checked(primitive)
    old = _REGISTRY.get(inst.name)
    if old is not None and not replace and type(old) is not type(inst):
        raise SpecError(f"a different primitive named {inst.name!r} is already registered "
                        f"({type(old).__module__}.{type(old).__qualname__})")
    _REGISTRY[inst.name] = inst
    return inst


def unregister_primitive(name: str) -> None:
    _REGISTRY.pop(name, None)


def add_source(source: PrimitiveSource) -> None:
    """Consult ``source()`` for names not registered directly (added once; idempotent)."""
    if source not in _SOURCES:
        _SOURCES.append(source)


def remove_source(source: PrimitiveSource) -> None:
    if source in _SOURCES:
        _SOURCES.remove(source)


def _offered() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for source in _SOURCES:
        for item in source():
            out.setdefault(getattr(item, "name", ""), item)
    return out


def get_primitive(name: str) -> Primitive:
    """The primitive ``name``; :class:`SpecError` names the known ones."""
    inst = _REGISTRY.get(name)
    if inst is not None:
        return inst
    item = _offered().get(name) if _SOURCES else None
    if item is None:
        raise SpecError(f"unknown primitive {name!r} (known: {', '.join(primitive_names())})")
    cached = _FROM_SOURCES.get(id(item))
    if cached is None or cached[0] is not item:  # instantiate and check an offered class once
        cached = _FROM_SOURCES[id(item)] = (item, _checked(item))
    return cached[1]


def is_builtin(name: str) -> bool:
    """Whether ``name`` resolves to one of Cambrian's own primitives (each tested for causality in
    its suite), not a third-party one nor one registered in place of a built-in's name."""
    return type(get_primitive(name)) in BUILTIN_PRIMITIVES


def primitive_names() -> list[str]:
    """Every usable name: registered directly or offered by a source."""
    return sorted(set(_REGISTRY) | {n for n in _offered() if n})


for _cls in BUILTIN_PRIMITIVES:
    register_primitive(_cls)
