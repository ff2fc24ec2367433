"""The ``compose`` evaluator: train the spec as a byte-level LM, score bpb and MQAR.

Runs in the sandboxed evaluation worker. For one job it
  1. opens the corpus (``domain.options.corpus``: :func:`cambrian.scaling.data.open_corpus`,
     built once per cache folder; later jobs open the shards directly),
  2. builds the spec's model with the job's seed and trains it on the ``train`` split for
     ``train_tokens`` tokens (AdamW, warmup + cosine: :func:`cambrian.scaling.trainer.train`),
  3. scores bits per byte on ``val_tokens`` tokens of the job's split, in windows spread over it
     (``val`` during search, ``hidden`` in the final evaluation),
  4. unless ``mqar_steps`` is 0, trains a fresh copy of the design on MQAR (multi-query
     associative recall) and scores its accuracy on that split's MQAR stream,
  5. saves the trained LM (``model.pt``: spec + state_dict) and its training curve
     (``train.json``) in the job's work folder, where ``cambrian export`` and the
     scaling fits find them.

Training and bpb scoring are :func:`cambrian.scaling.runs.train_lm`, the one LM pipeline
(the ``lm`` evaluator and the ladder run it too), so the metric names are the same: bpb,
floor_unigram_bpb and floor_bigram_bpb (count-based models fitted on train, scored on the
same tokens as bpb: :mod:`cambrian.scaling.floors`), params, flops_per_token, train_flops,
train_tokens, train_loss, steps, tokens_per_s, setup_s, train_s, eval_s, train_cpu_s,
eval_cpu_s, and where it trained: on_cuda, bf16, compiled, kernel_<name> per fused kernel
used (their names, the device's name and the dtype in the work folder's ``runtime.json``).
This evaluator adds score (the objective: bpb - mqar_weight * mqar_acc), mqar_acc, mqar_s
(MQAR training and scoring) and score_cpu_s (bpb and MQAR scoring, CPU seconds).
Cost.gpu_s: the training and scoring time on a GPU.

Evaluator options override the domain's training options for one evaluation (the
scaling phase uses this for larger budgets); ``save_model`` (true) keeps ``model.pt``.
The job's ``fidelity`` multiplies ``train_tokens`` (multi-fidelity search screens at a
fraction of the proxy budget; warmup and cosine schedule span the shorter run).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from cambrian import Cost, EvalJob, Evaluator, Options, scaling
from cambrian.architectures import ArchSpec, build_model, count
from cambrian.plugins.domains.compose.domain import settings
from cambrian.scaling.causality import check_spec, check_trained
from cambrian.scaling.data import CorpusOption, open_corpus
from cambrian.scaling.device import DeviceName, Runtime, resolve_device, wants_cuda
from cambrian.scaling.synthetic import MQAR, make_split

MODEL_FILE = "model.pt"
CURVE_FILE = "train.json"
TRAINING_KEYS = ("seq_len", "batch_size", "train_tokens", "val_tokens", "lr", "warmup_steps",
                 "mqar_weight", "mqar_steps", "mqar_kv_pairs", "corpus", "cache_dir", "device", "compile",
                 "checkpoint_every")


def mqar_accuracy(spec, steps: int, batch_size: int, split: str, seed: int, lr: float,
                  threads: int | None, kv_pairs: int = 4, device: str = "cpu") -> tuple[float, float]:
    """Train a fresh model of ``spec`` on MQAR for ``steps`` and score it on ``split``: (acc, flops).

    ``kv_pairs`` key-value pairs then as many queries, over 4 x ``kv_pairs`` keys and values
    (chance: 1 / (4 x kv_pairs)); small, so that a proxy learns it in tens of steps.
    """
    task = MQAR(num_kv_pairs=kv_pairs, num_queries=kv_pairs, num_keys=4 * kv_pairs,
                num_values=4 * kv_pairs)
    data = make_split(task, "train", steps * batch_size, seed=seed)

    def batches(i: int):
        sl = slice((i % steps) * batch_size, (i % steps + 1) * batch_size)
        return data.inputs[sl], data.targets[sl]

    shapes = [(batch_size, task.seq_len), (256, task.seq_len)]  # training, scoring
    check_spec(spec, shapes, device)  # a plugin's primitive: causal before it trains (as in train_lm)
    model = build_model(spec, seed=seed + 1)
    trainer = scaling.trainer  # torch, on first use
    config = trainer.TrainConfig(lr=lr, max_steps=steps, warmup_steps=min(20, steps // 5), threads=threads,
                                 device=device, precision="auto", log_every=max(1, steps))
    res = trainer.train(model, batches, config, flops_per_token=count(spec, task.seq_len).flops_per_token)
    check_trained(model, spec, shapes, "MQAR")  # and still causal once trained
    test = make_split(task, split, 256, seed=0)  # the same questions for every seed
    return trainer.accuracy(model, test.inputs, test.targets, device=device), res.flops


def run_proxy(content: dict[str, Any], s: dict[str, Any], *, split: str, seed: int, workdir: Path,
              run_dir: Path, threads: int | None, save_model: bool = True) -> tuple[dict[str, float], Cost]:
    """Train and score through :func:`cambrian.scaling.runs.train_lm` (the one LM pipeline), then MQAR."""
    import torch  # heavy: the pack's modules load without it (every plugin load imports them)

    t0 = time.perf_counter()
    cache_dir = Path(s["cache_dir"]) if s["cache_dir"] else run_dir / "cache"
    cache_dir.mkdir(parents=True, exist_ok=True)
    corpus = open_corpus(s["corpus"], cache_dir)
    corpus_s = time.perf_counter() - t0
    spec = ArchSpec.from_dict(content)
    device = resolve_device(s["device"])  # here, in the worker: CUDA starts after the fork
    ckpt = None
    if s.get("checkpoint_every"):  # per node: a re-run of this evaluation resumes from it
        ckpt = str(run_dir / "checkpoints" / f"{workdir.parent.name}.pt")
    config = scaling.trainer.TrainConfig(lr=float(s["lr"]), max_tokens=int(s["train_tokens"]), device=str(device),
                                         precision="auto", compile=bool(s["compile"]),
                                         warmup_steps=int(s["warmup_steps"]), threads=threads, seed=seed,
                                         log_every=5, checkpoint_path=ckpt,
                                         checkpoint_every=int(s["checkpoint_every"]) if s.get("checkpoint_every")
                                         else None)
    # a plugin's primitive goes through the causality guard there (before and after training)
    run = scaling.runs.train_lm(spec, corpus, config, batch_size=int(s["batch_size"]), seq_len=int(s["seq_len"]),
                                seed=seed, split=split, val_tokens=int(s["val_tokens"]))
    metrics = dict(run.metrics)
    metrics["setup_s"] += corpus_s
    mqar_acc, mqar_flops = math.nan, 0.0
    t2, c2 = time.perf_counter(), time.process_time()
    if int(s["mqar_steps"]) > 0:
        mqar_acc, mqar_flops = mqar_accuracy(spec, int(s["mqar_steps"]), 32, split, seed, float(s["lr"]),
                                             threads, int(s["mqar_kv_pairs"]), device=str(device))
    metrics["mqar_s"] = time.perf_counter() - t2
    metrics["score_cpu_s"] = metrics["eval_cpu_s"] + time.process_time() - c2  # bpb and MQAR scoring
    weight = float(s["mqar_weight"])
    metrics["score"] = metrics["bpb"] - weight * mqar_acc if weight else metrics["bpb"]
    if math.isfinite(mqar_acc):  # absent when MQAR is off (NaN does not survive JSON)
        metrics["mqar_acc"] = mqar_acc
    Runtime(**run.train.runtime).write(workdir)
    (workdir / CURVE_FILE).write_text(json.dumps({
        "flops_per_token": metrics["flops_per_token"], "tokens_per_step": run.tokens_per_step,
        "history": run.train.history, "bpb": metrics["bpb"], "split": split, "seed": seed, "settings": s}))
    if save_model:
        torch.save({"spec": spec.to_dict(), "state_dict": run.model.state_dict(), "seed": seed,
                    "settings": s}, workdir / MODEL_FILE)
    gpu_s = metrics["train_s"] + metrics["eval_s"] + metrics["mqar_s"] if device.type == "cuda" else 0.0
    return metrics, Cost(flops=metrics["train_flops"] + mqar_flops, gpu_s=gpu_s)


class ComposeEvaluator(Evaluator):
    name = "compose"

    class Options(Options):
        """Overrides of the domain's training options for one evaluation (null: the domain's)."""

        seq_len: int | None = Field(None, ge=2)
        batch_size: int | None = Field(None, ge=1)
        train_tokens: int | None = Field(None, ge=1)
        val_tokens: int | None = Field(None, ge=1)
        lr: float | None = Field(None, gt=0)
        warmup_steps: int | None = Field(None, ge=0)
        mqar_weight: float | None = Field(None, ge=0)
        mqar_steps: int | None = Field(None, ge=0)
        mqar_kv_pairs: int | None = Field(None, ge=1)
        corpus: CorpusOption | None = None
        cache_dir: str | None = None
        device: DeviceName | None = None
        compile: bool | None = None
        checkpoint_every: int | None = Field(None, ge=1)
        save_model: bool = Field(True, description="keep model.pt (for export and the scaling fits)")
        scale: str | None = Field(None, description="the ladder rung's name (set by the scaling phase)")

    def evaluate(self, job: EvalJob, workdir: Path) -> tuple[dict[str, float], Cost]:
        s = settings({**job.domain_options, **self._overrides()})
        if job.fidelity != 1.0:  # multi-fidelity search: a fraction (or multiple) of the training budget
            s["train_tokens"] = max(1, round(int(s["train_tokens"]) * job.fidelity))
        return run_proxy(job.candidate.content, s, split=job.split, seed=job.seed, workdir=workdir,
                         run_dir=Path(job.run_dir), threads=job.limits.get("threads"),
                         save_model=self.options.save_model)

    def _overrides(self) -> dict[str, Any]:
        return {k: v for k in TRAINING_KEYS if (v := getattr(self.options, k)) is not None}

    def uses_gpu(self, job: EvalJob) -> bool:
        return wants_cuda(settings({**job.domain_options, **self._overrides()})["device"])
