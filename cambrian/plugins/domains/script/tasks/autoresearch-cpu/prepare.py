"""Read-only helpers of the task (do not edit): data, budget, evaluation, model export.

The harness puts ``data/train.bin`` and ``data/val.bin`` (UTF-8 bytes of the
built-in corpus, one token per byte) in the working directory; the hidden
split the final score is computed on is not here. ``save_model`` writes the
trained model as TorchScript to ``out/model.ts``: the harness loads that file,
never the script's code, checks it is causal and scores it on hidden data.
"""

import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

VOCAB_SIZE = 256
SEQ_LEN = int(os.environ.get("TASK_SEQ_LEN", "64"))  # the harness scores windows of this length
TIME_BUDGET_S = float(os.environ.get("TASK_TIME_BUDGET_S", "8"))  # training budget, CPU seconds
SEED = int(os.environ.get("TASK_SEED", "0"))
EVAL_TOKENS = int(os.environ.get("TASK_EVAL_TOKENS", "32768"))  # val tokens scored, as the harness does
OUT = Path("out")


def load_split(split: str) -> np.ndarray:
    """Tokens (bytes) of ``train`` or ``val`` as a uint8 array."""
    return np.fromfile(Path("data") / f"{split}.bin", dtype=np.uint8)


def get_batch(tokens: np.ndarray, batch_size: int, rng: np.random.Generator):
    """Random windows: inputs and next-byte targets, LongTensors of shape (batch_size, SEQ_LEN)."""
    starts = rng.integers(0, len(tokens) - SEQ_LEN - 1, size=batch_size)
    w = np.stack([tokens[s:s + SEQ_LEN + 1] for s in starts]).astype(np.int64)
    return torch.from_numpy(w[:, :-1]), torch.from_numpy(w[:, 1:])


class Budget:
    """Training budget in CPU seconds of this process (not wall clock: load from other
    processes on a shared machine does not change how much training a run gets)."""

    def __init__(self, seconds: float = TIME_BUDGET_S) -> None:
        self.seconds, self.start = seconds, time.process_time()

    @property
    def used(self) -> float:
        return time.process_time() - self.start

    @property
    def progress(self) -> float:
        return min(1.0, self.used / self.seconds)

    def done(self) -> bool:
        return self.used >= self.seconds


@torch.no_grad()
def evaluate_bpb(model: torch.nn.Module, tokens: np.ndarray, max_tokens: int = EVAL_TOKENS,
                 batch_size: int = 32) -> float:
    """Bits per byte of ``model`` on consecutive windows of ``tokens`` (what the harness computes)."""
    was = model.training
    model.eval()
    n = min(len(tokens) - 1, max_tokens) // SEQ_LEN
    w = np.stack([tokens[i * SEQ_LEN:(i + 1) * SEQ_LEN + 1] for i in range(n)]).astype(np.int64)
    total = 0.0
    for b in range(0, n, batch_size):
        x, y = torch.from_numpy(w[b:b + batch_size, :-1]), torch.from_numpy(w[b:b + batch_size, 1:])
        total += F.cross_entropy(model(x).float().reshape(-1, VOCAB_SIZE), y.reshape(-1), reduction="sum").item()
    model.train(was)
    return total / (n * SEQ_LEN) / math.log(2)


def save_model(model: torch.nn.Module) -> Path:
    """Trace ``model`` (idx (B, SEQ_LEN) -> logits (B, SEQ_LEN, 256)) to ``out/model.ts``."""
    import warnings

    OUT.mkdir(exist_ok=True)
    model.eval()
    example = torch.zeros(2, SEQ_LEN, dtype=torch.long)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated upstream but loads without running our code
        traced = torch.jit.trace(model, example, check_trace=False)
    path = OUT / "model.ts"
    traced.save(str(path))
    return path
