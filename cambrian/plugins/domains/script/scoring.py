"""Trusted scoring of a saved model: load it (never the script's code), check it, score hidden data.

The script saves ``out/model.ts`` (TorchScript, via the task's ``save_model``)
or ``out/model.pt2`` (``torch.export``); loading either runs no Python the
agent wrote. The model maps ``idx (B, T) -> logits (B, T, V)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cambrian.scaling.causality import (
    NotCausal,
    check_forward,
    describe,
    prefix_leak,
    prefix_positions,
    probe_shapes,
    scoring_order,
)


class ModelRejected(RuntimeError):
    """The saved model is missing, unloadable, of the wrong shape or not finite (not causal:
    :class:`~cambrian.scaling.causality.NotCausal`, which makes the node invalid)."""


def load_saved_model(out_dir: Path):
    import torch  # heavy: here and below, only the LM modes score with it

    ts, pt2 = out_dir / "model.ts", out_dir / "model.pt2"
    if ts.is_symlink() or pt2.is_symlink():  # never follow a link the script left
        raise ModelRejected("the saved model is a link; save the model itself")
    try:
        if ts.is_file():
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return torch.jit.load(str(ts), map_location="cpu")
        if pt2.is_file():
            return torch.export.load(str(pt2)).module()
    except Exception as exc:
        raise ModelRejected(f"the saved model does not load: {type(exc).__name__}: {exc}") from None
    raise ModelRejected("the script saved no model (out/model.ts or out/model.pt2); the metric is computed "
                        "from the saved model only, never from what the script prints")


def check_causal(model, seq_len: int, vocab: int, eval_batch: int = 32) -> None:
    """The shared causality guard (cambrian.scaling.causality) on the loaded model, in this
    (trusted) process: random shapes and the real evaluation shape, random future perturbations.
    Fresh randomness each time: the model can't be tuned to the probes."""
    import torch  # heavy: see load_saved_model

    rng = np.random.default_rng()

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = model(torch.from_numpy(x))
        if tuple(logits.shape) != (*x.shape, vocab):
            raise ModelRejected(f"the saved model returns {list(logits.shape)} for input {list(x.shape)}; "
                                f"expected {[*x.shape, vocab]}")
        return logits.float().numpy()

    check_forward(forward, rng, probe_shapes(rng, [(eval_batch, seq_len)], max_len=seq_len),
                  lambda shape: rng.integers(0, vocab, shape), "the saved model's prediction")


def bits_per_byte(load: Callable[[], Any], tokens: np.ndarray, seq_len: int, max_tokens: int,
                  batch_size: int = 32) -> float:
    """Bits per byte over consecutive windows of ``tokens`` (one token per byte), of the model
    ``load()`` returns. A saved model can keep state between calls (TorchScript buffers and
    attributes), so the rules of prefix re-scoring (cambrian.scaling.causality) apply: the windows
    are scored in a random order, and each prefix pass runs on a copy loaded afresh that never
    saw the full windows."""
    # heavy: see load_saved_model
    import torch
    import torch.nn.functional as F

    n = min(len(tokens) - 1, max_tokens) // seq_len
    if n == 0:
        raise ValueError(f"too few tokens ({len(tokens)}) for one window of {seq_len}")
    rng = np.random.default_rng()
    w = np.stack([tokens[i * seq_len:(i + 1) * seq_len + 1] for i in scoring_order(rng, n)]).astype(np.int64)
    total = 0.0
    recheck = {0, int(rng.integers(0, n)) // batch_size * batch_size}  # batches re-scored by prefix
    model = load()

    def fresh_forward(x: np.ndarray) -> np.ndarray:
        return load()(torch.from_numpy(x)).float().numpy()

    with torch.no_grad():
        for b in range(0, n, batch_size):
            x, y = torch.from_numpy(w[b:b + batch_size, :-1]), torch.from_numpy(w[b:b + batch_size, 1:])
            logits = model(x).float()
            if b in recheck:  # the scored windows themselves: prefix passes must agree with the full one
                leak = prefix_leak(fresh_forward, x.numpy(), logits.numpy(),
                                   prefix_positions(rng, len(x), seq_len, n=4))
                if leak is not None:
                    raise NotCausal(describe(leak, "on the evaluation windows, the prediction"))
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
    bpb = total / (n * seq_len) / math.log(2)
    if not math.isfinite(bpb):
        raise ModelRejected(f"the saved model's loss on held-out data is {bpb}")
    return bpb
