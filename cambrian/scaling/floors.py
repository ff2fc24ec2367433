"""Count-based floors: what a unigram and a bigram frequency model score on a split.

Every LM score is shown beside these two numbers. A trained model that does not
beat the bigram floor has learned no more than which token tends to follow which;
a proxy whose references sit above it ranks learning speed, not architecture.

Both models are fitted on the corpus's ``train`` split only, by counting:

- unigram: ``p(t) = (c(t) + k) / (N + k V)``, add-k smoothing with ``k = 0.5``
  (Krichevsky-Trofimov), so a token never seen in train costs a finite
  ``log2((N + k V) / k)`` bits;
- bigram (previous token): ``p(t | s) = (c(s, t) + a p_uni(t)) / (c(s) + a)``,
  add-k smoothing whose pseudo-counts follow the smoothed unigram instead of
  the uniform distribution (``a = k V`` pseudo-counts in all: for bytes, 128);
  a context seen rarely falls back to the unigram, and an unseen pair still costs
  a finite amount.

A split is scored the way the evaluators score it: the windows an LM evaluator
scores (:func:`cambrian.scaling.data.window_starts`: ``seq_len + 1`` tokens each,
spread over the split when ``val_tokens`` caps them), each target predicted from the
token before it inside its window; without a window length, the targets
``tokens[1..n]`` of a contiguous stretch (the first token only gives context). Bits per byte divide the total bits by
``n x`` the split's bytes per token, exactly like :func:`cambrian.scaling.data.bits_per_byte`.

Results are cached in the corpus's shard folder (one small JSON per split and
``n``, written atomically), so each floor is computed once per corpus.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cambrian.scaling.data import window_starts

K = 0.5  # add-k pseudo-count per token (Krichevsky-Trofimov)
_CHUNK = 1 << 22  # tokens per counting pass: bounds the int64 temporaries to ~32 MB
_DENSE_VOCAB = 4096  # up to this vocabulary the bigram table is a dense V x V array


@dataclass(frozen=True)
class Floors:
    """Bits per byte of the two count-based models on ``n`` scored tokens of a split."""

    split: str
    unigram_bpb: float
    bigram_bpb: float
    n_tokens: int  # scored targets
    k: float = K

    def metrics(self) -> dict[str, float]:
        """As evaluator metrics (recorded beside ``bpb``)."""
        return {"floor_unigram_bpb": self.unigram_bpb, "floor_bigram_bpb": self.bigram_bpb}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CountModel:
    """Unigram and previous-token bigram counts of a token stream, with the smoothing above."""

    def __init__(self, unigram: np.ndarray, pairs: Any, vocab_size: int, k: float = K) -> None:
        self.uni = unigram.astype(np.float64)  # (V,)
        self.pairs = pairs  # dense (V, V) counts, or (sorted codes, counts) for a large vocabulary
        self.V, self.k = int(vocab_size), float(k)
        self.p_uni = (self.uni + self.k) / (self.uni.sum() + self.k * self.V)  # (V,)
        self.alpha = self.k * self.V
        # Context counts as pairs see them (the last train token is no context).
        self.ctx = (pairs.sum(axis=1) if isinstance(pairs, np.ndarray)
                    else np.bincount(pairs[0] // self.V, weights=pairs[1], minlength=self.V))

    @classmethod
    def fit(cls, tokens: np.ndarray, vocab_size: int, k: float = K) -> CountModel:
        V = int(vocab_size)
        uni = np.zeros(V, dtype=np.int64)
        dense = V <= _DENSE_VOCAB
        pair_dense = np.zeros(V * V, dtype=np.int64) if dense else None
        codes_parts: list[np.ndarray] = []
        n = len(tokens)
        for start in range(0, n, _CHUNK):
            chunk = np.asarray(tokens[start:min(n, start + _CHUNK + 1)], dtype=np.int64)  # +1: the pair across
            uni += np.bincount(chunk[:_CHUNK], minlength=V)
            codes = chunk[:-1] * V + chunk[1:]
            if dense:
                pair_dense += np.bincount(codes, minlength=V * V)
            else:
                codes_parts.append(codes)
        if dense:
            pairs: Any = pair_dense.reshape(V, V)
        else:
            allc = np.concatenate(codes_parts) if codes_parts else np.zeros(0, dtype=np.int64)
            u, c = np.unique(allc, return_counts=True)
            pairs = (u, c.astype(np.float64))
        return cls(uni, pairs, V, k)

    def _pair_counts(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        if isinstance(self.pairs, np.ndarray):
            return self.pairs[prev, nxt].astype(np.float64)
        codes, counts = self.pairs
        if len(codes) == 0:
            return np.zeros(len(prev))
        q = prev * self.V + nxt
        i = np.minimum(np.searchsorted(codes, q), len(codes) - 1)
        return np.where(codes[i] == q, counts[i], 0.0)

    def bits(self, tokens: np.ndarray) -> tuple[float, float, int]:
        """(unigram bits, bigram bits, targets) of ``tokens[1:]``, each given the token before it."""
        total_u, total_b, n = 0.0, 0.0, len(tokens) - 1
        for start in range(0, max(0, n), _CHUNK):
            chunk = np.asarray(tokens[start:min(len(tokens), start + _CHUNK + 1)], dtype=np.int64)
            prev, nxt = chunk[:-1], chunk[1:]
            total_u -= float(np.log2(self.p_uni[nxt]).sum())
            p_bi = (self._pair_counts(prev, nxt) + self.alpha * self.p_uni[nxt]) / (self.ctx[prev] + self.alpha)
            total_b -= float(np.log2(p_bi).sum())
        return total_u, total_b, max(0, n)


def floors_of(model: CountModel, tokens: np.ndarray, bytes_per_token: float = 1.0,
              split: str = "") -> Floors:
    """Floors of scoring ``tokens[1:]`` with a fitted model (any token array)."""
    u, b, n = model.bits(tokens)
    if n == 0:
        raise ValueError("no tokens to score")
    return Floors(split=split, unigram_bpb=u / n / bytes_per_token, bigram_bpb=b / n / bytes_per_token,
                  n_tokens=n, k=model.k)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one


def corpus_floors(corpus: Any, split: str, n_tokens: int | None = None, offset: int = 0,
                  seq_len: int | None = None) -> Floors:
    """The floors of ``split`` of a :class:`~cambrian.scaling.data.Corpus`, cached in its folder.

    ``n_tokens``: the number of targets scored (what an evaluator scores); None: the whole
    split. ``seq_len``: score the windows an LM evaluator scores (``eval_windows``, spread over
    the split); None: the first ``n_tokens`` targets of a contiguous stretch. ``offset``: start
    at that token (a slice of the split, as script tasks score).
    """
    tokens = corpus.tokens(split)[int(offset):]
    n = len(tokens) - 1 if n_tokens is None else min(int(n_tokens), len(tokens) - 1)
    layout = f"-w{int(seq_len)}" if seq_len else ""
    path = Path(corpus.root) / f"floors-{split}-{n}{layout}{f'-at{int(offset)}' if offset else ''}-k{K}.json"
    if path.is_file():
        try:
            return Floors(**json.loads(path.read_text()))
        except (ValueError, TypeError):
            pass  # unreadable: recompute and overwrite
    model = CountModel.fit(corpus.tokens("train"), corpus.vocab_size)
    if seq_len:
        starts = window_starts(len(tokens), int(seq_len), n)
        u = b = 0.0
        for s in starts:  # each window's own pairs: none across windows, as the model sees them
            du, db, _ = model.bits(tokens[s:s + int(seq_len) + 1])
            u, b = u + du, b + db
        scored, bpt = len(starts) * int(seq_len), corpus.bytes_per_token(split)
        floors = Floors(split=split, unigram_bpb=u / scored / bpt, bigram_bpb=b / scored / bpt,
                        n_tokens=scored, k=model.k)
    else:
        floors = floors_of(model, tokens[:n + 1], corpus.bytes_per_token(split), split)
    try:
        _write_json(path, floors.to_dict())
    except OSError:
        pass  # a read-only cache still gets the numbers, just not stored
    return floors


def below(score: float | None, floor: float | None) -> bool | None:
    """Is a bpb strictly below a floor (None when either is unknown or not finite)?"""
    if score is None or floor is None or not (math.isfinite(score) and math.isfinite(floor)):
        return None
    return score < floor
