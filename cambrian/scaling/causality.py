"""The causality guard: a sequence model's output at position t may depend on inputs 0..t only.

Shared by every pack that scores sequence models it did not write (``attention``'s mixers,
``script``'s saved models) and by any mechanism a plugin adds. A check at one fixed shape is
not enough: a design can be causal at that shape only, or peek at the future only at some
positions. So the guard

1. probes several shapes: random batch sizes and lengths *and* the real training and
   evaluation shapes (:func:`probe_shapes`);
2. perturbs the future at random: from a random cut on, a random subset of positions
   (at least the one right after the cut) gets new values (:func:`perturb`); the outputs
   before the cut must not move (:func:`first_leak`);
3. at scoring time re-checks the trained model on the real evaluation windows by prefix
   re-scoring: the output at t of a pass over ``x[:, :t+1]`` must equal the full pass's
   output at t, for sampled t (:func:`prefix_positions`, :func:`prefix_leak`).

Prefix re-scoring proves something only if the prefix pass can't know what follows the prefix.
A model is code (a Python mixer) or a program with state (a TorchScript module can keep
buffers), so a model instance that ran the full pass may remember the windows it saw and
answer a prefix with the continuation it remembers, consistently with its full pass. Hence
the rules both packs follow:

- the prefix passes run on a model instance that never held the full windows: a fresh
  sandboxed process given only the prefixes (``attention``: the candidate is Python), or a
  freshly loaded copy of a saved model per pass (``script``); nothing flows from the full pass
  to them;
- the prefixes come from distinct rows (:func:`prefix_positions`) of non-overlapping windows,
  so all of them together hold no token past any sampled t;
- the full pass never learns which positions are re-scored, and scores the windows in a
  random order (:func:`scoring_order`): the windows are consecutive slices of one text, so in
  order a model that sees several at once could read the token after one window's last
  position at the start of the next (a position prefix re-scoring never samples).

The functions take plain arrays or a forward callable, so the harness can run them in its own
process (on a model it loaded as data) or compare what a sandboxed runner computed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cambrian.architectures.registry import get_primitive, is_builtin
from cambrian.core.errors import InvalidCandidate

TOL = 1e-4  # relative to 1 + max |output|


class NotCausal(InvalidCandidate):
    """A design's outputs before some position changed with inputs after it."""


@dataclass(frozen=True)
class Probe:
    """One probe: inputs ``a`` and ``b`` equal before ``cut`` (per row), different somewhere after."""

    a: np.ndarray  # [B, T, ...]
    b: np.ndarray
    cut: np.ndarray  # [B] int


def probe_shapes(rng: np.random.Generator, real: Iterable[tuple[int, int]], *, max_len: int,
                 n_random: int = 3, max_batch: int = 4) -> list[tuple[int, int]]:
    """(batch, length) pairs: the ``real`` training/evaluation shapes plus ``n_random`` random ones."""
    shapes = [(int(b), int(t)) for b, t in real]
    for _ in range(n_random):
        shapes.append((int(rng.integers(1, max_batch + 1)), int(rng.integers(2, max(3, max_len + 1)))))
    out: list[tuple[int, int]] = []
    for s in shapes:  # keep order, drop repeats
        if s not in out and s[1] >= 2:
            out.append(s)
    return out


def perturb(rng: np.random.Generator, a: np.ndarray, fresh: Callable[[tuple[int, ...]], np.ndarray]) -> Probe:
    """``a`` [B, T, ...] with, per row, a random cut in [1, T-1] and new values (from ``fresh``)
    at the position right after it and at a random subset of the later ones."""
    B, T = a.shape[:2]
    b = a.copy()
    cut = rng.integers(1, T, size=B)
    for i in range(B):
        later = np.arange(cut[i], T)
        chosen = later[rng.random(len(later)) < 0.5]
        chosen = np.union1d(chosen, [cut[i]])
        b[i, chosen] = fresh((len(chosen), *a.shape[2:]))
    return Probe(a=a, b=b, cut=cut)


def first_leak(ya: np.ndarray, yb: np.ndarray, cut: np.ndarray, tol: float = TOL) -> tuple[int, int] | None:
    """(row, position) of the first output before its row's cut that differs, or None."""
    ya, yb = np.asarray(ya, dtype=np.float64), np.asarray(yb, dtype=np.float64)
    scale = 1.0 + float(np.nanmax(np.abs(ya))) if ya.size else 1.0
    for i, c in enumerate(np.asarray(cut)):
        d = np.abs(ya[i, :c] - yb[i, :c]).reshape(int(c), -1).max(axis=-1)  # (c,)
        bad = np.flatnonzero(~(d <= tol * scale))  # NaN counts as a leak
        if bad.size:
            return i, int(bad[0])
    return None


def check_forward(forward: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator,
                  shapes: Iterable[tuple[int, int]], sample: Callable[[tuple[int, ...]], np.ndarray], what: str,
                  *, feature: tuple[int, ...] = (), tol: float = TOL) -> None:
    """Probe ``forward`` (run here, in this process) at each (batch, length) of ``shapes``: an
    input of shape (batch, length, *feature) drawn by ``sample``, and a copy with its future
    perturbed (:func:`perturb`). :class:`NotCausal` names the first leak."""
    for B, T in shapes:
        p = perturb(rng, sample((B, T, *feature)), sample)
        leak = first_leak(forward(p.a), forward(p.b), p.cut, tol)
        if leak is not None:
            raise NotCausal(describe(leak, f"{what} on a [{B}, {T}] input"))


def prefix_positions(rng: np.random.Generator, n_rows: int, length: int, n: int = 8) -> list[tuple[int, int]]:
    """``min(n, n_rows)`` (row, t) pairs to re-score, each in its own row, t in [0, length-2] (the
    last position has no future in its window). Distinct rows: the prefixes given to one
    process then hold no token that follows another one's t."""
    if n_rows == 0 or length < 2:
        return []
    rows = rng.choice(n_rows, size=min(n, n_rows), replace=False)
    ts = rng.integers(0, length - 1, size=len(rows))
    return sorted((int(r), int(t)) for r, t in zip(rows, ts))


def prefixes(x: np.ndarray, positions: Iterable[tuple[int, int]]) -> list[np.ndarray]:
    """The inputs of the prefix passes: ``x[row:row+1, :t+1]`` for each (row, t), nothing more."""
    return [np.ascontiguousarray(x[r:r + 1, :t + 1]) for r, t in positions]


def scoring_order(rng: np.random.Generator, n_rows: int) -> np.ndarray:
    """A random order to score ``n_rows`` consecutive evaluation windows in (see the module's rules)."""
    return rng.permutation(n_rows)


def prefix_leak(forward: Callable[[np.ndarray], np.ndarray], x: np.ndarray, full: np.ndarray,
                positions: Iterable[tuple[int, int]], tol: float = TOL) -> tuple[int, int] | None:
    """The first (row, t) whose output from ``forward(x[row:row+1, :t+1])`` differs from ``full[row, t]``."""
    full = np.asarray(full, dtype=np.float64)
    scale = 1.0 + float(np.nanmax(np.abs(full))) if full.size else 1.0
    for r, t in positions:
        y = np.asarray(forward(x[r:r + 1, :t + 1]), dtype=np.float64)[0, t]
        if not float(np.abs(y - full[r, t]).max()) <= tol * scale:
            return r, t
    return None


def first_mismatch(full: np.ndarray, pre: np.ndarray, tol: float = TOL) -> int | None:
    """Index of the first row of ``pre`` (prefix-pass outputs) that differs from ``full``."""
    full, pre = np.asarray(full, dtype=np.float64), np.asarray(pre, dtype=np.float64)
    scale = 1.0 + float(np.nanmax(np.abs(full))) if full.size else 1.0
    for i in range(len(full)):
        if not float(np.abs(full[i] - pre[i]).max()) <= tol * scale:
            return i
    return None


def describe(leak: tuple[int, int], what: str) -> str:
    r, t = leak
    return f"not causal: {what} at position {t} (row {r}) depends on later inputs; the design peeks at future tokens"


# -- specs: primitives a plugin added -----------------------------------------------------------
# Cambrian's own primitives are tested for causality in its suite; a third-party primitive (a
# plugin's ``cambrian_primitives``, a registered attention design, or anything registered under
# a built-in's name) is not, and a language model that sees the next token scores an impossible
# bits per byte. The one train-and-score path (cambrian.scaling.runs: train_lm, train_task) and
# compose's MQAR run every layer whose primitive is not a built-in through the guard:
#   1. before training (check_spec): the layer's module, built as the model builds it, at the
#      real training and scoring shapes and random ones, the future perturbed at random; each
#      (primitive, options, width, shapes) passes once per process;
#   2. after training (check_trained): the trained model, tokens to logits, the same way: a
#      primitive can be causal at its initial weights and learn to peek (a gate on the future
#      that starts at zero).
# This catches a plugin's mistakes; a plugin is trusted code (it runs in the evaluation worker)
# and is not defended against. Built-in-only specs pay nothing.

_PASSED: set[tuple[Any, ...]] = set()  # (primitive, class, options, width, shapes, device) passed here


def third_party_layers(spec) -> list[int]:
    """Indices of the spec's layers whose primitive is not one of Cambrian's built-ins."""
    return [i for i, layer in enumerate(spec.layers) if not is_builtin(layer.primitive)]


def check_spec(spec, real: list[tuple[int, int]], device: Any = "cpu") -> None:
    """Step 1 for every third-party layer of ``spec`` (an ArchSpec), on ``device``; ``real``: the
    (batch, length) shapes the run will use (training, scoring)."""
    import torch  # heavy: the probes' arithmetic (numpy) is imported with the packs, at plugin load

    real = sorted(set(real))
    for i in third_party_layers(spec):
        layer = spec.layers[i]
        prim = get_primitive(layer.primitive)
        key = (layer.primitive, type(prim), json.dumps(layer.options, sort_keys=True, default=str),
               spec.d_model, tuple(real), str(device))
        if key in _PASSED:
            continue
        rng = np.random.default_rng()
        module = prim.build(layer.options, spec, i).to(device).eval()

        def forward(x: np.ndarray, module=module) -> np.ndarray:
            with torch.no_grad():
                return module(torch.from_numpy(x).to(device)).float().cpu().numpy()

        check_forward(forward, rng, probe_shapes(rng, real, max_len=max(t for _, t in real)),
                      lambda shape, rng=rng: rng.standard_normal(shape).astype(np.float32),
                      f"primitive {layer.primitive!r} (layer {i})", feature=(spec.d_model,))
        _PASSED.add(key)


def check_trained(model, spec, real: list[tuple[int, int]], what: str) -> None:
    """Step 2: the trained ``model`` (tokens -> logits) under the guard, when ``spec`` has a
    third-party layer (built-in-only models are left alone: nothing to check, nothing to pay)."""
    import torch  # heavy: see check_spec

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
