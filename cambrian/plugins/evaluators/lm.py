"""``lm``: train an architecture spec on a text corpus for a budget; report bits per byte.

The candidate's content is an ArchSpec dict. Options (all optional):
corpus ("stdlib"; {source: text, train, val, hidden}; {source: text, paths}; {source: hf,
path, name, text_field}: :data:`cambrian.scaling.data.CorpusOption`), tokenizer (bytes), cache_dir (<run_dir>/cache), batch_size (16),
seq_len (128), max_steps / train_tokens / max_seconds (default max_steps 200), lr (3e-3),
warmup_steps (20), schedule ("cosine"), weight_decay (0.1), grad_clip (1.0), grad_accum (1),
precision ("auto": bf16 autocast on CUDA), device ("auto": CUDA when present; cpu, cuda,
cuda:N), compile (false: torch.compile per block), threads (the worker's), val_tokens
(65536), eval_batch_size (null: 16 on CPU, 64 on an accelerator). The names are the ``compose`` evaluator's: both run
:func:`cambrian.scaling.runs.train_lm`, the one train-and-score pipeline.

Scores ``job.split`` (val by default; hidden only when the job asks for it) with
``job.seed``. Metrics: those of :func:`~cambrian.scaling.runs.train_lm`: bpb (and
<split>_bpb), floor_unigram_bpb and floor_bigram_bpb (count-based models on the same tokens,
:mod:`cambrian.scaling.floors`), loss, train_loss, params, non_embedding_params,
train_flops, train_tokens, tokens_per_s, steps, times, and where it trained:
on_cuda, bf16, compiled, kernel_<name> for each fused kernel used (names in the work
folder's runtime.json). Cost.flops is training plus scoring FLOPs from the architecture's
analytic count; Cost.gpu_s the training time on a GPU.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from cambrian import Cost, EvalJob, Evaluator, hookimpl, scaling
from cambrian.plugins.evaluators.training import TrainingOptions
from cambrian.scaling.data import CorpusOption, open_corpus
from cambrian.scaling.device import Runtime, wants_cuda


class LMEvaluator(Evaluator):
    name = "lm"

    class Options(TrainingOptions):
        corpus: CorpusOption = Field("stdlib", validate_default=True,
                                     description="stdlib; {source: text, train, val, hidden}; {source: text, "
                                     "paths}; or {source: hf, path, name, text_field}")
        tokenizer: str | None = Field(None, description="null: bytes")
        cache_dir: str | None = Field(None, description="null: <run_dir>/cache")
        batch_size: int = Field(16, ge=1)
        seq_len: int = Field(128, ge=2)
        val_tokens: int = Field(65536, ge=1, description="tokens scored for bpb (the compose evaluator's name)")
        eval_batch_size: int | None = Field(None, ge=1, description="windows scored at once (null: 16 on CPU, 64 "
                                            "on an accelerator)")

    def evaluate(self, job: EvalJob, workdir: Path) -> tuple[dict[str, float], Cost]:
        o = self.options
        corpus = open_corpus(o.corpus, o.cache_dir or Path(job.run_dir) / "cache", tokenizer=o.tokenizer)
        config = scaling.trainer.TrainConfig(**o.train_kwargs(max_steps=200, precision="auto"))
        run = scaling.runs.train_lm(job.candidate.content, corpus, config,
                       batch_size=o.batch_size, seq_len=o.seq_len, seed=job.seed, split=job.split,
                       val_tokens=o.val_tokens, eval_batch_size=o.eval_batch_size)
        rt = Runtime(**run.train.runtime)
        rt.write(workdir)
        return run.metrics, Cost(flops=run.metrics["train_flops"] + run.eval_flops,
                                 gpu_s=run.train.wall_s if rt.device.startswith("cuda") else 0.0)

    def uses_gpu(self, job: EvalJob) -> bool:
        return wants_cuda(self.options.device or "auto")


@hookimpl
def cambrian_evaluators():
    return [LMEvaluator]
