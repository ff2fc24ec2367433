"""Is the discovery real? Two checks of the default campaign's search.

Ladder (default): the finalists of a finished default campaign (every design that reached
the top fidelity) and the four hand-built baselines, trained at the proxy and at each
larger rung through the compose evaluator's train-and-score path (val split, one seed),
then the rank agreement (Spearman and Kendall, exact p for small n) between the proxy and
the top rung.

    .venv/bin/python bench/discovery.py --run runs/compose-demo-...   # after `make demo`

Policies (``--policies``): every built-in scaffold and random, each alone in a small compose
campaign at an equal node budget, for several campaign seeds; the best design of each (the
leaderboard's: mean at the highest fidelity) is trained again with fresh seeds and scored
on the hidden split. Prints each policy's best hidden score per seed, their mean, and the
ratio to random's mean side by side.

    .venv/bin/python bench/discovery.py --policies --seeds 0 1 2 --nodes 10
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

# A small proxy for the policy comparison (seconds per candidate on one core).
SMALL = {"family": "hybrid", "d_model": 32, "n_layers": 4, "seq_len": 64, "batch_size": 8,
         "train_tokens": 100_000, "lr": 0.003, "val_tokens": 8192, "mqar_steps": 0}

POLICIES: dict[str, dict[str, Any]] = {
    "random": {"scaffold": {"name": "random"}, "operators": ["spec-random", "spec-mutate"]},
    "greedy": {"scaffold": {"name": "greedy", "options": {"n_drafts": 3}},
               "operators": ["spec-random", "spec-mutate"]},
    "mcts": {"scaffold": {"name": "mcts", "options": {"n_drafts": 3, "n_children": 2}},
             "operators": ["spec-random", "spec-mutate"]},
    "evolutionary": {"scaffold": {"name": "evolutionary", "options": {"population": 4}},
                     "operators": ["spec-random", "spec-mutate", "spec-crossover"]},
    "bo": {"scaffold": {"name": "bo", "options": {"n_startup": 4}}, "operators": ["space-draft"]},
    "halving+random": {"scaffold": {"name": "halving", "options": {
        "inner": {"name": "random"}, "rungs": [0.25, 1.0], "eta": 3, "reseed_top": 1, "seeds": 2}},
        "operators": ["spec-random", "spec-mutate"]},
}


def policies(args: argparse.Namespace) -> int:
    from cambrian import Campaign

    cache = str(Path(args.cache_dir))
    results: dict[str, list[float | None]] = {}
    cost: dict[str, float] = {}
    for name in args.only or list(POLICIES):
        results[name] = []
        cost[name] = 0.0
        for seed in args.seeds:
            cfg = {"name": f"policy-{name}", "seed": seed,
                   "domain": {"name": "compose", "options": {**SMALL, "cache_dir": cache}},
                   "executor": {"name": "local", "options": {"workers": args.workers}},
                   "sandbox": {"threads": 1, "timeout_s": 600},
                   "budget": {"max_nodes": args.nodes},
                   "agents": [{"name": name.replace("+", "-"), **POLICIES[name]}],
                   "phases": {"aggregation": False, "scaling": False,
                              "hidden": {"top_k": 1, "seeds": args.hidden_seeds, "baselines": []}}}
            with tempfile.TemporaryDirectory() as tmp:
                campaign = Campaign.from_config(cfg, Path(tmp) / "run")
                campaign.run()
                store = campaign.open_store()
                hidden = store.get_meta("phase:hidden") or {}
                cost[name] += sum(n.cost.cpu_s for n in store.nodes())  # evaluation CPU seconds
                best = next((d for d in hidden.get("designs", []) if d["kind"] != "baseline"), None)
                results[name].append(best["mean"] if best else None)
                print(f"  {name:15s} seed {seed}: best hidden {best['mean'] if best else None}"
                      f"  ({best['pattern'] if best else '-'})", flush=True)

    def mean(v: list[float | None]) -> float | None:
        ok = [x for x in v if x is not None]
        return statistics.fmean(ok) if ok else None

    ref = mean(results.get("random", []))
    print(f"\npolicies at {args.nodes} nodes, campaign seeds {args.seeds}, hidden: {args.hidden_seeds} "
          f"fresh seeds (bpb, lower is better; load {os.getloadavg()[0]:.1f})")
    for name, vals in results.items():
        m = mean(vals)
        ratio = f"{m / ref:.3f}x random" if m is not None and ref else "-"
        print(f"{name:15s} best hidden per seed {[f'{v:.3f}' if v is not None else 'failed' for v in vals]}  "
              f"mean {m if m is None else round(m, 4)}  {ratio}  evaluation CPU {cost[name]:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps({"results": results, "cpu_s": cost, "nodes": args.nodes,
                                              "seeds": args.seeds}, indent=1))
    return 0


def _train(job: tuple[str, str, dict[str, Any], dict[str, Any], int, str]) -> tuple[str, str, dict[str, float], float]:
    """One (rung, design) training through the compose evaluator's train-and-score path."""
    from cambrian.plugins.domains.compose.evaluator import run_proxy
    from cambrian.plugins.domains.compose.phases import rung_spec

    rung_name, label, content, s, seed, run = job
    rung = json.loads(rung_name) if rung_name.startswith("{") else {"name": rung_name}
    with tempfile.TemporaryDirectory() as work:
        c0 = time.process_time()
        m, _ = run_proxy(rung_spec(content, rung), s, split="val", seed=seed, workdir=Path(work),
                         run_dir=Path(run), threads=1, save_model=False)
    return rung["name"], label, m, time.process_time() - c0


def ladder(args: argparse.Namespace) -> int:
    """The finalists and baselines at the proxy and the larger rungs; rank agreement."""
    from concurrent.futures import ProcessPoolExecutor

    from cambrian import Store, standings
    from cambrian.core.config import parse_config
    from cambrian.plugins.domains.compose.domain import ComposeDomain, settings
    from cambrian.scaling.ladder import rank_agreement

    store = Store(args.run, create=False)
    cfg = parse_config(store.get_meta("config"))
    domain = ComposeDomain(**cfg.domain.options)
    s0 = settings(cfg.domain.options)
    seed = int(cfg.seed) if args.seed is None else args.seed
    nodes = store.nodes(phase="search")
    top = max(n.fidelity for n in nodes)
    # one entry per design (by canonical hash): a baseline the search promoted is one design
    designs: dict[str, tuple[str, dict[str, Any]]] = {}
    for r in standings(nodes, domain.objective, fidelity=top):
        designs[r.hash] = (f"finalist {r.node.id}", r.node.candidate.content)
    for name, c in domain.baselines().items():
        label = designs[c.hash][0] + f" = {name}" if c.hash in designs else name
        designs[c.hash] = (label, c.content)
    rungs = [{"name": "proxy"}] + [json.loads(r) for r in args.rung]
    scores: dict[str, dict[str, float]] = {r["name"]: {} for r in rungs}
    # the proxy's scores are the search's own (fidelity 1 at this seed) where it has them
    proxy = {n.candidate.hash: n for n in nodes if n.fidelity == 1.0 and n.seed == seed
             and n.score(domain.objective) is not None}
    jobs = []
    for rung in rungs:
        s = {**s0, **{k: v for k, v in rung.items() if k in s0}, "mqar_steps": 0}
        for h, (label, content) in designs.items():
            if rung["name"] == "proxy" and h in proxy:
                scores["proxy"][label] = proxy[h].metrics["bpb"].value
                print(f"  proxy    {label:34s} bpb {scores['proxy'][label]:.4f}  (the search's node {proxy[h].id})")
                continue
            jobs.append((json.dumps(rung) if rung["name"] != "proxy" else "proxy", label, content, s, seed, args.run))
    t0 = time.perf_counter()
    cpu = 0.0
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        for rung_name, label, m, c in pool.map(_train, jobs):
            scores[rung_name][label] = m["bpb"]
            cpu += c
            print(f"  {rung_name:8s} {label:34s} bpb {m['bpb']:.4f}  params {int(m['params'])}  cpu {c:.0f} s",
                  flush=True)
    first, last = rungs[0]["name"], rungs[-1]["name"]
    ra = rank_agreement(scores[first], scores[last])
    print(f"\nrank agreement {first} -> {last} over {ra.n} designs: Spearman {ra.spearman:.3f} (p {ra.spearman_p:.3g}), "
          f"Kendall {ra.kendall:.3f} (p {ra.kendall_p:.3g}); {time.perf_counter() - t0:.0f} s wall, "
          f"{cpu:.0f} CPU s of training")
    for label in sorted(scores[first], key=scores[first].get):
        print(f"  {label:34s} proxy {scores[first][label]:.4f}  {last} {scores[last].get(label, float('nan')):.4f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"scores": scores, "rank_agreement": dataclasses.asdict(ra)}, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policies", action="store_true", help="compare the scaffolds with random")
    ap.add_argument("--run", help="a finished default campaign's run directory (ladder mode)")
    ap.add_argument("--rung", action="append", default=[],
                    help='a larger rung as JSON, e.g. \'{"name": "x2", "d_model": 96, "depth": 1.5, '
                         '"train_tokens": 1200000}\' (repeatable)')
    ap.add_argument("--seed", type=int, default=None, help="training seed (ladder; default: the campaign's)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="campaign seeds (policies)")
    ap.add_argument("--nodes", type=int, default=10, help="evaluations per campaign (policies)")
    ap.add_argument("--hidden-seeds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--only", nargs="*", help="policies to run (default: all)")
    ap.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "cambrian"))
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    if args.policies:
        return policies(args)
    if not args.run:
        ap.error("give --run RUN_DIR (a finished default campaign) or --policies")
    if not args.rung:
        args.rung = ['{"name": "x2", "d_model": 96, "depth": 1.5, "train_tokens": 1200000}']
    return ladder(args)


if __name__ == "__main__":
    raise SystemExit(main())
