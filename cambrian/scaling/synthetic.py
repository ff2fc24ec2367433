"""Synthetic tasks for cheap, discriminative signals, generated with numpy.

Every task renders as language modelling: ``inputs`` (N, T) token ids and
``targets`` (N, T) with the token to predict at each scored position and
:data:`IGNORE` elsewhere, so any idx -> logits model trains on it with a plain
cross-entropy. Splits draw from separate seeded streams: ``make_split(task,
"val", n, seed)`` is the same array on every machine.

Tasks: MQAR (multi-query associative recall, Zoology); the MAD suite
(in-context recall, fuzzy recall, noisy recall, selective copying,
compression, memorization; Poli et al. 2024) in LM form; and LRA ListOps.
Defaults are small enough to train a CPU proxy in seconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

IGNORE = -100  # targets at unscored positions (torch's cross-entropy ignore_index)
SPLIT_STREAM = {"train": 0, "val": 1, "hidden": 2}


@dataclass(frozen=True)
class TaskData:
    inputs: np.ndarray  # (N, T) int64
    targets: np.ndarray  # (N, T) int64, IGNORE where not scored
    vocab_size: int
    chance: float  # accuracy of guessing uniformly among the possible answers


@dataclass(frozen=True)
class Task:
    """Base: a task is its (frozen) size options; ``sample`` draws ``n`` sequences."""

    name: ClassVar[str]

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    @property
    def seq_len(self) -> int:
        raise NotImplementedError

    @property
    def chance(self) -> float:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        return asdict(self)


def _stream_seed(task: Task, split: str, seed: int) -> list[int]:
    key = hashlib.sha256(f"{task.name}:{sorted(task.options().items())}".encode()).digest()
    return [seed, SPLIT_STREAM[split], int.from_bytes(key[:4], "little")]


def make_split(task: Task, split: str, n: int, seed: int = 0) -> TaskData:
    """``n`` sequences of ``task`` from the ``split`` stream of ``seed``."""
    if split not in SPLIT_STREAM:
        raise ValueError(f"unknown split {split!r}; expected one of {tuple(SPLIT_STREAM)}")
    rng = np.random.default_rng(_stream_seed(task, split, seed))
    x, y = task.sample(rng, n)
    assert x.shape == y.shape == (n, task.seq_len), (x.shape, y.shape)
    return TaskData(inputs=x.astype(np.int64), targets=y.astype(np.int64), vocab_size=task.vocab_size,
                    chance=task.chance)


def _empty(n: int, t: int, fill: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, t), fill, dtype=np.int64), np.full((n, t), IGNORE, dtype=np.int64)


# ----------------------------------------------------------------------------- recall family

@dataclass(frozen=True)
class MQAR(Task):
    """Multi-query associative recall: ``k1 v1 .. kN vN`` then ``num_queries`` of the keys again.

    Keys [0, num_keys), values [num_keys, num_keys + num_values); each sequence
    draws a fresh key->value map, so the answer is only in the context. Scored
    at the query keys (predict the value that followed that key earlier).
    """

    name: ClassVar[str] = "mqar"
    num_kv_pairs: int = 8
    num_queries: int = 8
    num_keys: int = 32
    num_values: int = 32

    vocab_size = property(lambda self: self.num_keys + self.num_values)
    seq_len = property(lambda self: 2 * (self.num_kv_pairs + self.num_queries))
    chance = property(lambda self: 1.0 / self.num_values)

    def sample(self, rng, n):
        p, q = self.num_kv_pairs, self.num_queries
        keys = np.argsort(rng.random((n, self.num_keys)), axis=1)[:, :p]  # distinct keys per row
        vals = self.num_keys + rng.integers(0, self.num_values, size=(n, p))
        qi = rng.integers(0, p, size=(n, q))  # which pairs are queried
        qk, qv = np.take_along_axis(keys, qi, 1), np.take_along_axis(vals, qi, 1)
        x, y = _empty(n, self.seq_len)
        x[:, 0:2 * p:2], x[:, 1:2 * p:2] = keys, vals
        x[:, 2 * p::2], x[:, 2 * p + 1::2] = qk, qv
        y[:, 2 * p::2] = qv
        return x, y


@dataclass(frozen=True)
class InContextRecall(Task):
    """MAD in-context recall: a stream of pairs from a per-sequence key->value map.

    Scored at every key that already appeared earlier in the sequence.
    """

    name: ClassVar[str] = "in_context_recall"
    length: int = 64
    num_keys: int = 8
    num_values: int = 8

    vocab_size = property(lambda self: self.num_keys + self.num_values)
    seq_len = property(lambda self: self.length)
    chance = property(lambda self: 1.0 / self.num_values)

    def sample(self, rng, n):
        x, y = _empty(n, self.seq_len)
        for i in range(n):
            table = self.num_keys + rng.integers(0, self.num_values, size=self.num_keys)
            seen: set[int] = set()
            for t in range(0, self.length - 1, 2):
                k = int(rng.integers(0, self.num_keys))
                x[i, t], x[i, t + 1] = k, table[k]
                if k in seen:
                    y[i, t] = table[k]
                seen.add(k)
        return x, y


@dataclass(frozen=True)
class NoisyRecall(Task):
    """MAD noisy recall: in-context recall with noise tokens inserted between pairs."""

    name: ClassVar[str] = "noisy_recall"
    length: int = 64
    num_keys: int = 8
    num_values: int = 8
    num_noise: int = 8
    noise_rate: float = 0.3  # chance of a noise token before each pair

    vocab_size = property(lambda self: self.num_keys + self.num_values + self.num_noise)
    seq_len = property(lambda self: self.length)
    chance = property(lambda self: 1.0 / self.num_values)

    def sample(self, rng, n):
        x, y = _empty(n, self.seq_len)
        noise0 = self.num_keys + self.num_values
        for i in range(n):
            table = self.num_keys + rng.integers(0, self.num_values, size=self.num_keys)
            seen: set[int] = set()
            t = 0
            while t < self.length:
                if rng.random() < self.noise_rate or t == self.length - 1:
                    x[i, t] = noise0 + rng.integers(0, self.num_noise)
                    t += 1
                    continue
                k = int(rng.integers(0, self.num_keys))
                x[i, t], x[i, t + 1] = k, table[k]
                if k in seen:
                    y[i, t] = table[k]
                seen.add(k)
                t += 2
        return x, y


@dataclass(frozen=True)
class FuzzyRecall(Task):
    """MAD fuzzy recall: keys and values are multi-token; recall a whole value after a repeated key.

    Scored at the last key token (first value token) and within the value.
    """

    name: ClassVar[str] = "fuzzy_recall"
    length: int = 64
    num_pairs: int = 6  # distinct keys per sequence
    key_len: int = 2
    value_len: int = 2
    num_key_tokens: int = 8
    num_value_tokens: int = 8

    vocab_size = property(lambda self: self.num_key_tokens + self.num_value_tokens)
    seq_len = property(lambda self: self.length)
    chance = property(lambda self: 1.0 / self.num_value_tokens)

    def sample(self, rng, n):
        x, y = _empty(n, self.seq_len)
        kl, vl = self.key_len, self.value_len
        for i in range(n):
            keys = [tuple(k) for k in rng.integers(0, self.num_key_tokens, size=(self.num_pairs, kl))]
            vals = self.num_key_tokens + rng.integers(0, self.num_value_tokens, size=(self.num_pairs, vl))
            seen: set[int] = set()
            t = 0
            while t + kl + vl <= self.length:
                j = int(rng.integers(0, self.num_pairs))
                first_of_key = keys.index(keys[j])  # duplicate keys share the first one's value
                x[i, t:t + kl], x[i, t + kl:t + kl + vl] = keys[j], vals[first_of_key]
                if first_of_key in seen:  # predict each value token from the token before it
                    y[i, t + kl - 1:t + kl + vl - 1] = vals[first_of_key]
                seen.add(first_of_key)
                t += kl + vl
        return x, y


@dataclass(frozen=True)
class SelectiveCopying(Task):
    """MAD selective copying: content tokens scattered among blanks; copy them, in order, after SEP."""

    name: ClassVar[str] = "selective_copying"
    context_len: int = 48
    num_tokens: int = 8  # content tokens to copy
    vocab: int = 16  # content vocabulary

    vocab_size = property(lambda self: self.vocab + 2)  # + blank + separator
    seq_len = property(lambda self: self.context_len + self.num_tokens)
    chance = property(lambda self: 1.0 / self.vocab)

    def sample(self, rng, n):
        blank, sep = self.vocab, self.vocab + 1
        x, y = _empty(n, self.seq_len, fill=blank)
        c, m = self.context_len, self.num_tokens
        pos = np.sort(np.argsort(rng.random((n, c)), axis=1)[:, :m], axis=1)
        content = rng.integers(0, self.vocab, size=(n, m))
        np.put_along_axis(x, pos, content, axis=1)
        x[:, c] = sep
        x[:, c + 1:] = content[:, :-1]
        y[:, c:] = content  # at SEP predict the first, then each next one
        return x, y


@dataclass(frozen=True)
class Compression(Task):
    """MAD compression, LM form: ``x1..xn COMP p1..pn``; at position query ``p_i`` predict ``x_i``.

    The model has to keep the whole sequence addressable by position after the
    compression token (MAD decodes the compressed state with an MLP probe; here
    the same model answers position queries, so it trains as an LM).
    """

    name: ClassVar[str] = "compression"
    num_tokens: int = 16
    vocab: int = 16

    vocab_size = property(lambda self: self.vocab + 1 + self.num_tokens)  # + COMP + position tokens
    seq_len = property(lambda self: 2 * self.num_tokens + 1)
    chance = property(lambda self: 1.0 / self.vocab)

    def sample(self, rng, n):
        m = self.num_tokens
        x, y = _empty(n, self.seq_len)
        content = rng.integers(0, self.vocab, size=(n, m))
        x[:, :m], x[:, m] = content, self.vocab
        order = np.argsort(rng.random((n, m)), axis=1)  # positions queried in a random order
        x[:, m + 1:] = self.vocab + 1 + order
        y[:, m + 1:] = np.take_along_axis(content, order, 1)
        return x, y


@dataclass(frozen=True)
class Memorization(Task):
    """MAD memorization: one fixed key->value map (from ``map_seed``) shared by every split.

    Each key appears once per sequence, so the answer is not in the context:
    the model must store the map in its weights. Scored at every key.
    """

    name: ClassVar[str] = "memorization"
    num_keys: int = 64
    num_values: int = 16
    pairs_per_seq: int = 16
    map_seed: int = 1234

    vocab_size = property(lambda self: self.num_keys + self.num_values)
    seq_len = property(lambda self: 2 * self.pairs_per_seq)
    chance = property(lambda self: 1.0 / self.num_values)

    def table(self) -> np.ndarray:
        return self.num_keys + np.random.default_rng(self.map_seed).integers(0, self.num_values, self.num_keys)

    def sample(self, rng, n):
        table, p = self.table(), self.pairs_per_seq
        keys = np.argsort(rng.random((n, self.num_keys)), axis=1)[:, :p]
        x, y = _empty(n, self.seq_len)
        x[:, 0::2], x[:, 1::2] = keys, table[keys]
        y[:, 0::2] = table[keys]
        return x, y


# ----------------------------------------------------------------------------- ListOps

LISTOPS_OPS = ("MAX", "MIN", "MED", "SM")


def _listops_eval(op: str, args: list[int]) -> int:
    if op == "MAX":
        return max(args)
    if op == "MIN":
        return min(args)
    if op == "MED":
        return int(np.median(args))  # as in LRA's generator
    return sum(args) % 10


@dataclass(frozen=True)
class ListOps(Task):
    """LRA ListOps: nested ``[MAX 2 9 [MIN 4 7 ] 0 ]`` expressions; predict the value (0-9).

    Tokens: digits 0-9, ``[MAX [MIN [MED [SM`` 10-13, ``]`` 14, PAD 15. The
    expression is right-padded; scored at its closing bracket.
    """

    name: ClassVar[str] = "listops"
    max_len: int = 64
    max_depth: int = 3
    max_args: int = 4

    vocab_size = property(lambda self: 16)
    seq_len = property(lambda self: self.max_len)
    chance = property(lambda self: 0.1)

    def _tree(self, rng, depth: int) -> tuple[list[int], int]:
        op = int(rng.integers(0, len(LISTOPS_OPS)))
        tokens, values = [10 + op], []
        for _ in range(int(rng.integers(2, self.max_args + 1))):
            if depth < self.max_depth and rng.random() < 0.25:
                sub, v = self._tree(rng, depth + 1)
                tokens += sub
            else:
                v = int(rng.integers(0, 10))
                tokens.append(v)
            values.append(v)
        return tokens + [14], _listops_eval(LISTOPS_OPS[op], values)

    def sample(self, rng, n):
        x, y = _empty(n, self.seq_len, fill=15)
        for i in range(n):
            while True:
                tokens, value = self._tree(rng, 1)
                if len(tokens) <= self.max_len:
                    break
            x[i, :len(tokens)] = tokens
            y[i, len(tokens) - 1] = value
        return x, y


TASKS: dict[str, type[Task]] = {t.name: t for t in (MQAR, InContextRecall, FuzzyRecall, NoisyRecall,
                                                      SelectiveCopying, Compression, Memorization, ListOps)}
SUITES: dict[str, tuple[str, ...]] = {
    "mqar": ("mqar",),
    "mad": ("in_context_recall", "fuzzy_recall", "noisy_recall", "selective_copying", "compression",
            "memorization"),
    "listops": ("listops",),
}
SUITES["all"] = SUITES["mqar"] + SUITES["mad"] + SUITES["listops"]


def make_task(name: str, **options: Any) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown synthetic task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name](**options)
