"""The compose pack's figures: scaling curves with their fits, and scores along the ladder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cambrian.plugins.reporting.figures import palette, pyplot, save


def scaling_curves(summary: dict[str, Any] | None, path: Path) -> Path | None:
    """Per design: one point per rung (loss vs compute; hollow: on the unigram plateau, not fitted)
    and the fitted power law where the ladder resolves one."""
    if not summary or not summary.get("designs"):
        return None
    designs = [d for d in summary["designs"] if (d.get("claim") or d.get("fit") or {}).get("points")
               or (d.get("claim") or {}).get("dropped")]
    if not designs:
        return None
    plt = pyplot()
    colors = palette([d["label"] for d in designs])
    fig, ax = plt.subplots(figsize=(8, 5))
    for d in designs:
        claim, f, c = d.get("claim") or d.get("fit"), d.get("fit"), colors[d["label"]]
        pts, dropped = claim.get("points") or [], claim.get("dropped") or []
        if dropped:
            ax.scatter([p[0] for p in dropped], [p[1] for p in dropped], facecolors="none", edgecolors=c, s=18,
                       label=f"{d['label']}: on the unigram plateau" if not pts else None)
        if not pts:
            continue
        C = np.array([p[0] for p in pts])
        L = np.array([p[1] for p in pts])
        if f:
            grid = np.geomspace(C.min(), C.max() * 1.5, 50)
            extra = f" ({d['vs_llama']['percent_faster']:+.1f}% vs llama)" if d.get("vs_llama") else ""
            ax.plot(grid, f["a"] * grid ** -f["b"], color=c,
                    label=f"{d['label']}: b={f['b']:.3f} [{f['b_ci'][0]:.3f}, {f['b_ci'][1]:.3f}]{extra}")
            ax.scatter(C, L, color=c, s=14)
        else:
            ax.plot(C, L, color=c, marker="o", ms=4, ls=":", label=f"{d['label']}: not resolved")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training FLOPs")
    ax.set_ylabel("val bits per byte")
    ax.set_title("Scaling: one point per rung; L = a C^-b where >= 3 rungs below the unigram floor span >= 10x")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return save(fig, path)


def ladder_scores(summary: dict[str, Any] | None, path: Path) -> Path | None:
    """Validation score of each promoted design at each rung (rank agreement at a glance)."""
    if not summary or not summary.get("designs"):
        return None
    plt = pyplot()
    rungs = [r["name"] for r in summary["ladder"]]
    colors = palette([d["label"] for d in summary["designs"]])
    fig, ax = plt.subplots(figsize=(7, 4))
    for d in summary["designs"]:
        ys = [d["rungs"].get(r, {}).get("score") for r in rungs]
        xs = [i for i, v in enumerate(ys) if v is not None]
        ax.plot(xs, [ys[i] for i in xs], marker="o", color=colors[d["label"]], label=d["label"],
                ls="--" if d.get("kind") == "baseline" else "-")
    ax.set_xticks(range(len(rungs)), rungs)
    ax.set_ylabel("validation score")
    ra = summary.get("rank_agreement", {})
    title = "Ladder"
    if ra.get("spearman") is not None:
        title += f": Spearman {ra['spearman']:.2f}, Kendall {ra['kendall']:.2f} (n={ra['n']})"
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save(fig, path)
