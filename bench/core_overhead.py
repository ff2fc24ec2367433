"""Core overhead per node (proposal, operator, store writes, hook dispatch) vs. a toy evaluation.

Runs the same toy campaign twice: once with an in-process executor that evaluates
instantly (so wall time / nodes is the core's own cost per node), once with the
default sandboxed local executor (the real evaluation time of the trivial domain).
A 3-node campaign runs first, so the one-time imports (langgraph) are not spread
over the measured nodes; that start-up is printed on its own.

    .venv/bin/python bench/core_overhead.py [--nodes 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import Future

from cambrian import Campaign, Executor, hookimpl
from cambrian.execution.evaluation import evaluate_here
from cambrian.core.plugins import get_plugin_manager


class Immediate(Executor):
    """Evaluates in-process at once; the time spent evaluating is kept aside."""

    name = "bench-immediate"
    eval_s = 0.0

    def submit(self, job):
        fut: Future = Future()
        t = time.perf_counter()
        fut.set_result(evaluate_here(job, workdir=None))
        Immediate.eval_s += time.perf_counter() - t
        return fut


class Plugin:
    @hookimpl
    def cambrian_executors(self):
        return [Immediate]

    @hookimpl
    def cambrian_node_evaluated(self, run_dir, node):  # one observer, as a logger would be
        pass


AGENTS = 3


def per_node(executor: str, nodes: int, workers: int) -> float:
    cfg = {"name": "bench", "domain": {"name": "toy", "options": {"dim": 4}},
           "executor": {"name": executor, "options": {"workers": workers}},
           "budget": {"max_nodes": nodes},
           "agents": [{"name": f"a{i}", "scaffold": "random"} for i in range(AGENTS)]}
    with tempfile.TemporaryDirectory() as d:
        Immediate.eval_s = 0.0
        t = time.perf_counter()
        Campaign.from_config(cfg, d).run()
        return (time.perf_counter() - t - Immediate.eval_s) / nodes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=300)
    ap.add_argument("--eval-nodes", type=int, default=12)
    args = ap.parse_args()
    get_plugin_manager().register(Plugin(), "bench")
    t = time.perf_counter()
    per_node("bench-immediate", 3, 1)  # first campaign in the process: imports (langgraph), warm-up
    startup = time.perf_counter() - t
    core = per_node("bench-immediate", args.nodes, 1)
    evaluation = per_node("local", args.eval_nodes, 1)
    print(f"core overhead per node: {core * 1e3:.2f} ms (target < 5 ms) over {args.nodes} nodes "
          f"(one-time start of the first campaign: {startup:.1f} s); "
          f"sandboxed toy evaluation: {evaluation * 1e3:.0f} ms per node; "
          f"core/evaluation ratio: {core / evaluation:.4f}")


if __name__ == "__main__":
    main()
