"""Spec in, numbers out: train an architecture spec on a corpus or a synthetic task suite.

These are what the evaluators and the ladder call. A spec is an
:class:`~cambrian.architectures.ArchSpec` or its dict; its ``vocab_size`` and
``max_seq_len`` are set from the data, so the same layer pattern runs on bytes,
on a tokenizer's vocabulary or on a synthetic task.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cambrian.scaling.data import Corpus, LMBatches, bits_per_byte, eval_windows
from cambrian.scaling.device import Runtime, resolve_device
from cambrian.scaling.synthetic import Task, TaskData, make_split
from cambrian.scaling.trainer import TrainConfig, TrainResult, accuracy, mean_loss, train


class TrainingFailed(RuntimeError):
    """Training stopped with a non-completed status (NaN, divergence)."""

    def __init__(self, result: TrainResult) -> None:
        super().__init__(f"training {result.status}: {result.stop_reason}")
        self.result = result


def prepare_spec(spec: Any, *, vocab_size: int, seq_len: int):
    """The spec as an ArchSpec with the data's vocabulary and a context of at least ``seq_len``."""
    from cambrian.architectures import ArchSpec

    d = spec.to_dict() if isinstance(spec, ArchSpec) else dict(spec)
    d["vocab_size"] = vocab_size
    d["max_seq_len"] = max(int(d.get("max_seq_len", 0) or 0), seq_len)
    return ArchSpec.from_dict(d)


@dataclass(frozen=True)
class LMRun:
    metrics: dict[str, float]
    train: TrainResult
    eval_flops: float


def train_lm(spec: Any, corpus: Corpus, config: TrainConfig, *, batch_size: int = 16, seq_len: int = 128,
             seed: int = 0, split: str = "val", eval_tokens: int | None = 65536,
             eval_batch_size: int = 32) -> LMRun:
    """Train ``spec`` on the corpus's train split; score bits per byte on ``split``.

    Same spec, data, config and seed give the same numbers: the model init,
    the batches and the scored windows are all functions of the seed.
    """
    from cambrian.architectures import build_model, count

    arch = prepare_spec(spec, vocab_size=corpus.vocab_size, seq_len=seq_len)
    model = build_model(arch, seed=seed)
    counts = count(arch, seq_len=seq_len)
    batches = LMBatches(corpus.tokens("train"), batch_size, seq_len, seed)
    result = train(model, batches, replace(config, seed=seed), flops_per_token=counts.flops_per_token)
    if result.status != "completed":
        raise TrainingFailed(result)
    device = resolve_device(config.device)
    loss, n = mean_loss(model, eval_windows(corpus.tokens(split), seq_len, eval_tokens, eval_batch_size), device)
    bpb = bits_per_byte(loss, corpus.bytes_per_token(split))
    metrics = {"bpb": bpb, f"{split}_bpb": bpb, "loss": loss, "train_loss": result.train_loss,
               "params": float(counts.params), "non_embedding_params": float(counts.non_embedding_params),
               "flops": result.flops, "flops_per_token": float(counts.flops_per_token),
               "train_tokens": float(result.tokens), "tokens_per_s": result.tokens_per_s,
               "steps": float(result.steps), "train_wall_s": result.wall_s,
               **runtime_metrics(result)}
    return LMRun(metrics=metrics, train=result, eval_flops=counts.flops_per_token * n)


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
    from cambrian.architectures import build_model, count

    arch = prepare_spec(spec, vocab_size=task.vocab_size, seq_len=task.seq_len)
    model = build_model(arch, seed=seed)
    train_data = make_split(task, "train", n_train, seed)
    result = train(model, TaskBatches(train_data, batch_size, seed), replace(config, seed=seed),
                   flops_per_token=count(arch, seq_len=task.seq_len).flops_per_token)
    if result.status != "completed":
        raise TrainingFailed(result)
    test = make_split(task, split, n_eval, seed)
    device = resolve_device(config.device)
    acc = accuracy(model, test.inputs, test.targets, device=device)
    loss, _ = mean_loss(model, ((test.inputs[b:b + 256], test.targets[b:b + 256])
                                for b in range(0, len(test.inputs), 256)), device)
    return {"accuracy": acc, "loss": loss, "chance": task.chance, "train_loss": result.train_loss,
            "flops": result.flops, "steps": float(result.steps), "train_wall_s": result.wall_s,
            "runtime": result.runtime}
