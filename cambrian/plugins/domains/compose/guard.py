"""Primitives a plugin added go through the shared causality guard before compose trains them.

Cambrian's own primitives are tested for causality in its suite; a third-party primitive (a
plugin's ``cambrian_primitives``, a registered attention design, or anything registered under
a built-in's name) is not, and a language model that sees the next token scores an impossible
bits per byte. So, for every layer of a spec whose primitive is not a built-in:

1. before training (:func:`check_primitives`): the layer's module, built as the model builds
   it, is probed by :func:`cambrian.scaling.causality.check_forward` at the real training,
   evaluation and MQAR shapes and at random ones, with the future perturbed at random;
   each (primitive, options, width) passes once per process;
2. after training (:func:`check_trained`): the trained model, from tokens to logits, the same
   way: a primitive can be causal at its initial weights and learn to peek (a gate on the
   future that starts at zero).

A failure is :class:`~cambrian.scaling.causality.NotCausal`: the node is ``invalid`` with the
position and layer in its reason. This catches a plugin's mistakes; a plugin is trusted code
(it runs in the evaluation worker) and is not defended against.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from cambrian.architectures.registry import get_primitive, is_builtin
from cambrian.scaling.causality import check_forward, probe_shapes

_PASSED: set[tuple[Any, ...]] = set()  # (primitive, its class, options, d_model, shapes) checked here


def third_party_layers(spec) -> list[int]:
    """Indices of the spec's layers whose primitive is not one of Cambrian's built-ins."""
    return [i for i, layer in enumerate(spec.layers) if not is_builtin(layer.primitive)]


def check_primitives(spec, real: list[tuple[int, int]]) -> None:
    """Step 1 for every third-party layer of ``spec``; ``real``: the (batch, length) shapes the
    evaluation will run (training, scoring, MQAR)."""
    import torch

    real = sorted(set(real))
    for i in third_party_layers(spec):
        layer = spec.layers[i]
        prim = get_primitive(layer.primitive)
        key = (layer.primitive, type(prim), json.dumps(layer.options, sort_keys=True, default=str),
               spec.d_model, tuple(real))
        if key in _PASSED:
            continue
        rng = np.random.default_rng()
        module = prim.build(layer.options, spec, i).eval()

        def forward(x: np.ndarray, module=module) -> np.ndarray:
            with torch.no_grad():
                return module(torch.from_numpy(x)).float().numpy()

        check_forward(forward, rng, probe_shapes(rng, real, max_len=max(t for _, t in real)),
                      lambda shape, rng=rng: rng.standard_normal(shape).astype(np.float32),
                      f"primitive {layer.primitive!r} (layer {i})", feature=(spec.d_model,))
        _PASSED.add(key)


def check_trained(model, spec, real: list[tuple[int, int]], what: str) -> None:
    """Step 2: the trained ``model`` (tokens -> logits) under the guard, when ``spec`` has a
    third-party layer (built-in-only models are left alone: nothing to check, nothing to pay)."""
    import torch

    if not third_party_layers(spec):
        return
    rng = np.random.default_rng()
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x).to(device)).float().cpu().numpy()

    try:
        check_forward(forward, rng, probe_shapes(rng, sorted(set(real)), max_len=max(t for _, t in real)),
                      lambda shape: rng.integers(0, spec.vocab_size, shape), f"the trained {what} model's prediction")
    finally:
        model.train(was_training)
