"""How well screening ranks designs for the full proxy, as measured and credited for size.

Reads finished campaign run directories (the default campaign's, or any halving search with a
screening rung below 1.0) and takes every candidate measured at both the first rung and the top
rung at the campaign seed. For each credit k it prints the rank correlation (Spearman, Kendall)
between the credited screening score, ``score - k * ln(params / median)`` (the halving
scaffold's ``size_credit``), and the full-proxy score, per campaign seed and pooled. Several
run directories of the same seed count each candidate once.

    .venv/bin/python bench/screening_credit.py RUN_DIR [RUN_DIR ...] [--credits 0 0.1 0.15 0.3]

Candidates reach the top rung only when screening ranked them high, so these pairs span a
narrow slice of what was screened; the correlations say how well screening orders the designs
the search promotes, not every design.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

from scipy import stats

from cambrian import MetricSpec, NodeStatus
from cambrian.core.store import Store


def pairs(run_dirs: list[Path], objective: MetricSpec) -> dict[int, dict[str, tuple[float, float, float]]]:
    """Per campaign seed: candidate hash -> (screening score, full score, params), both at the seed."""
    out: dict[int, dict[str, tuple[float, float, float]]] = {}
    for run in run_dirs:
        nodes = Store(run / "store.sqlite", create=False).nodes(phase="search", status=NodeStatus.DONE)
        if not nodes:
            continue
        seed = min(n.seed for n in nodes)  # the campaign seed: reseeds use seed + 1, + 2, ...
        low, top = min(n.fidelity for n in nodes), max(n.fidelity for n in nodes)
        at: dict[tuple[str, float], tuple[float, float]] = {}
        for n in nodes:
            if n.seed == seed and n.fidelity in (low, top) and (v := n.score(objective)) is not None \
                    and "params" in n.metrics:
                at[(n.candidate.hash, n.fidelity)] = (v, n.metrics["params"].value)
        for (h, f), (v, size) in at.items():
            if f == low and (h, top) in at and low < top:
                out.setdefault(seed, {})[h] = (v, at[(h, top)][0], size)
    return out


def correlations(rows: list[tuple[float, float, float]], k: float) -> tuple[float, float]:
    middle = statistics.median(size for _, _, size in rows)
    credited = [s - k * math.log(size / middle) for s, _, size in rows]
    full = [f for _, f, _ in rows]
    return float(stats.spearmanr(credited, full).statistic), float(stats.kendalltau(credited, full).statistic)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--credits", nargs="+", type=float, default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.3])
    ap.add_argument("--objective", default="bpb")
    args = ap.parse_args()
    by_seed = pairs(args.runs, MetricSpec(name=args.objective))
    seeds = sorted(by_seed)
    print("pairs per campaign seed: " + ", ".join(f"{s}: {len(by_seed[s])}" for s in seeds))
    print(f"{'credit':>7} " + " ".join(f"{'seed ' + str(s):>14}" for s in seeds) + f" {'pooled':>14}")
    for k in args.credits:
        cells = [correlations(list(by_seed[s].values()), k) for s in seeds]
        pooled = [r for s in seeds for r in by_seed[s].values()]
        cells.append(correlations(pooled, k))
        print(f"{k:7.2f} " + " ".join(f"{sp:6.2f} / {kt:5.2f}" for sp, kt in cells))
    print("(each cell: Spearman / Kendall between the credited screening score and the full-proxy score)")


if __name__ == "__main__":
    main()
