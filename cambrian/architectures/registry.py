"""The primitive registry: name -> descriptor, built-ins first, plugins on request.

Third-party primitives arrive through the ``cambrian_primitives`` hook; call
:func:`sync_from_plugins` (the compose domain does) to make them usable in specs.
"""

from __future__ import annotations

from typing import Any

from cambrian.architectures.primitives.base import Primitive, SpecError
from cambrian.architectures.primitives.builtin import BUILTIN_PRIMITIVES

_REGISTRY: dict[str, Primitive] = {}


def register_primitive(primitive: Primitive | type[Primitive], *, replace: bool = False) -> Primitive:
    """Register a primitive (a class is instantiated); returns the registered instance."""
    inst = primitive() if isinstance(primitive, type) else primitive
    name = getattr(inst, "name", "")
    if not name or not isinstance(name, str):
        raise SpecError(f"primitive {inst!r} has no name")
    if not isinstance(inst, Primitive):
        raise SpecError(f"primitive {name!r} ({type(inst).__qualname__}) must subclass "
                        "cambrian.architectures.Primitive")
    if inst.kind not in ("token", "channel"):
        raise SpecError(f"primitive {name!r}: kind must be 'token' or 'channel', got {inst.kind!r}")
    old = _REGISTRY.get(name)
    if old is not None and not replace and type(old) is not type(inst):
        raise SpecError(f"a different primitive named {name!r} is already registered "
                        f"({type(old).__module__}.{type(old).__qualname__})")
    _REGISTRY[name] = inst
    return inst


def unregister_primitive(name: str) -> None:
    _REGISTRY.pop(name, None)


def get_primitive(name: str) -> Primitive:
    """The registered primitive ``name``; :class:`SpecError` names the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SpecError(f"unknown primitive {name!r} (known: {', '.join(primitive_names())})") from None


def primitive_names() -> list[str]:
    return sorted(_REGISTRY)


def sync_from_plugins(plugin_manager: Any = None) -> list[str]:
    """Register every primitive offered through the ``cambrian_primitives`` hook.

    Uses the process-wide plugin manager unless one is given; returns the names
    registered. Built-ins come back through the built-in plugin and are kept.
    """
    if plugin_manager is None:
        from cambrian.core.plugins import get_plugin_manager  # lazy: core is optional here

        plugin_manager = get_plugin_manager()
    names = []
    for name, reg in plugin_manager.registry()["primitive"].items():
        register_primitive(reg.component, replace=True)
        names.append(name)
    return sorted(names)


for _cls in BUILTIN_PRIMITIVES:
    register_primitive(_cls)
