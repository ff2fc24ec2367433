"""``synthetic``: train an architecture spec on each task of a synthetic suite; report accuracy.

The candidate's content is an ArchSpec dict (its vocab and context are set per
task). Options: suite ("mqar"; or "mad", "listops", "all"), tasks (a list of
names overriding the suite), task_options ({task: {size options}}), n_train
(4000), n_eval (500), batch_size (32), and the trainer's max_steps (300) /
train_tokens / max_seconds, lr (3e-3), warmup_steps (20), schedule, weight_decay
(0.0), grad_clip, precision ("auto": bf16 autocast on CUDA), device ("auto": CUDA when
present; cpu, cuda, cuda:N), compile (false), threads.

Scores ``job.split`` with ``job.seed``. Metrics: accuracy (mean over tasks),
acc_<task> per task, loss (mean scored cross-entropy), chance (mean), flops, and where it
trained (on_cuda, bf16, compiled, kernel_<name>; names in runtime.json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from cambrian import Cost, EvalJob, Evaluator, hookimpl, scaling
from cambrian.plugins.evaluators.training import TrainingOptions
from cambrian.scaling.device import Runtime, wants_cuda
from cambrian.scaling.synthetic import SUITES, make_task


class SyntheticEvaluator(Evaluator):
    name = "synthetic"

    class Options(TrainingOptions):
        suite: str = Field("mqar", description="mqar, mad, listops or all")
        tasks: list[str] | None = Field(None, min_length=1, description="task names overriding the suite")
        task_options: dict[str, dict[str, Any]] = Field(default_factory=dict, description="{task: {size options}}")
        n_train: int = Field(4000, ge=1)
        n_eval: int = Field(500, ge=1)
        batch_size: int = Field(32, ge=1)

    def evaluate(self, job: EvalJob, workdir: Path) -> tuple[dict[str, float], Cost]:
        o = self.options
        names = o.tasks or SUITES[o.suite]
        config = scaling.trainer.TrainConfig(**o.train_kwargs(weight_decay=0.0, precision="auto", max_steps=300))
        metrics: dict[str, float] = {}
        accs, losses, chances, flops, gpu_s, kernels, rt = [], [], [], 0.0, 0.0, set(), None
        for name in names:
            task = make_task(name, **o.task_options.get(name, {}))
            r = scaling.runs.train_task(job.candidate.content, task, config, n_train=o.n_train,
                                        n_eval=o.n_eval, batch_size=o.batch_size,
                                        seed=job.seed, split=job.split)
            metrics[f"acc_{name}"] = r["accuracy"]
            accs.append(r["accuracy"])
            losses.append(r["loss"])
            chances.append(r["chance"])
            flops += r["train_flops"]
            rt = Runtime(**r["runtime"])
            kernels |= set(rt.kernels)
            gpu_s += r["train_s"] if rt.device.startswith("cuda") else 0.0
        n = len(names)
        metrics.update(accuracy=sum(accs) / n, loss=sum(losses) / n, chance=sum(chances) / n, flops=flops)
        if rt is not None:  # every task trains on the same device
            rt = rt.model_copy(update={"kernels": tuple(sorted(kernels))})
            rt.write(workdir)
            metrics.update(rt.metrics())
        return metrics, Cost(flops=flops, gpu_s=gpu_s)

    def uses_gpu(self, job: EvalJob) -> bool:
        return wants_cuda(self.options.device or "auto")


@hookimpl
def cambrian_evaluators():
    return [SyntheticEvaluator]
