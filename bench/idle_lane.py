"""What an idle-lane evaluation costs the evaluations beside it, and what it gets.

Every job trains the same small torch loop (one thread, a few seconds alone) in the
sandbox, as an evaluation would. Side by side in one process, on a machine with
``--workers`` cores (2 here):

  reference   ``workers`` normal jobs at once
  lane        the same, with one more job under ``sandbox.idle_priority`` (SCHED_IDLE and its
              session's autogroup at nice 19: cambrian.execution.sandbox.lower_priority)
  sched_idle  the same, with the extra job under SCHED_IDLE alone (what the lane did first)
  fill        ``workers - 1`` normal jobs and the lane job: does it get the idle core?

Prints, per setting, the normal jobs' median wall seconds and their ratio to the reference
(1.00: the lane costs them nothing), and the extra job's CPU seconds while they ran
against the CPU seconds a normal job used in that time (its share of a core).

    .venv/bin/python bench/idle_lane.py [--workers 2] [--steps 100000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
from pathlib import Path

from cambrian.core.config import SandboxLimits
from cambrian.execution.sandbox import run_sandboxed

# One job: a fixed amount of work; prints its wall and CPU seconds (the extra job stops
# when the file STOP appears, i.e. once the normal jobs are done, and prints what it used).
JOB = """
import os, sys, time, torch
if sys.argv[1] == "sched_idle":
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
torch.set_num_threads(1)
a, w = torch.randn(64, 128), torch.randn(128, 128) * 0.05
t, c = time.perf_counter(), time.process_time()
for i in range(int(sys.argv[2])):
    a = torch.tanh(a @ w)
    if sys.argv[3] != "-" and i % 50 == 0 and os.path.exists(sys.argv[3]):
        break
print(time.perf_counter() - t, time.process_time() - c)
"""


def run(jobs: list[tuple[str, bool]], steps: int, tmp: Path) -> tuple[list[float], list[float], float | None]:
    """Start ``jobs`` ((mode, extra) each) at once; the normal jobs' walls and CPU, the extra job's CPU."""
    stop = tmp / "STOP"
    stop.unlink(missing_ok=True)
    out: dict[int, tuple[float, float]] = {}

    def one(i: int, mode: str, extra: bool) -> None:
        limits = SandboxLimits(timeout_s=600, idle_priority=mode == "lane")
        res = run_sandboxed([sys.executable, "-c", JOB, mode, str(steps * (100 if extra else 1)),
                             str(stop) if extra else "-"], tmp / f"w{i}", limits)
        wall, cpu = map(float, res.stdout_tail.split())
        out[i] = (wall, cpu)

    threads = [threading.Thread(target=one, args=(i, m, e)) for i, (m, e) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t, (_, extra) in zip(threads, jobs):
        if not extra:
            t.join()
    stop.touch()
    for t in threads:
        t.join()
    normal = [out[i] for i, (_, e) in enumerate(jobs) if not e]
    extra_cpu = next((out[i][1] for i, (_, e) in enumerate(jobs) if e), None)
    return [w for w, _ in normal], [c for _, c in normal], extra_cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    settings = {
        "reference": [("normal", False)] * a.workers,
        "lane": [("normal", False)] * a.workers + [("lane", True)],
        "sched_idle": [("normal", False)] * a.workers + [("sched_idle", True)],
        "fill": [("normal", False)] * (a.workers - 1) + [("lane", True)],
    }
    walls: dict[str, list[float]] = {k: [] for k in settings}
    shares: dict[str, list[float]] = {k: [] for k in settings}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.rounds):  # interleaved: the machine's drift hits every setting alike
            for name, jobs in settings.items():
                w, c, extra = run(jobs, a.steps, Path(tmp))
                walls[name] += w
                if extra is not None:
                    shares[name].append(extra / statistics.median(c))
    ref = statistics.median(walls["reference"])
    for name in settings:
        med = statistics.median(walls[name])
        share = f", extra job got {statistics.median(shares[name]):.1%} of a core" if shares[name] else ""
        print(f"{name:10s} normal jobs {med:6.2f} s  ratio to reference {med / ref:.2f}{share}")


if __name__ == "__main__":
    main()
