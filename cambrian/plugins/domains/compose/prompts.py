"""The task description LLM operators get for the compose domain.

It names the objective, the proxy budget, every allowed primitive with its
options, and the exact spec JSON format, so a reply with one ```json block
parses through :meth:`Domain.parse` and validates through the domain.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from cambrian.architectures import get_primitive

if TYPE_CHECKING:
    from cambrian.plugins.domains.compose.domain import ComposeDomain


def primitive_lines(names: tuple[str, ...]) -> list[str]:
    lines = []
    for name in names:
        p = get_primitive(name)
        opts = "; ".join(f"{o.name} ({o.type.__name__}{', null ok' if o.nullable else ''}, default "
                         f"{o.default!r}{', one of ' + '/'.join(map(str, o.choices)) if o.choices else ''})"
                         for o in p.options) or "no options"
        lines.append(f"- `{name}` ({p.kind} mixer): {p.description} Options: {opts}.")
    return lines


def task_description(domain: ComposeDomain) -> str:
    s = domain.s
    example = {**domain.dims, "layers": [
        {"primitive": domain.primitives[0], "options": {}},
        {"primitive": domain.primitives[-1], "options": {}}]}
    score = ("score = bpb" if not s["mqar_weight"] else
             f"score = bpb - {s['mqar_weight']} * mqar_acc (MQAR associative-recall accuracy)")
    return "\n".join([
        "Design the layer stack of a byte-level causal language model by composing primitives.",
        (f"Each layer is a pre-norm residual block x = x + primitive(norm(x)). The model is a proxy: "
         f"d_model {s['d_model']}, between {s['min_layers']} and {s['max_layers']} layers "
         f"(reference depth {s['n_layers']}), context {s['seq_len']} bytes, trained from scratch on "
         f"{s['train_tokens']:,} tokens of Python source code, then scored by validation bits per byte "
         f"(bpb, lower is better). The objective is {score}; lower is better."),
        ("Token mixers move information across positions; channel mixers transform each position. "
         "A good stack interleaves both; their ratio, order and options are what you decide."),
        "Allowed primitives:",
        *primitive_lines(domain.primitives),
        ("Answer with the complete spec as one ```json block: an object with d_model "
         f"{s['d_model']}, vocab_size 256, max_seq_len {s['seq_len']} and a `layers` list, each layer "
         "{\"primitive\": NAME, \"options\": {...}} (omit options to take the defaults). Example:"),
        "```json\n" + json.dumps(example, indent=1) + "\n```",
    ])
