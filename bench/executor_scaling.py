"""Executor throughput as a share of the ideal, 1 to 64 workers, local and Ray.

Each evaluation is a toy-domain job whose evaluator sleeps for a random
duration (no CPU use); it goes through the executor interface exactly as in a
campaign: ``workers`` jobs in flight, a new one submitted as soon as one
finishes. The ideal time is sum(durations) / workers; share = ideal / measured (the
last jobs' tail keeps even a perfect pool a little below 1: more jobs per
worker, less tail). The reference, side by side: a bare ThreadPoolExecutor
sleeping the same durations, with the same tail; vs_ref = its time / ours.

Modes: <executor>-<isolation>; isolation "process" runs each evaluation in its
own sandboxed process (local: forked by the warm fork server, about 0.06 CPU-s
each; ray: a fresh Python process, about 0.4-0.5 s of CPU), "fresh" is local's
process isolation without the fork server, "thread" evaluates in the
worker thread (local) or in a threaded Ray actor (ray), for trusted
evaluators. Ray runs as a local instance (num_cpus = the largest worker count,
logical CPUs); each measurement follows a warm-up round.

    .venv/bin/python bench/executor_scaling.py [--workers 1,2,4,8,16,32,64]
        [--modes local-thread,ray-thread,local-process,local-fresh,ray-process] [--jobs-per-worker 12]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from cambrian import Candidate, EvalJob, NodeStatus
from cambrian.core.config import SandboxLimits
from cambrian.core.plugins import get_plugin_manager


def make_jobs(n: int, workers: int, run_dir: str, lo: float, hi: float, tag: str) -> list[EvalJob]:
    rng = random.Random(f"{workers}:{n}")
    return [EvalJob(node_id=f"{tag}-{workers}-{i}", run_dir=run_dir, domain="toy",
                    domain_options={"dim": 2, "function": "sphere", "sleep_s": round(rng.uniform(lo, hi), 3)},
                    evaluator="toy", candidate=Candidate(kind="vector", content=[i / 1000, 0.0]),
                    limits=SandboxLimits(timeout_s=600).model_dump())
            for i in range(n)]


def drive(submit, jobs: list[EvalJob], workers: int) -> float:
    """Keep ``workers`` jobs in flight until all are done; returns the elapsed seconds."""
    queue, running, t0 = list(jobs), set(), time.perf_counter()
    while queue or running:
        while queue and len(running) < workers:
            running.add(submit(queue.pop(0)))
        done, running = wait(running, return_when=FIRST_COMPLETED)
        for f in done:
            out = f.result()
            if getattr(out, "status", NodeStatus.DONE) != NodeStatus.DONE:
                raise RuntimeError(f"evaluation failed: {out.error}")
    return time.perf_counter() - t0


def _nap(seconds: float) -> None:
    time.sleep(seconds)


def reference(jobs: list[EvalJob], workers: int) -> float:
    with ThreadPoolExecutor(workers) as pool:
        return drive(lambda j: pool.submit(time.sleep, j.domain_options["sleep_s"]), jobs, workers)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", default="1,2,4,8,16,32,64")
    ap.add_argument("--modes", default="local-thread,ray-thread,local-process,ray-process")
    ap.add_argument("--jobs-per-worker", type=int, default=12)
    ap.add_argument("--min-s", type=float, default=0.2)
    ap.add_argument("--max-s", type=float, default=1.0)
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    modes = args.modes.split(",")
    pm = get_plugin_manager()
    run_dir = tempfile.mkdtemp(prefix="cambrian-bench-")
    if any(m.startswith("ray") for m in modes):
        import ray

        ray.init(num_cpus=max(counts), include_dashboard=False, log_to_driver=False)
        if "ray-process" in modes:  # let Ray start its worker processes before measuring
            nap = ray.remote(_nap)
            ray.get([nap.remote(2.0) for _ in range(max(counts))])
    print(f"{'mode':>14} {'workers':>7} {'jobs':>5} {'ideal_s':>8} {'took_s':>8} {'share':>6} "
          f"{'ref_share':>9} {'vs_ref':>6}")
    at_max: dict[str, float] = {}
    for mode in modes:
        name, isolation = mode.split("-")
        for w in counts:
            jobs = make_jobs(args.jobs_per_worker * w, w, run_dir, args.min_s, args.max_s, mode)
            ideal = sum(j.domain_options["sleep_s"] for j in jobs) / w
            options = {"isolation": "process", "warm": False} if isolation == "fresh" else {"isolation": isolation}
            ex = pm.get("executor", name)(workers=w, **options)
            warm = make_jobs(w, w, run_dir, 0.3, 0.3, mode + "-warm")  # start workers, import plugins
            drive(ex.submit, warm, w)
            took = drive(ex.submit, jobs, w)
            ex.shutdown()
            ref_took = reference(jobs, w)
            share = ideal / took
            print(f"{mode:>14} {w:>7} {len(jobs):>5} {ideal:>8.2f} {took:>8.2f} {share:>6.2f} "
                  f"{ideal / ref_took:>9.2f} {ref_took / took:>6.2f}", flush=True)
            at_max[mode] = share
    top = max(counts)
    print(f"executor_scaling: share of ideal at {top} workers: "
          + ", ".join(f"{m} {s:.2f}" for m, s in at_max.items())
          + " (target >= 0.9; vs_ref: against a bare thread pool sleeping the same durations)")


if __name__ == "__main__":
    main()
