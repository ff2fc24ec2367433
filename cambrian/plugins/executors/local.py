"""``local``: an asynchronous pool of sandboxed worker processes on this machine.

Each evaluation is its own sandboxed process; a thread per slot waits on it,
so a finished evaluation frees its slot at once (no round barrier).
Options: workers (2).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from cambrian import EvalJob, EvalOutcome, Executor, NodeStatus, hookimpl
from cambrian.core.evaluation import finish_job, start_job


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, workers: int = 2, **options: Any) -> None:
        super().__init__(workers=workers, **options)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cambrian-eval")
        self._procs: dict[str, Any] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()

    def _run(self, job: EvalJob) -> EvalOutcome:
        try:
            with self._lock:
                if job.node_id in self._cancelled:
                    return EvalOutcome(node_id=job.node_id, status=NodeStatus.CANCELLED,
                                       error="stopped before it started")
                proc = self._procs[job.node_id] = start_job(job)
            return finish_job(job, proc)
        except Exception as exc:  # the future never raises: failures are outcomes
            return EvalOutcome(node_id=job.node_id, status=NodeStatus.FAILED,
                               error=f"executor error: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._procs.pop(job.node_id, None)

    def submit(self, job: EvalJob) -> Future[EvalOutcome]:
        return self._pool.submit(self._run, job)

    def cancel(self, node_id: str) -> None:
        with self._lock:
            self._cancelled.add(node_id)
            proc = self._procs.get(node_id)
        if proc is not None:
            proc.kill()

    def shutdown(self) -> None:
        with self._lock:
            procs = list(self._procs.values())
        for p in procs:
            p.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)


@hookimpl
def cambrian_executors():
    return [LocalExecutor]
