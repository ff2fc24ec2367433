"""One evaluation, end to end: job file in, sandboxed worker, result file out.

The worker (``python -m cambrian.execution.evaluation JOB RESULT``) loads the
plugins, runs the evaluator and writes the result JSON itself: metrics never
come from parsing the candidate's stdout. The parent only trusts that file.
"""

from __future__ import annotations

import json
import math
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from cambrian.core.config import SandboxLimits
from cambrian.core.errors import InvalidCandidate
from cambrian.core.plugins import get_plugin_manager
from cambrian.core.records import Cost, Direction, EvalJob, EvalOutcome, Metric, NodeStatus
from cambrian.execution import harness
from cambrian.execution.sandbox import EVALS, SandboxProcess, kernel_cache_dir

if TYPE_CHECKING:
    from cambrian.execution.forkserver import ForkServer, WarmProcess

RESULT_FILE = "result.json"
# A CUDA process maps several times the GPU's memory in virtual address space when the driver
# starts, so an address-space limit cannot bound its memory: GPU jobs get the whole 47-bit user
# address space (128 TiB) instead. See docs/sandbox.md.
CUDA_ADDRESS_SPACE_MB = 1 << 27


def uses_gpu(job: EvalJob) -> bool:
    """Does the job's evaluator say it trains on a GPU (asked without initialising CUDA)?"""
    try:
        evaluator = get_plugin_manager().get("evaluator", job.evaluator)(**job.evaluator_options)
        return bool(evaluator.uses_gpu(job))
    except Exception:
        return False


def job_limits(job: EvalJob) -> SandboxLimits:
    """The job's sandbox limits; a job whose evaluator says it uses a GPU gets no address-space cap."""
    limits = SandboxLimits(**job.limits)
    return limits.model_copy(update={"memory_mb": CUDA_ADDRESS_SPACE_MB}) if uses_gpu(job) else limits


def job_dir(job: EvalJob) -> Path:
    return Path(job.run_dir) / EVALS / job.node_id  # the candidate box hides EVALS but its own work


def start_job(job: EvalJob, server: ForkServer | None = None) -> SandboxProcess | WarmProcess:
    """Write the job file and start its sandboxed worker: a fresh process, or one forked by ``server``."""
    d = job_dir(job)
    d.mkdir(parents=True, exist_ok=True)
    result = d / RESULT_FILE
    result.unlink(missing_ok=True)
    (d / "job.json").write_text(job.model_dump_json())
    limits = job_limits(job)
    # the harness is trusted: share compiled kernels (C++ extensions, triton's and inductor's
    # GPU kernels, which would otherwise be rebuilt in every evaluation's own HOME)
    env = {"CAMBRIAN_EXT_DIR": kernel_cache_dir(),
           "TRITON_CACHE_DIR": os.environ.get("TRITON_CACHE_DIR") or os.path.join(kernel_cache_dir(), "triton"),
           "TORCHINDUCTOR_CACHE_DIR": os.environ.get("TORCHINDUCTOR_CACHE_DIR")
           or os.path.join(kernel_cache_dir(), "inductor")}
    if server is not None:
        return server.spawn("cambrian.execution.evaluation:main", [str(d / "job.json"), str(result)],
                            d / "work", limits, env)
    cmd = [sys.executable, "-m", "cambrian.execution.evaluation", str(d / "job.json"), str(result)]
    return SandboxProcess(cmd, d / "work", limits, env)


def finish_job(job: EvalJob, proc: SandboxProcess | WarmProcess) -> EvalOutcome:
    """Wait for the worker and turn its result file (or its absence) into an outcome."""
    res = proc.wait()
    cost = Cost(wall_s=res.wall_s, cpu_s=res.cpu_s)
    result = job_dir(job) / RESULT_FILE
    if proc.killed and not res.timed_out:
        return EvalOutcome(node_id=job.node_id, status=NodeStatus.CANCELLED, cost=cost,
                           error="stopped: budget exhausted")
    if res.timed_out or res.returncode != 0 or not result.is_file():
        reason = res.reason or "the evaluation wrote no result"
        return EvalOutcome(node_id=job.node_id, status=NodeStatus.FAILED, cost=cost, error=reason)
    try:
        data = json.loads(result.read_text())
        outcome = EvalOutcome.model_validate(data)
    except Exception as exc:
        return EvalOutcome(node_id=job.node_id, status=NodeStatus.FAILED, cost=cost,
                           error=f"unreadable result file: {exc}")
    if res.warnings:  # protections the OS did not grant (no namespaces, ...)
        outcome = outcome.model_copy(update={"artifacts": {**outcome.artifacts,
                                                           "warning": "; ".join(res.warnings)}})
    return outcome.model_copy(update={"cost": outcome.cost + cost})


def run_job(job: EvalJob) -> EvalOutcome:
    return finish_job(job, start_job(job))


def classify(node_id: str, metrics: dict[str, Metric], objective: str, cost: Cost) -> EvalOutcome:
    """DONE when the objective is present and finite, INVALID otherwise.

    Non-finite values are dropped from the metrics (JSON has no NaN; a NaN that travelled as
    null would make the whole result unreadable) and named in the error instead.
    """
    m = metrics.get(objective)
    finite = {k: v for k, v in metrics.items() if math.isfinite(v.value)}
    if m is None:
        return EvalOutcome(node_id=node_id, status=NodeStatus.INVALID, metrics=finite, cost=cost,
                           error=f"objective {objective!r} missing from the evaluator's metrics")
    if not math.isfinite(m.value):
        word = "nan" if math.isnan(m.value) else "inf"
        return EvalOutcome(node_id=node_id, status=NodeStatus.INVALID, metrics=finite, cost=cost,
                           error=f"objective is {word} ({objective})")
    return EvalOutcome(node_id=node_id, status=NodeStatus.DONE, metrics=finite, cost=cost)


def evaluate_here(job: EvalJob, workdir: Path) -> EvalOutcome:
    """Run the evaluator in this process (the worker side)."""
    harness.mark_start()
    pm = get_plugin_manager()
    domain = pm.get("domain", job.domain)(**job.domain_options)
    evaluator = pm.get("evaluator", job.evaluator)(**job.evaluator_options)
    objective = domain.objective
    try:
        out = evaluator.evaluate(job, workdir)
    except InvalidCandidate as exc:
        return EvalOutcome(node_id=job.node_id, status=NodeStatus.INVALID,
                           error=f"{type(exc).__name__}: {exc}"[:2000])
    except Exception as exc:
        tb = traceback.format_exc(limit=-3)
        (workdir / "evaluator_traceback.txt").write_text(tb)
        return EvalOutcome(node_id=job.node_id, status=NodeStatus.FAILED,
                           error=f"{type(exc).__name__}: {exc}"[:2000])
    values, cost = out if isinstance(out, tuple) else (out, Cost())
    metrics: dict[str, Metric] = {}
    for name, v in values.items():
        if isinstance(v, Metric):
            metrics[name] = v
        else:
            direction = objective.direction if name == objective.name else Direction.MIN
            metrics[name] = Metric(name=name, value=float(v), direction=direction)
    # Wall and CPU time are measured by the parent around the whole process.
    return classify(job.node_id, metrics, objective.name, cost)


def main(argv: list[str] | None = None) -> int:
    job_path, result_path = (argv or sys.argv[1:])[:2]
    job = EvalJob.model_validate_json(Path(job_path).read_text())
    outcome = evaluate_here(job, Path.cwd())
    tmp = Path(result_path).with_suffix(".tmp")
    tmp.write_text(outcome.model_dump_json())
    tmp.replace(result_path)  # atomic: a half-written result is never read
    return 0


if __name__ == "__main__":
    sys.exit(main())
