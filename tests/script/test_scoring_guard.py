"""The script pack's trusted scoring of a saved model under the shared causality guard's rules:
a TorchScript model can keep state between calls, so one that remembers the windows of its full
pass and answers a prefix with the remembered continuation must not pass prefix re-scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cambrian.plugins.domains.script.scoring import bits_per_byte, check_causal
from cambrian.scaling.causality import NotCausal

SEQ = 16


class Lookup(torch.nn.Module):
    """Causal on random bytes (the probes); on text (every byte < 128) it answers each position
    with the next byte, read from the window itself or, for a prefix, from the windows it saw."""

    def __init__(self, n_max: int, seq_len: int):
        super().__init__()
        self.register_buffer("seen", torch.zeros(n_max, seq_len, dtype=torch.long))
        self.register_buffer("count", torch.zeros(1, dtype=torch.long))
        self.seq_len = seq_len

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, L = idx.shape[0], idx.shape[1]
        out = torch.zeros(B, L, 256)
        for b in range(B):
            row = idx[b]
            if bool(row.max() >= 128):
                continue  # a probe: uniform, hence causal, output
            full = row
            found = L == self.seq_len
            if found:
                k = int(self.count[0])
                if k < self.seen.shape[0]:
                    self.seen[k] = row
                    self.count[0] = k + 1
            else:
                for i in range(int(self.count[0])):
                    if bool(torch.equal(self.seen[i, :L], row)):
                        full, found = self.seen[i], True
                        break
            if found:
                n = min(L, full.shape[0] - 1)
                out[b, torch.arange(n), full[1:n + 1]] = 30.0
        return out


class Bigram(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.table = torch.nn.Embedding(256, 256)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.table(idx)


def saved(module: torch.nn.Module, path) -> str:
    torch.jit.save(torch.jit.script(module), str(path))
    return str(path)


# "text" (bytes < 128) whose 128 windows of SEQ all start differently: every prefix names one window
TEXT = np.random.default_rng(0).integers(0, 128, 128 * SEQ + 1).astype(np.uint8)
TEXT[:-1:SEQ] = np.arange(128)


def test_a_saved_model_that_remembers_its_windows_is_not_causal(tmp_path):
    path = saved(Lookup(256, SEQ), tmp_path / "lookup.ts")
    check_causal(torch.jit.load(path), SEQ, 256)  # it passes the probes on random bytes
    with pytest.raises(NotCausal):
        bits_per_byte(lambda: torch.jit.load(path), TEXT, SEQ, 2048)


def test_a_stateless_causal_model_scores(tmp_path):
    path = saved(Bigram(), tmp_path / "bigram.ts")
    check_causal(torch.jit.load(path), SEQ, 256)
    bpb = bits_per_byte(lambda: torch.jit.load(path), TEXT, SEQ, 2048)
    assert 7.0 < bpb < 10.0  # an untrained table of N(0, 1) logits: about chance (8 bits), no better
