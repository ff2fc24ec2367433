"""How the report writes numbers, dates, durations and design labels for a person.

Numbers: counts with SI suffixes (232k parameters, 1.5G FLOPs), scores with four
significant digits. Dates: ``2026-12-01 14:55 UTC``, never an epoch float.
Designs: a layer pattern is written with short codes for its primitives and
repeats folded (``(A·M)×4``), with a legend of the codes; any other candidate is
shortened at a word boundary, never in the middle of a word.
"""

from __future__ import annotations

import math
import re
import textwrap
import time
from dataclasses import dataclass, field
from typing import Any

from cambrian.scaling.ladder import minimal_layers

_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
# Metrics that are counts: written with SI suffixes (params 232k, flops_per_token 1.2M).
_COUNT = re.compile(r"(^|_)(params|parameters|flops|tokens|bytes|count|n)($|_)")


def si(value: float | None, digits: int = 3) -> str:
    """232_123 -> '232k', 1.5e9 -> '1.5G', 12 -> '12'; '-' for anything not a finite number."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "-"
    for scale, suffix in _SI:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g}{suffix}"
    return f"{value:.{digits}g}"


def number(value: float | None, digits: int = 4) -> str:
    """Four significant digits: 2.123, 0.0596, 1.235e+05; '-' for a missing value."""
    if not isinstance(value, (int, float)):
        return "-"
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}" if abs(value) >= 1 else f"{value:.{digits}f}".rstrip("0").rstrip(".")


def metric(name: str, value: float | None) -> str:
    """A metric value as a reader expects it: counts with SI suffixes, scores with 4 digits."""
    if value is None:
        return "-"
    return si(value) if _COUNT.search(name) else number(value)


def percent(fraction: float | None) -> str:
    """0.015 -> '+1.5%', -0.009 -> '-0.9%'; '-' for a missing value."""
    return "-" if fraction is None else f"{100 * fraction:+.1f}%"


def date(ts: float | None) -> str:
    """An epoch timestamp as '2026-12-01 14:55:16 UTC'."""
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(ts)))


def duration(seconds: float | None) -> str:
    """75 -> '1 min 15 s', 4000 -> '1 h 6 min', 0.4 -> '0.4 s'."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = float(seconds)
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


def shorten(text: str, width: int = 60) -> str:
    """One line of at most ``width`` characters, cut at a word boundary with an ellipsis."""
    return textwrap.shorten(" ".join(str(text).split()), width=width, placeholder=" …")


def wrap(text: str, width: int = 40) -> str:
    """Lines of at most ``width`` characters, broken between words (for figure labels)."""
    return "\n".join(textwrap.wrap(str(text), width=width, break_long_words=False,
                                   break_on_hyphens=False)) or str(text)


# -- design labels ---------------------------------------------------------------------


def _layers(content: Any) -> list[tuple[str, str]] | None:
    """A design's layers as (primitive, the options it sets that its primitive would not derive
    on its own, as "key=value ..."): an edit of a hand-built design that changes only options
    is otherwise shown as that design. None when ``content`` has no layers."""
    if isinstance(content, dict) and isinstance(content.get("layers"), list):
        try:
            layers = minimal_layers(content)
        except (KeyError, TypeError, ValueError):  # not a whole spec (a test's or a pattern's layers)
            layers = content["layers"]
        return [(str(layer.get("primitive", "?")),
                 " ".join(f"{k}={v}" for k, v in (layer.get("options") or {}).items()))
                if isinstance(layer, dict) else (str(layer), "") for layer in layers]
    if isinstance(content, str) and re.fullmatch(r"[\w\-.]+(,[\w\-.]+)*( x\d+)?", content.strip()):
        # a pattern string from a phase summary: "attention,swiglu" or "attention,swiglu x2"
        body, _, times = content.strip().partition(" x")
        return [(p, "") for p in body.split(",") if p] * (int(times) if times else 1)
    return None


def _with_options(name: str, options: str) -> str:
    return f"{name}({options})" if options else name


def layer_names(content: Any) -> list[str] | None:
    """A design's layers by name, each with the options it sets (``mamba2(expand=4)``), or None."""
    layers = _layers(content)
    return None if layers is None else [_with_options(p, o) for p, o in layers]


def _fold(codes: list[str]) -> str:
    """Fold a repeating unit: A M A M A M -> (A·M)×3; consecutive repeats: M M M -> M×3."""
    n = len(codes)
    for p in range(1, n // 2 + 1):
        if n % p == 0 and codes == codes[:p] * (n // p):
            unit = "·".join(codes[:p])
            return f"({unit})×{n // p}" if p > 1 else f"{unit}×{n}"
    out, i = [], 0
    while i < n:
        j = i
        while j < n and codes[j] == codes[i]:
            j += 1
        out.append(codes[i] if j - i == 1 else f"{codes[i]}×{j - i}")
        i = j
    return "·".join(out)


@dataclass
class Labels:
    """Short, unambiguous labels for the designs of one report, and the legend they need."""

    codes: dict[str, str] = field(default_factory=dict)  # primitive -> code

    def _code(self, name: str) -> str:
        if name not in self.codes:
            taken = set(self.codes.values())
            letters = re.sub(r"[^A-Za-z]", "", name) or "X"
            digits = re.sub(r"[^0-9]", "", name)  # mamba2 -> M2, not a longer prefix of mamba
            for k in range(1, len(letters) + 1):
                code = letters[:1].upper() + letters[1:k].lower() + digits
                if code not in taken:
                    break
            else:
                code = f"{letters[:1].upper()}{digits}_{len(taken)}"
            self.codes[name] = code
        return self.codes[name]

    def design(self, content: Any, width: int = 60) -> str:
        """A design's label: a folded pattern of codes, a short vector, or shortened text."""
        layers = _layers(content)
        if layers:
            return _fold([_with_options(self._code(p), o) for p, o in layers])  # M2(expand=4)
        if isinstance(content, (list, tuple)) and all(isinstance(v, (int, float)) for v in content):
            return shorten("[" + ", ".join(f"{v:.3g}" for v in content) + "]", width)
        if isinstance(content, str):
            first = next((ln.strip(" #\"'") for ln in content.splitlines() if ln.strip(" #\"'")), "")
            return shorten(first, width)
        return shorten(str(content), width)

    def legend(self) -> list[tuple[str, str]]:
        return sorted((c, n) for n, c in self.codes.items())
