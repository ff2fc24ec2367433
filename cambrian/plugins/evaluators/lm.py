"""``lm``: train an architecture spec on a text corpus for a budget; report bits per byte.

The candidate's content is an ArchSpec dict. Options (all optional):
corpus ("stdlib"; or "text" with ``paths``, or "hf" with ``path``/``text_field``...),
corpus_options ({}), tokenizer (bytes), cache_dir (<run_dir>/cache), batch_size (16),
seq_len (128), max_steps / max_tokens / max_seconds (default max_steps 200), lr (3e-3),
warmup_steps (20), schedule ("cosine"), weight_decay (0.1), grad_clip (1.0), grad_accum (1),
precision ("auto": bf16 autocast on CUDA), device ("auto": CUDA when present; cpu, cuda,
cuda:N), compile (false: torch.compile per block), threads (the worker's), eval_tokens
(65536), eval_batch_size (32).

Scores ``job.split`` (val by default; hidden only when the job asks for it) with
``job.seed``. Metrics: bpb (and <split>_bpb), loss, train_loss, params,
non_embedding_params, flops, train_tokens, tokens_per_s, steps, and where it trained:
on_cuda, bf16, compiled, kernel_<name> for each fused kernel used (names in the work
folder's runtime.json). Cost.flops is training plus scoring FLOPs from the architecture's
analytic count; Cost.gpu_s the training time on a GPU.
"""

from __future__ import annotations

from pathlib import Path

from cambrian import Cost, EvalJob, Evaluator, hookimpl

TRAIN_KEYS = ("max_steps", "max_tokens", "max_seconds", "lr", "warmup_steps", "schedule", "decay_frac",
              "weight_decay", "grad_clip", "grad_accum", "precision", "threads", "min_lr_frac", "device",
              "compile")


class LMEvaluator(Evaluator):
    name = "lm"

    def evaluate(self, job: EvalJob, workdir: Path) -> tuple[dict[str, float], Cost]:
        from cambrian.scaling.data import load_corpus
        from cambrian.scaling.runs import train_lm
        from cambrian.scaling.device import Runtime
        from cambrian.scaling.trainer import TrainConfig

        o = self.options
        corpus = load_corpus(o.get("corpus", "stdlib"), tokenizer=o.get("tokenizer"),
                             cache_dir=o.get("cache_dir") or Path(job.run_dir) / "cache",
                             **o.get("corpus_options", {}))
        train_opts = {k: o[k] for k in TRAIN_KEYS if k in o}
        if not any(k in train_opts for k in ("max_steps", "max_tokens", "max_seconds")):
            train_opts["max_steps"] = 200
        train_opts.setdefault("precision", "auto")
        run = train_lm(job.candidate.content, corpus, TrainConfig(**train_opts),
                       batch_size=int(o.get("batch_size", 16)), seq_len=int(o.get("seq_len", 128)),
                       seed=job.seed, split=job.split, eval_tokens=o.get("eval_tokens", 65536),
                       eval_batch_size=int(o.get("eval_batch_size", 32)))
        rt = Runtime(**run.train.runtime)
        rt.write(workdir)
        return run.metrics, Cost(flops=run.metrics["flops"] + run.eval_flops,
                                 gpu_s=run.train.wall_s if rt.device.startswith("cuda") else 0.0)

    def uses_gpu(self, job: EvalJob) -> bool:
        from cambrian.scaling.device import wants_cuda

        return wants_cuda(self.options.get("device", "auto"))


@hookimpl
def cambrian_evaluators():
    return [LMEvaluator]
