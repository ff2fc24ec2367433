"""Options models as rows of text: name, type, default, description (for `cambrian plugins --options`)."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined


def type_name(annotation: Any) -> str:
    """A short readable type: ``int``, ``float | None``, ``'rank' | 'minmax'``, ``list[str]``."""
    if annotation is None or annotation is type(None):
        return "None"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "{" + ", ".join(annotation.model_fields) + "}"
    return getattr(annotation, "__name__", str(annotation))


def _bounds(field: Any) -> str:
    out = []
    for m in field.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "len >=")):
            if getattr(m, attr, None) is not None:
                out.append(f"{sym} {getattr(m, attr)}")
    return f" ({', '.join(out)})" if out else ""


def default_text(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default is PydanticUndefined else field.default
    if isinstance(value, BaseModel):
        value = value.model_dump()
    return json.dumps(value, default=str)


def primitive_rows(primitive: Any) -> list[tuple[str, str, str, str]]:
    """The same rows for a primitive's layer options (``Option`` records, not a pydantic model)."""
    rows = []
    for o in getattr(primitive, "options", ()):
        kind = " | ".join(json.dumps(c) for c in o.choices) if o.choices else o.type.__name__
        kind += " | None" if o.nullable else ""
        kind += f" (>= {o.minimum:g})" if o.minimum is not None else ""
        rows.append((o.name, kind, json.dumps(o.default, default=str), o.doc))
    return rows


def options_rows(model: type[BaseModel]) -> list[tuple[str, str, str, str]]:
    """One (name, type with bounds, default, description) row per field of ``model``."""
    return [(name, type_name(f.annotation) + _bounds(f), default_text(f), f.description or "")
            for name, f in model.model_fields.items()]
