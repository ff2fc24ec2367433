"""``ray``: the executor interface on a Ray cluster (or a local Ray instance).

Each evaluation is a Ray task that runs cambrian.execution.evaluation.run_job on
whichever worker node Ray picks: the same sandboxed process, job file and
result file as the local executor, in the run directory (which must be on a
filesystem every node sees: a shared mount on a real cluster). Results come
back as the task's return value.

Cancelling asks Ray to interrupt the task (the task kills its sandboxed
process group on the way out); if the task hasn't stopped after
``cancel_grace_s`` it is force-cancelled (its worker process is killed).

``isolation: thread`` (trusted evaluators) evaluates inside ``actors``
long-lived Ray actors, each running up to workers/actors evaluations in
threads: one actor call per evaluation is much cheaper than a task on a fresh
worker process (see bench/executor_scaling.py). There ``cpus``/``gpus`` are
reserved per actor, and a cancelled evaluation resolves as cancelled at once
while its thread runs out.

Options (defaults):
  address (None: start a local instance; "auto" or "ray://host:port" to join a cluster),
  num_cpus (None: all; only for a local instance), workers (2: evaluations in flight),
  cpus (1) and gpus (0): resources each evaluation reserves,
  isolation ("process"; "thread" evaluates inside the Ray worker, trusted evaluators only),
  cancel_grace_s (2.0), actors (1; thread isolation only).
"""

from __future__ import annotations

import itertools
import math
import threading
from concurrent.futures import Future
from typing import Any, Literal

from pydantic import Field

from cambrian import EvalJob, EvalOutcome, Executor, ExecutorOptions, NodeStatus, hookimpl
from cambrian.core.plugins import get_plugin_manager
from cambrian.execution.evaluation import finish_job, start_job
from cambrian.plugins.executors.local import run_in_thread


def _evaluate(job_json: str, isolation: str) -> str:
    """Runs on a Ray worker: one evaluation, returned as the outcome's JSON."""
    job = EvalJob.model_validate_json(job_json)
    if isolation == "thread":
        return run_in_thread(job).model_dump_json()
    proc = start_job(job)
    try:
        return finish_job(job, proc).model_dump_json()
    finally:  # interrupted by ray.cancel: take the sandboxed process group down too
        proc.kill()


class _EvalActor:
    """Runs evaluations in its threads (Ray's max_concurrency), for isolation: thread."""

    def __init__(self) -> None:
        get_plugin_manager()  # load plugins once, before threads race to do it

    def run(self, job_json: str) -> str:
        return _evaluate(job_json, "thread")


class RayExecutor(Executor):
    name = "ray"

    class Options(ExecutorOptions):
        workers: int = Field(2, ge=1, description="evaluations running at once")
        address: str | None = Field(None, description="a running cluster (None: start one here)")
        num_cpus: int | None = Field(None, ge=1, description="CPUs of a cluster started here")
        cpus: float = Field(1, ge=0, description="CPUs per evaluation")
        gpus: float = Field(0, ge=0, description="GPUs per evaluation")
        isolation: Literal["process", "thread"] = "process"
        cancel_grace_s: float = Field(2.0, ge=0)
        actors: int = Field(1, ge=1, description="actors for isolation: thread")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        import ray

        o, workers = self.options, self.workers
        address, num_cpus, cpus, gpus = o.address, o.num_cpus, o.cpus, o.gpus
        isolation, cancel_grace_s, actors = o.isolation, o.cancel_grace_s, o.actors
        self._owns = not ray.is_initialized()
        if self._owns:
            kw: dict[str, Any] = {"num_cpus": num_cpus} if address is None and num_cpus is not None else {}
            ray.init(address=address, include_dashboard=False, log_to_driver=False, **kw)
        self.isolation, self.cancel_grace_s = isolation, cancel_grace_s
        if isolation == "process":
            self._task = ray.remote(_evaluate).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
        else:
            n = max(1, min(actors, workers))
            actor = ray.remote(_EvalActor).options(num_cpus=cpus, num_gpus=gpus,
                                                   max_concurrency=math.ceil(workers / n))
            self._actors = [actor.remote() for _ in range(n)]
            self._next_actor = itertools.cycle(self._actors)
        self._refs: dict[str, Any] = {}
        self._futures: dict[str, Future[EvalOutcome]] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()

    def submit(self, job: EvalJob) -> Future[EvalOutcome]:
        out: Future[EvalOutcome] = Future()
        if self.isolation == "process":
            ref = self._task.remote(job.model_dump_json(), self.isolation)
        else:
            ref = next(self._next_actor).run.remote(job.model_dump_json())
        with self._lock:
            self._refs[job.node_id], self._futures[job.node_id] = ref, out
        ref.future().add_done_callback(lambda f, node_id=job.node_id: self._done(node_id, f))
        return out

    def _done(self, node_id: str, ray_future: Future) -> None:
        with self._lock:
            out = self._futures.pop(node_id, None)
            self._refs.pop(node_id, None)
            cancelled = node_id in self._cancelled
        if out is None or out.done():
            return
        try:
            outcome = EvalOutcome.model_validate_json(ray_future.result())
            if cancelled and outcome.status == NodeStatus.FAILED:  # the cancel killed its sandbox
                outcome = outcome.model_copy(update={"status": NodeStatus.CANCELLED,
                                                     "error": "stopped: budget exhausted"})
        except BaseException as exc:  # noqa: BLE001 - the future never raises: failures are outcomes
            if cancelled:
                outcome = EvalOutcome(node_id=node_id, status=NodeStatus.CANCELLED,
                                      error="stopped: budget exhausted")
            else:
                outcome = EvalOutcome(node_id=node_id, status=NodeStatus.FAILED,
                                      error=f"ray task error: {type(exc).__name__}: {exc}"[:2000])
        out.set_result(outcome)

    def cancel(self, node_id: str) -> None:
        import ray

        with self._lock:
            ref = self._refs.get(node_id)
            self._cancelled.add(node_id)
        if ref is None:
            return
        if self.isolation == "thread":  # a thread can't be killed: resolve now, let it run out
            with self._lock:
                out = self._futures.pop(node_id, None)
                self._refs.pop(node_id, None)
            if out is not None and not out.done():
                out.set_result(EvalOutcome(node_id=node_id, status=NodeStatus.CANCELLED,
                                           error="stopped: budget exhausted"))
            return
        ray.cancel(ref, force=False)  # KeyboardInterrupt in the task: it kills its sandbox

        def force() -> None:
            with self._lock:
                still = node_id in self._refs
            if still:
                ray.cancel(ref, force=True)

        timer = threading.Timer(self.cancel_grace_s, force)
        timer.daemon = True
        timer.start()

    def shutdown(self) -> None:
        import ray

        with self._lock:
            refs = dict(self._refs)
            self._cancelled.update(refs)
        for ref in refs.values():
            ray.cancel(ref, force=self.isolation == "process")
        for actor in getattr(self, "_actors", []):
            ray.kill(actor)
        for node_id in refs:
            with self._lock:
                out = self._futures.pop(node_id, None)
            if out is not None and not out.done():
                out.set_result(EvalOutcome(node_id=node_id, status=NodeStatus.CANCELLED,
                                           error="stopped: executor shut down"))
        if self._owns:
            ray.shutdown()


@hookimpl
def cambrian_executors():
    return [RayExecutor]
