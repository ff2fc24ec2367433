"""Trusted scoring of a saved model: load it (never the script's code), check it, score hidden data.

The script saves ``out/model.ts`` (TorchScript, via the task's ``save_model``)
or ``out/model.pt2`` (``torch.export``); loading either runs no Python the
agent wrote. The model maps ``idx (B, T) -> logits (B, T, V)``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


class ModelRejected(RuntimeError):
    """The saved model is missing, unloadable, of the wrong shape, not causal or not finite."""


def load_saved_model(out_dir: Path):
    import torch

    ts, pt2 = out_dir / "model.ts", out_dir / "model.pt2"
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


def check_causal(model, seq_len: int, vocab: int, seed: int = 0) -> None:
    """Logits before position ``cut`` must not change when only tokens from ``cut`` on change."""
    import torch

    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, vocab, (2, seq_len), generator=g)
    b = a.clone()
    cut = seq_len // 2
    b[:, cut:] = torch.randint(0, vocab, (2, seq_len - cut), generator=g)
    with torch.no_grad():
        la, lb = model(a), model(b)
    if tuple(la.shape) != (2, seq_len, vocab):
        raise ModelRejected(f"the saved model returns {list(la.shape)} for input [2, {seq_len}]; "
                            f"expected [2, {seq_len}, {vocab}]")
    if (la[:, :cut] - lb[:, :cut]).abs().max().item() > 1e-4 * (1 + la.abs().max().item()):
        raise ModelRejected("the saved model is not causal: its predictions peek at future tokens")


def bits_per_byte(model, tokens: np.ndarray, seq_len: int, max_tokens: int, batch_size: int = 32) -> float:
    """Bits per byte over consecutive windows of ``tokens`` (one token per byte)."""
    import torch
    import torch.nn.functional as F

    n = min(len(tokens) - 1, max_tokens) // seq_len
    if n == 0:
        raise ValueError(f"too few tokens ({len(tokens)}) for one window of {seq_len}")
    w = np.stack([tokens[i * seq_len:(i + 1) * seq_len + 1] for i in range(n)]).astype(np.int64)
    total = 0.0
    with torch.no_grad():
        for b in range(0, n, batch_size):
            x, y = torch.from_numpy(w[b:b + batch_size, :-1]), torch.from_numpy(w[b:b + batch_size, 1:])
            logits = model(x).float()
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
    bpb = total / (n * seq_len) / math.log(2)
    if not math.isfinite(bpb):
        raise ModelRejected(f"the saved model's loss on held-out data is {bpb}")
    return bpb
