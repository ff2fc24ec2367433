"""Primitive descriptors (torch-free): the base contract and the built-ins."""

from cambrian.architectures.primitives.base import Cache, Flops, Option, Primitive, SpecError
from cambrian.architectures.primitives.builtin import BUILTIN_PRIMITIVES

__all__ = ["Cache", "Flops", "Option", "Primitive", "SpecError", "BUILTIN_PRIMITIVES"]
