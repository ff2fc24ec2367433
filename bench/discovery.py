"""Is the discovery real? Two checks of the default campaign's search.

Ladder (default): the finalists of a finished default campaign (every design that reached
the top fidelity) and the four hand-built baselines, trained at the proxy and at each
larger rung through the compose evaluator's train-and-score path (val split, one seed),
then the rank agreement (Spearman and Kendall, exact p for small n) between the proxy and
the top rung.

    .venv/bin/python bench/discovery.py --run runs/compose-demo-...   # after `make demo`

Policies (``--policies``): every built-in scaffold and random, each alone in a compose
campaign at an equal node budget, for several campaign seeds, at a proxy small enough for
tens of campaigns but where the hand-built baselines score below the count-based bigram
floor (checked and printed first: otherwise the comparison would rank learning speed, not
architectures). The baselines are trained once on the hidden split with the fresh seeds
the campaigns' hidden phase uses; each campaign's best design (the leaderboard's: mean at
the highest fidelity) is trained again with those seeds and scored on the hidden split.
Prints each policy's best hidden score per seed, their mean, the ratio to random's mean
(with ``--only`` and no random: to the first policy's),
and in how many seeds the best beats the strongest baseline beyond the spread (the one
verdict, ``cambrian.scaling.verdict``).

    .venv/bin/python bench/discovery.py --policies --seeds 0 1 2 --nodes 16 --workers 2
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

# The policy comparison's proxy: the default's width, half its depth and window, 293 steps
# (batch 16 x 64, 300k tokens), 4-10 CPU seconds per candidate. An earlier one (d_model 32,
# 100k tokens) left every baseline above the bigram floor, so it compared learning speed.
PROXY = {"family": "hybrid", "d_model": 64, "n_layers": 4, "seq_len": 64, "batch_size": 16,
         "train_tokens": 300_000, "lr": 0.003, "val_tokens": 16384, "mqar_steps": 0}

POLICIES: dict[str, dict[str, Any]] = {
    "random": {"scaffold": {"name": "random"}, "operators": ["spec-random", "spec-mutate"]},
    "greedy": {"scaffold": {"name": "greedy", "options": {"n_drafts": 3}},
               "operators": ["spec-random", "spec-mutate"]},
    "mcts": {"scaffold": {"name": "mcts", "options": {"n_drafts": 3, "n_children": 2}},
             "operators": ["spec-random", "spec-mutate"]},
    "evolutionary": {"scaffold": {"name": "evolutionary", "options": {"population": 4}},
                     "operators": ["spec-random", "spec-mutate", "spec-crossover"]},
    "bo": {"scaffold": {"name": "bo", "options": {"n_startup": 4}}, "operators": ["space-draft"]},
    "bo+gp": {"scaffold": {"name": "bo", "options": {"n_startup": 4, "model": "gp"}}, "operators": ["space-draft"]},
    "halving+random": {"scaffold": {"name": "halving", "options": {
        "inner": {"name": "random"}, "rungs": [0.25, 1.0], "eta": 3, "reseed_top": 1, "seeds": 2}},
        "operators": ["spec-random", "spec-mutate"]},
}


def policies(args: argparse.Namespace) -> int:
    from concurrent.futures import ProcessPoolExecutor

    from cambrian import Campaign
    from cambrian.plugins.domains.compose.domain import ComposeDomain, settings
    from cambrian.scaling.verdict import Row, fresh_seeds, verdict

    cache = str(Path(args.cache_dir))
    options = {**PROXY, "cache_dir": cache}
    hidden = fresh_seeds(args.hidden_seeds, set())  # what every campaign's hidden phase uses
    s = settings(options)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as run, ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        jobs = [("proxy", name, c.content, s, seed, run, "hidden")
                for name, c in ComposeDomain(**options).baselines().items() for seed in hidden]
        runs = list(pool.map(_train, jobs))
    base: dict[str, list[float]] = {}
    for (_, name, *_), (_, _, m, _) in zip(jobs, runs):
        base.setdefault(name, []).append(m["bpb"])
    floor = runs[0][2]["floor_bigram_bpb"]
    base_rows = [Row(name=n, values=v, baseline=True) for n, v in base.items()]
    print(f"baselines on the hidden split, seeds {hidden} ({time.perf_counter() - t0:.0f} s wall); "
          f"bigram floor {floor:.3f}, unigram {runs[0][2]['floor_unigram_bpb']:.3f}:")
    for r in base_rows:
        print(f"  {r.name:10s} {r.text()}  {'below' if max(r.values) < floor else 'NOT below'} the bigram floor")
    meaningful = all(max(r.values) < floor for r in base_rows)
    print("the proxy " + ("ranks architectures: every baseline is below the bigram floor" if meaningful else
                         "is not meaningful: a baseline is not below the bigram floor (a comparison here "
                         "ranks learning speed)"), flush=True)

    results: dict[str, list[float | None]] = {}
    wins: dict[str, int] = {}
    cost: dict[str, float] = {}
    for name in args.only or list(POLICIES):
        results[name], wins[name], cost[name] = [], 0, 0.0
        for seed in args.seeds:
            cfg = {"name": f"policy-{name}", "seed": seed,
                   "domain": {"name": "compose", "options": options},
                   "executor": {"name": "local", "options": {"workers": args.workers}},
                   "sandbox": {"threads": 1, "timeout_s": 600},
                   "budget": {"max_nodes": args.nodes},
                   "agents": [{"name": name.replace("+", "-"), **POLICIES[name]}],
                   # the baselines are trained once, above, on the same hidden seeds
                   "phases": {"references": False, "aggregation": False, "scaling": False,
                              "hidden": {"top_k": 1, "seeds": hidden, "baselines": []}}}
            with tempfile.TemporaryDirectory() as tmp:
                campaign = Campaign.from_config(cfg, Path(tmp) / "run")
                campaign.run()
                store = campaign.open_store()
                cost[name] += sum(n.cost.cpu_s for n in store.nodes())  # evaluation CPU seconds
                best = next(iter((store.get_meta("phase:hidden") or {}).get("designs", [])), None)
                values = [store.node(i).metrics["bpb"].value for i in best["nodes"]] if best else []
            if len(values) != len(hidden):
                results[name].append(None)
                print(f"  {name:15s} seed {seed}: no hidden score", flush=True)
                continue
            v = verdict([Row(name=f"{name} s{seed}", values=values)], base_rows, metric="bpb")
            results[name].append(statistics.fmean(values))
            wins[name] += bool(v.beats_all_baselines)
            print(f"  {name:15s} seed {seed}: {v.text}  ({best['pattern']})", flush=True)

    def mean(v: list[float | None]) -> float | None:
        ok = [x for x in v if x is not None]
        return statistics.fmean(ok) if ok else None

    ref_name = "random" if "random" in results else next(iter(results), "")  # --only without random: the first
    ref = mean(results.get(ref_name, []))
    strongest = min(base_rows, key=lambda r: r.mean)
    print(f"\npolicies at {args.nodes} nodes, campaign seeds {args.seeds}, hidden: {args.hidden_seeds} "
          f"fresh seeds (bpb, lower is better; bigram floor {floor:.3f}; strongest baseline {strongest.name} "
          f"{strongest.text()}; load {os.getloadavg()[0]:.1f})")
    for name, vals in results.items():
        m = mean(vals)
        ratio = f"{m / ref:.3f}x {ref_name}" if m is not None and ref else "-"
        print(f"{name:15s} best hidden per seed {[f'{v:.3f}' if v is not None else 'failed' for v in vals]}  "
              f"mean {m if m is None else round(m, 4)}  {ratio}  beats every baseline in {wins[name]} of "
              f"{len(vals)} seeds  evaluation CPU {cost[name]:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps({
            "results": results, "wins": wins, "cpu_s": cost, "nodes": args.nodes, "seeds": args.seeds,
            "proxy": PROXY, "hidden_seeds": hidden, "floor_bigram_bpb": floor, "meaningful": meaningful,
            "baselines": {r.name: r.values for r in base_rows}}, indent=1))
    return 0


def _train(job: tuple[str, str, dict[str, Any], dict[str, Any], int, str, str]
           ) -> tuple[str, str, dict[str, float], float]:
    """One (rung, design) training through the compose evaluator's train-and-score path:
    (rung, label, spec, settings, seed, run dir, split)."""
    from cambrian.plugins.domains.compose.evaluator import run_proxy
    from cambrian.plugins.domains.compose.phases import rung_spec

    rung_name, label, content, s, seed, run, split = job
    rung = json.loads(rung_name) if rung_name.startswith("{") else {"name": rung_name}
    with tempfile.TemporaryDirectory() as work:
        c0 = time.process_time()
        m, _ = run_proxy(rung_spec(content, rung), s, split=split, seed=seed, workdir=Path(work),
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
            jobs.append((json.dumps(rung) if rung["name"] != "proxy" else "proxy", label, content, s, seed, args.run,
                         "val"))
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
    ap.add_argument("--nodes", type=int, default=16, help="evaluations per campaign (policies)")
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
