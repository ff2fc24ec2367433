"""A token-mixer design (a Python file defining ``Mixer``) as an architecture primitive.

    prim = MixerPrimitive.from_file("my_mixer.py", name="my_mixer")
    register_primitive(prim)          # specs may now say {"primitive": "my_mixer"}

Parameters are counted by building the module once (torch imported then);
forward FLOPs per token are estimated as 2 x parameters (the projections): a
design's sequence-mixing work is not known in closed form, so the attention
pack measures cost instead. No torch at module level.
"""

from __future__ import annotations

import hashlib
import sys
import types
from functools import lru_cache
from pathlib import Path
from typing import Any

from cambrian.architectures.primitives.base import Flops, Option, Primitive

ENTRY = "Mixer"


@lru_cache(maxsize=64)
def load_mixer_class(path: str) -> type:
    """Import the module at ``path`` (under a name derived from its content) and return ``Mixer``.

    The file is read and executed by the path as given, never made absolute: in the
    sandbox only relative paths resolve (a private /tmp, parent folders it may not enter).
    """
    source = Path(path).read_text()
    modname = "cambrian_mixer_" + hashlib.sha256(source.encode()).hexdigest()[:12]
    if modname not in sys.modules:
        module = types.ModuleType(modname)
        module.__file__ = path
        sys.modules[modname] = module  # before exec: dataclasses and pickling look it up
        try:
            exec(compile(source, path, "exec"), module.__dict__)
        except BaseException:
            del sys.modules[modname]
            raise
    cls = getattr(sys.modules[modname], ENTRY, None)
    if not isinstance(cls, type):
        raise ValueError(f"{path} defines no class {ENTRY!r}")
    return cls


class MixerPrimitive(Primitive):
    """A token mixer loaded from a design file. Options: ``n_heads`` and ``extra``
    (a mapping of further keyword arguments for ``Mixer.__init__``)."""

    kind = "token"
    options = (Option("n_heads", int, 4, "heads, passed to Mixer(d_model, n_heads)", minimum=1),)

    def __init__(self, name: str, path: str | Path, description: str = "") -> None:
        self.name = name  # instance attribute: one class serves every registered design
        self.path = str(path)  # as given: inside the sandbox only relative paths resolve
        self.description = description or f"token mixer designed in {self.path}"

    @classmethod
    def from_file(cls, path: str | Path, name: str | None = None) -> "MixerPrimitive":
        return cls(name or Path(path).stem, path)

    def mixer_class(self) -> type:
        return load_mixer_class(self.path)

    @lru_cache(maxsize=16)
    def _count(self, n_heads: int, d_model: int) -> int:
        import torch  # heavy: the pack (and its primitives' descriptors) load without it

        with torch.device("meta"):
            module = self.mixer_class()(d_model, n_heads)
        return sum(p.numel() for p in module.parameters())

    def params(self, opts: dict[str, Any], d_model: int) -> int:
        return self._count(opts["n_heads"], d_model)

    def flops(self, opts: dict[str, Any], d_model: int, seq_len: int) -> Flops:
        return Flops(matmul=2.0 * self.params(opts, d_model))

    def build(self, opts: dict[str, Any], spec: Any, layer_index: int) -> Any:
        return self.mixer_class()(spec.d_model, opts["n_heads"])

    def __eq__(self, other: object) -> bool:  # the registry replaces a design only if it changed
        return isinstance(other, MixerPrimitive) and (self.name, self.path) == (other.name, other.path)

    def __hash__(self) -> int:
        return hash((self.name, self.path))
