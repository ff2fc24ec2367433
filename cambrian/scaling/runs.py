"""Spec in, numbers out: train an architecture spec on a corpus or a synthetic task suite.

These are what the evaluators and the ladder call. A spec is an
:class:`~cambrian.architectures.ArchSpec` or its dict; its ``vocab_size`` and
``max_seq_len`` are set from the data, so the same layer pattern runs on bytes,
on a tokenizer's vocabulary or on a synthetic task.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from cambrian.architectures import ArchSpec, build_model, count
from cambrian.scaling.causality import check_spec, check_trained
from cambrian.scaling.data import Corpus, LMBatches, bits_per_byte, eval_windows
from cambrian.scaling.device import Runtime, resolve_device
from cambrian.scaling.floors import corpus_floors
from cambrian.scaling.synthetic import Task, TaskData, make_split
from cambrian.scaling.trainer import TrainConfig, TrainResult, accuracy, mean_loss, train


class TrainingFailed(RuntimeError):
    """Training stopped with a non-completed status (NaN, divergence)."""

    def __init__(self, result: TrainResult) -> None:
        super().__init__(f"training {result.status}: {result.stop_reason}")
        self.result = result


def prepare_spec(spec: Any, *, vocab_size: int, seq_len: int):
    """The spec as an ArchSpec with the data's vocabulary and a context of at least ``seq_len``."""
    d = spec.to_dict() if isinstance(spec, ArchSpec) else dict(spec)
    d["vocab_size"] = vocab_size
    d["max_seq_len"] = max(int(d.get("max_seq_len", 0) or 0), seq_len)
    return ArchSpec.from_dict(d)


@dataclass(frozen=True)
class LMRun:
    metrics: dict[str, float]
    train: TrainResult
    eval_flops: float
    model: Any = None  # the trained torch module (callers save it or drop it)
    spec: Any = None  # the ArchSpec actually trained (vocabulary and context from the data)

    @property
    def tokens_per_step(self) -> float:
        return self.train.tokens / max(1, self.train.steps)


def train_lm(spec: Any, corpus: Corpus, config: TrainConfig, *, batch_size: int = 16, seq_len: int = 128,
             seed: int = 0, split: str = "val", val_tokens: int | None = 65536,
             eval_batch_size: int | None = None) -> LMRun:
    """Train ``spec`` on the corpus's train split for ``config``'s budget; score bits per byte on ``split``.

    The one train-and-score path: the ``compose`` and ``lm`` evaluators and the ladder call it.
    A layer whose primitive a plugin added passes the causality guard before training and
    again once trained (cambrian.scaling.causality: check_spec, check_trained; NotCausal).
    Same spec, data, config and seed give the same numbers: the model init, the batches and
    the scored windows are all functions of the seed. ``val_tokens`` caps the scored tokens
    (windows spread evenly over the split, :func:`cambrian.scaling.data.window_starts`; None: all of it),
    scored ``eval_batch_size`` windows at a time (None: 16 on CPU, where larger batches spill out
    of the caches: 4-16% more CPU time at 64 (docs/benchmarks.md, "Scoring batch on CPU");
    64 on an accelerator). The batch changes the loss only by float rounding (1e-7).

    Metrics: bpb (and ``<split>_bpb``), floor_unigram_bpb and floor_bigram_bpb (count-based
    models scored on the same tokens, :mod:`cambrian.scaling.floors`), loss (nats per token),
    train_loss, params, non_embedding_params, flops_per_token (forward, at ``seq_len``),
    train_flops (3 x forward x tokens), train_tokens, steps, tokens_per_s, times: setup_s,
    train_s, eval_s (wall) and train_cpu_s, eval_cpu_s (CPU seconds: wall time says little on
    a shared machine), and where it trained (on_cuda, bf16, compiled, kernel_<name>).
    """
    t0 = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    arch = prepare_spec(spec, vocab_size=corpus.vocab_size, seq_len=seq_len)
    device = resolve_device(config.device)
    eval_batch_size = eval_batch_size or (16 if device.type == "cpu" else 64)
    scored = len(corpus.tokens(split)) - 1 if val_tokens is None else min(len(corpus.tokens(split)) - 1, val_tokens)
    shapes = [(batch_size, seq_len), (max(1, min(eval_batch_size, scored // seq_len)), seq_len)]  # training, scoring
    check_spec(arch, shapes, device)  # a plugin's primitive: causal before it trains
    model = build_model(arch, seed=seed)
    counts = count(arch, seq_len=seq_len)
    batches = LMBatches(corpus.tokens("train"), batch_size, seq_len, seed)
    setup_s = time.perf_counter() - t0
    c0 = time.process_time()
    result = train(model, batches, replace(config, seed=seed), flops_per_token=counts.flops_per_token)
    train_cpu_s = time.process_time() - c0
    if result.status != "completed":
        raise TrainingFailed(result)
    check_trained(model, arch, shapes, "language")  # and still causal once trained
    t1, c1 = time.perf_counter(), time.process_time()
    loss, n = mean_loss(model, eval_windows(corpus.tokens(split), seq_len, val_tokens, eval_batch_size), device)
    bpb = bits_per_byte(loss, corpus.bytes_per_token(split))
    eval_s, eval_cpu_s = time.perf_counter() - t1, time.process_time() - c1
    floors = corpus_floors(corpus, split, n, seq_len=seq_len)  # the count-based models on the very windows scored
    metrics = {"bpb": bpb, f"{split}_bpb": bpb, **floors.metrics(), "loss": loss, "train_loss": result.train_loss,
               "params": float(counts.params), "non_embedding_params": float(counts.non_embedding_params),
               "flops_per_token": float(counts.flops_per_token), "train_flops": result.flops,
               "train_tokens": float(result.tokens), "steps": float(result.steps),
               "tokens_per_s": result.tokens_per_s, "setup_s": setup_s, "train_s": result.wall_s,
               "eval_s": eval_s, "train_cpu_s": train_cpu_s, "eval_cpu_s": eval_cpu_s,
               **runtime_metrics(result)}
    return LMRun(metrics=metrics, train=result, eval_flops=counts.flops_per_token * n, model=model, spec=arch)


def runtime_metrics(result: TrainResult) -> dict[str, float]:
    """Where the run trained, as numeric flags (on_cuda, bf16, kernel_<name>, ...)."""
    return Runtime(**result.runtime).metrics() if result.runtime else {}


class TaskBatches:
    """Seeded random rows of a generated split: batch ``i`` is a pure function of (seed, i)."""

    def __init__(self, data: TaskData, batch_size: int, seed: int = 0) -> None:
        self.data, self.batch_size, self.seed = data, batch_size, seed

    def __call__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.random.default_rng([self.seed, index]).integers(0, len(self.data.inputs), self.batch_size)
        return self.data.inputs[rows], self.data.targets[rows]


def train_task(spec: Any, task: Task, config: TrainConfig, *, n_train: int = 4000, n_eval: int = 500,
               batch_size: int = 32, seed: int = 0, split: str = "val") -> dict[str, Any]:
    """Train ``spec`` on one synthetic task; accuracy on ``split`` (and chance, for reference),
    and the run's ``runtime`` record."""
    arch = prepare_spec(spec, vocab_size=task.vocab_size, seq_len=task.seq_len)
    device = resolve_device(config.device)
    shapes = [(batch_size, task.seq_len), (min(256, n_eval), task.seq_len)]  # training, scoring
    check_spec(arch, shapes, device)  # a plugin's primitive: causal before it trains
    model = build_model(arch, seed=seed)
    train_data = make_split(task, "train", n_train, seed)
    result = train(model, TaskBatches(train_data, batch_size, seed), replace(config, seed=seed),
                   flops_per_token=count(arch, seq_len=task.seq_len).flops_per_token)
    if result.status != "completed":
        raise TrainingFailed(result)
    check_trained(model, arch, shapes, task.name)  # and still causal once trained
    test = make_split(task, split, n_eval, seed)
    acc = accuracy(model, test.inputs, test.targets, device=device)
    loss, _ = mean_loss(model, ((test.inputs[b:b + 256], test.targets[b:b + 256])
                                for b in range(0, len(test.inputs), 256)), device)
    return {"accuracy": acc, "loss": loss, "chance": task.chance, "train_loss": result.train_loss,
            "train_flops": result.flops, "steps": float(result.steps), "train_s": result.wall_s,
            "runtime": result.runtime}
