"""Compose campaign throughput: candidates per CPU-hour and the share of CPU time outside training.

Runs a compose search campaign (phases off) with the default proxy settings, then accounts
CPU time, which unlike wall time does not depend on what else runs on the machine:

- total: the campaign process's own CPU (coordination: scaffolds, operators, store, executor
  threads) plus every process it started (evaluations, as the sandbox measures them per node,
  and the rest of what ``RUSAGE_CHILDREN`` shows: the fork server's imports, failed nodes);
- training: the CPU time of each evaluation's training loop (metric ``train_cpu_s``);
- scoring: bpb and MQAR (``score_cpu_s``);
- the rest is overhead: coordination, process start and imports, data loading, model
  construction, result files.

Side by side, the same candidates are trained in this process (no campaign, no subprocess):
the reference CPU cost per candidate. The result line gives the campaign's CPU per candidate
as a ratio of that reference. Wall-clock shares are printed too (they are only meaningful on
an otherwise idle machine).

    .venv/bin/python bench/campaign_throughput.py [--nodes 8] [--workers 2] [--train-tokens N] [--fresh]
    .venv/bin/python bench/campaign_throughput.py --run runs/demo    # account a finished run
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from cambrian import Campaign, NodeStatus


def config(nodes: int, workers: int, train_tokens: int | None, warm: bool = True) -> dict:
    return {
        "name": "throughput", "seed": 0,
        "domain": {"name": "compose", "options": {"train_tokens": train_tokens} if train_tokens else {}},
        "executor": {"name": "local", "options": {"workers": workers, "warm": warm}},
        "sandbox": {"threads": 1},
        "budget": {"max_nodes": nodes},
        "agents": [{"name": "greedy", "scaffold": {"name": "greedy", "options": {"n_drafts": 2}},
                    "max_in_flight": workers},
                   {"name": "evolutionary", "scaffold": {"name": "evolutionary", "options": {"population": 3}},
                    "max_in_flight": workers}],
        "phases": {"aggregation": False, "scaling": False, "hidden": False},
    }


def _cpu() -> tuple[float, float]:
    """(this process's CPU seconds, its reaped children's)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train-tokens", type=int, default=None, help="default: the domain's")
    ap.add_argument("--run", type=Path, default=None,
                    help="account the search nodes of this finished run instead of running a campaign "
                         "(the campaign process's own CPU is then not counted)")
    ap.add_argument("--fresh", action="store_true",
                    help="a fresh Python process per evaluation instead of the warm fork server")
    ap.add_argument("--reference", type=int, default=2, help="candidates re-trained in-process as the reference")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.run is not None:
            run_dir = args.run
            campaign = Campaign.resume(run_dir)
            wall, coord_cpu = float(campaign.open_store().get_meta("elapsed_s", 0.0)), 0.0
            children_cpu = 0.0
        else:
            run_dir = Path(tmp) / "run"
            campaign = Campaign.from_config(config(args.nodes, args.workers, args.train_tokens, not args.fresh), run_dir)
            t0, c0 = time.perf_counter(), _cpu()
            campaign.run()
            wall = time.perf_counter() - t0
            c1 = _cpu()
            coord_cpu, children_cpu = c1[0] - c0[0], c1[1] - c0[1]
        searched = campaign.open_store().nodes(phase="search")
        nodes = [n for n in searched if n.status == NodeStatus.DONE]
        m = lambda n, k: n.metrics[k].value if k in n.metrics else 0.0
        train_cpu = sum(m(n, "train_cpu_s") for n in nodes)
        score_cpu = sum(m(n, "score_cpu_s") for n in nodes)
        eval_cpu = sum(n.cost.cpu_s for n in nodes)
        # Every process the campaign started and reaped (evaluations, failed ones too, and the
        # fork server's own imports) is in RUSAGE_CHILDREN; nothing it spent is left out.
        other_cpu = max(0.0, children_cpu - eval_cpu)
        total_cpu = coord_cpu + eval_cpu + other_cpu
        train_wall = sum(m(n, "train_s") for n in nodes)
        score_wall = sum(m(n, "eval_s") + m(n, "mqar_s") for n in nodes)
        slots = wall * args.workers

        # Reference: the same candidates trained here, one after the other, one thread.
        import torch

        from cambrian.plugins.domains.compose.domain import settings
        from cambrian.plugins.domains.compose.evaluator import run_proxy
        from cambrian.scaling.data import open_corpus

        import torch._dynamo  # noqa: F401 - imported by the first optimizer: a one-off, not per candidate

        torch.set_num_threads(1)
        s = settings(campaign.config.domain.options)
        open_corpus(s["corpus"], Path(s["cache_dir"] or run_dir / "cache"))  # built by the campaign: not timed
        ref = []
        for n in nodes[:args.reference]:
            t = time.process_time()
            run_proxy(n.candidate.content, s, split="val", seed=0, workdir=Path(tmp), run_dir=run_dir, threads=1)
            ref.append(time.process_time() - t)
    per_cand = total_cpu / max(1, len(nodes))
    ref_per = sum(ref) / max(1, len(ref))
    out = {
        "candidates": len(nodes), "not_done": {n.id: n.error for n in searched if n.status != NodeStatus.DONE},
        "workers": args.workers, "campaign_wall_s": round(wall, 1),
        "candidates_per_cpu_hour": round(len(nodes) / (total_cpu / 3600), 1),
        "cpu_share_outside_training": round(1 - train_cpu / total_cpu, 3),
        "cpu_share_outside_training_and_scoring": round(1 - (train_cpu + score_cpu) / total_cpu, 3),
        "cpu_s": {"total": round(total_cpu, 1), "training": round(train_cpu, 1), "scoring": round(score_cpu, 1),
                  "evaluation_processes_other": round(eval_cpu - train_cpu - score_cpu, 1),
                  "campaign_process": round(coord_cpu, 1),
                  "other_processes": round(other_cpu, 1)},
        "wall_share_outside_training": round(1 - train_wall / slots, 3),
        "wall_share_outside_training_and_scoring": round(1 - (train_wall + score_wall) / slots, 3),
        "reference_in_process_cpu_s_per_candidate": round(ref_per, 1),
        "campaign_cpu_s_per_candidate": round(per_cand, 1),
    }
    print(json.dumps(out))
    print(f"campaign_throughput: {out['candidates_per_cpu_hour']} candidates/CPU-hour; "
          f"{100 * out['cpu_share_outside_training_and_scoring']:.1f}% of CPU time outside training and scoring, "
          f"{100 * out['cpu_share_outside_training']:.1f}% outside the training loop (target < 10%); "
          f"CPU per candidate {per_cand / ref_per:.2f}x the in-process reference ({ref_per:.1f} CPU-s)")


if __name__ == "__main__":
    main()
