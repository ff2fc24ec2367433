"""``local``: an asynchronous pool of evaluation workers on this machine.

A thread per slot; a finished evaluation frees its slot at once (no round
barrier). With ``isolation: process`` (the default) each evaluation is its own
sandboxed process (cambrian.execution.evaluation.start_job/finish_job): limits,
scrubbed environment, a kill on cancel or timeout. With ``warm: true`` (the
default, on Linux) those processes are forked from a fork server that imported
torch and the plugins once (cambrian.execution.forkserver), instead of a fresh
interpreter per evaluation: the same confinement, without ~0.5-4 CPU-s of
start-up each. A server that dies is restarted for the next evaluation; one that
can't start at all leaves the executor on fresh processes. ``isolation: thread`` runs
the evaluator inside the worker thread instead, for trusted evaluators whose
work is cheap next to a Python process start (~0.4 s of CPU): no sandbox, no
limits, and a cancelled evaluation resolves at once as cancelled but its
thread runs on to completion in the background.

The idle lane (``idle_workers``, process isolation on Linux): evaluations the campaign
can run early (cambrian.campaign.idle_lane) run beside the ``workers`` under SCHED_IDLE,
so they use only CPU time the workers leave idle and never slow them down.

Options: workers (2), idle_workers (1), isolation ("process"), warm (true), preload (modules the
fork server imports, or module:function to call; default: forkserver.DEFAULT_PRELOAD, the
generic ones, plus the domain's own ``Domain.preload``).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

from pydantic import Field

from cambrian import Cost, EvalJob, EvalOutcome, Executor, ExecutorOptions, NodeStatus, hookimpl
from cambrian.core.plugins import get_plugin_manager
from cambrian.execution.evaluation import evaluate_here, finish_job, job_dir, start_job, uses_gpu
from cambrian.execution.forkserver import DEFAULT_PRELOAD, ForkServer

log = logging.getLogger(__name__)


def run_in_thread(job: EvalJob) -> EvalOutcome:
    """Evaluate ``job`` in this process (trusted evaluators only); wall and CPU time measured here."""
    workdir = job_dir(job) / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.monotonic(), time.thread_time()
    outcome = evaluate_here(job, workdir)
    cost = Cost(wall_s=time.monotonic() - t0, cpu_s=time.thread_time() - c0)
    return outcome.model_copy(update={"cost": outcome.cost + cost})


class LocalExecutor(Executor):
    name = "local"

    class Options(ExecutorOptions):
        workers: int = Field(2, ge=1, description="evaluations running at once")
        idle_workers: int = Field(1, ge=0, description="evaluations that can wait, run beside the workers at "
                                  "idle CPU priority (SCHED_IDLE; process isolation on Linux only; 0: none)")
        isolation: Literal["process", "thread"] = Field(
            "process", description="process: sandboxed process per evaluation; thread: trusted, in-process")
        warm: bool = Field(True, description="fork evaluations from a warm fork server (Linux)")
        preload: tuple[str, ...] | None = Field(
            None, description="modules the fork server imports, or module:function to call (null: the "
            "generic ones plus the domain's Domain.preload)")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        isolation, warm, preload, workers = (self.options.isolation, self.options.warm, self.options.preload,
                                             self.workers)
        self.isolation = isolation
        if isolation == "thread":
            get_plugin_manager()  # load plugins once, before worker threads race to do it
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cambrian-eval")
        if isolation == "process" and sys.platform.startswith("linux") and self.options.idle_workers:
            self.idle_workers = self.options.idle_workers
            self._idle_pool = ThreadPoolExecutor(max_workers=self.idle_workers, thread_name_prefix="cambrian-idle")
        self._procs: dict[str, Any] = {}
        self._futures: dict[str, Future[EvalOutcome]] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self.warm = warm and isolation == "process" and sys.platform.startswith("linux")
        self._preload = (tuple(preload) if preload is not None
                         else (*DEFAULT_PRELOAD, *self.worker_preload))
        self._server: ForkServer | None = None
        self._server_lock = threading.Lock()
        self._closed = False
        if self.warm:  # start importing now, while the campaign sets up its first candidates
            threading.Thread(target=self._fork_server, daemon=True, name="cambrian-forkserver-start").start()

    def _fork_server(self) -> ForkServer | None:
        """The running fork server, started (or restarted after it died) on first use."""
        if not self.warm:
            return None
        with self._server_lock:
            if self._closed:
                return None
            if self._server is None or not self._server.alive:
                if self._server is not None:  # a dead server: reap it and remove its folder
                    self._server.close()
                try:
                    self._server = ForkServer(self._preload)
                except (OSError, RuntimeError) as exc:
                    log.warning("local executor: no fork server (%s); using a fresh process per evaluation", exc)
                    self.warm, self._server = False, None
            return self._server

    def _resolve(self, node_id: str, outcome: EvalOutcome) -> None:
        with self._lock:
            fut = self._futures.pop(node_id, None)
            self._procs.pop(node_id, None)
        if fut is not None and not fut.done():
            fut.set_result(outcome)

    def _run(self, job: EvalJob) -> None:
        try:
            proc = None
            server = self._fork_server() if self.isolation == "process" else None
            with self._lock:
                if job.node_id in self._cancelled:
                    mode = "cancelled"
                elif self.isolation == "process":
                    mode, proc = "process", start_job(job, server)
                    self._procs[job.node_id] = proc
                else:
                    mode = "thread"
            if mode == "process":
                outcome = finish_job(job, proc)
            elif mode == "thread":
                outcome = run_in_thread(job)
            else:
                outcome = EvalOutcome(node_id=job.node_id, status=NodeStatus.CANCELLED,
                                      error="stopped before it started")
        except Exception as exc:  # noqa: BLE001 - the future never raises: failures are outcomes
            outcome = EvalOutcome(node_id=job.node_id, status=NodeStatus.FAILED,
                                  error=f"executor error: {type(exc).__name__}: {exc}")
        self._resolve(job.node_id, outcome)

    def submit(self, job: EvalJob) -> Future[EvalOutcome]:
        fut: Future[EvalOutcome] = Future()
        with self._lock:
            self._futures[job.node_id] = fut
        self._pool.submit(self._run, job)
        return fut

    def submit_idle(self, job: EvalJob) -> Future[EvalOutcome] | None:
        if not self.idle_workers or uses_gpu(job):  # a GPU is not shared by CPU priority
            return None
        fut: Future[EvalOutcome] = Future()
        with self._lock:
            self._futures[job.node_id] = fut
        self._idle_pool.submit(self._run, job.model_copy(update={"limits": {**job.limits, "idle_priority": True}}))
        return fut

    def cancel(self, node_id: str) -> None:
        with self._lock:
            self._cancelled.add(node_id)
            proc = self._procs.get(node_id)
        if proc is not None:
            proc.kill()  # finish_job then reports it as cancelled
        elif self.isolation == "thread":  # a thread can't be killed: resolve now, let it run out
            self._resolve(node_id, EvalOutcome(node_id=node_id, status=NodeStatus.CANCELLED,
                                               error="stopped: budget exhausted"))

    def shutdown(self) -> None:
        with self._lock:
            procs = list(self._procs.values())
            pending = list(self._futures)
            self._cancelled.update(pending)
        for p in procs:
            p.kill()
        self._pool.shutdown(wait=self.isolation == "process", cancel_futures=True)
        if self.idle_workers:
            self._idle_pool.shutdown(wait=True, cancel_futures=True)
        with self._server_lock:
            self._closed = True
            if self._server is not None:
                self._server.close()
                self._server = None
        for node_id in pending:  # queued jobs the pool dropped still get an outcome
            self._resolve(node_id, EvalOutcome(node_id=node_id, status=NodeStatus.CANCELLED,
                                               error="stopped: executor shut down"))


@hookimpl
def cambrian_executors():
    return [LocalExecutor]
