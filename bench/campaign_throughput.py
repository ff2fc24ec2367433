"""Compose campaign throughput: candidates per CPU-hour and the share of wall time outside training.

Runs a compose search campaign (phases off) with the default proxy settings, then reads the
store: every node's process wall time (cost.wall_s) and, from the evaluator's own metrics, the
time spent in the training loop (train_s), bpb scoring (eval_s), MQAR (mqar_s) and data/model
setup (setup_s). The CPU time available is campaign wall x workers. Everything that is not
training or scoring is overhead: coordination (CPU slots idle between evaluations), process
start and imports, data loading and model construction.

Side by side, the same candidates are trained in this process (no campaign, no subprocess):
the reference cost per candidate. The result line gives the campaign's cost per candidate as a
ratio of that reference.

    .venv/bin/python bench/campaign_throughput.py [--nodes 8] [--workers 2] [--train-tokens 300000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from cambrian import Campaign, NodeStatus


def config(nodes: int, workers: int, train_tokens: int, mqar_steps: int) -> dict:
    return {
        "name": "throughput", "seed": 0,
        "domain": {"name": "compose", "options": {"train_tokens": train_tokens, "mqar_steps": mqar_steps}},
        "executor": {"name": "local", "options": {"workers": workers}},
        "sandbox": {"threads": 1},
        "budget": {"max_nodes": nodes},
        "agents": [{"name": "greedy", "scaffold": {"name": "greedy", "options": {"n_drafts": 2}},
                    "max_in_flight": workers},
                   {"name": "evolutionary", "scaffold": {"name": "evolutionary", "options": {"population": 3}},
                    "max_in_flight": workers}],
        "phases": {"aggregation": False, "scaling": False, "hidden": False},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train-tokens", type=int, default=300_000)
    ap.add_argument("--mqar-steps", type=int, default=100)
    ap.add_argument("--reference", type=int, default=2, help="candidates re-trained in-process as the reference")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        campaign = Campaign.from_config(config(args.nodes, args.workers, args.train_tokens, args.mqar_steps),
                                        run_dir)
        t0 = time.perf_counter()
        campaign.run()
        wall = time.perf_counter() - t0
        nodes = [n for n in campaign.open_store().nodes(phase="search") if n.status == NodeStatus.DONE]
        m = lambda n, k: n.metrics[k].value if k in n.metrics else 0.0
        train = sum(m(n, "train_s") for n in nodes)
        score = sum(m(n, "eval_s") + m(n, "mqar_s") for n in nodes)
        setup = sum(m(n, "setup_s") for n in nodes)
        proc = sum(n.cost.wall_s for n in nodes)
        slots = wall * args.workers
        start = proc - train - score - setup  # process start, imports, corpus open, result writing
        coord = slots - proc  # CPU slots with no evaluation running

        # Reference: the same candidates trained here, one after the other, one thread.
        import torch

        from cambrian.plugins.domains.compose.domain import settings
        from cambrian.plugins.domains.compose.evaluator import run_proxy

        torch.set_num_threads(1)
        s = settings(campaign.config.domain.options)
        ref, ref_train = [], []
        for n in nodes[:args.reference]:
            t = time.perf_counter()
            metrics, _ = run_proxy(n.candidate.content, s, split="val", seed=0, workdir=Path(tmp),
                                   run_dir=run_dir, threads=1)
            ref.append(time.perf_counter() - t)
            ref_train.append(metrics["train_s"])
    per_cand = slots / max(1, len(nodes))
    ref_per = sum(ref) / max(1, len(ref))
    out = {
        "candidates": len(nodes), "workers": args.workers, "campaign_wall_s": round(wall, 1),
        "candidates_per_cpu_hour": round(len(nodes) / (slots / 3600), 1),
        "share_outside_training": round(1 - train / slots, 3),
        "share_outside_training_and_scoring": round(1 - (train + score) / slots, 3),
        "breakdown_share": {"training": round(train / slots, 3), "scoring_bpb_mqar": round(score / slots, 3),
                            "setup_data_model": round(setup / slots, 3),
                            "process_start_imports": round(start / slots, 3),
                            "coordination_idle": round(coord / slots, 3)},
        "reference_in_process_s_per_candidate": round(ref_per, 1),
        "campaign_cpu_s_per_candidate": round(per_cand, 1),
    }
    print(json.dumps(out))
    print(f"campaign_throughput: {out['candidates_per_cpu_hour']} candidates/CPU-hour; "
          f"{100 * out['share_outside_training_and_scoring']:.1f}% of CPU time outside training and scoring "
          f"({100 * out['share_outside_training']:.1f}% outside the training loop; target < 10%); "
          f"cost per candidate {per_cand / ref_per:.2f}x the in-process reference ({ref_per:.1f} s)")


if __name__ == "__main__":
    main()
