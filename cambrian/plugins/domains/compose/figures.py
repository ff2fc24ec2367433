"""The compose pack's figures: scaling curves with their fits, and scores along the ladder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cambrian.plugins.reporting.figures import palette, pyplot, save


def scaling_curves(summary: dict[str, Any] | None, path: Path) -> Path | None:
    """Per design: frontier points of loss vs compute and the fitted power law."""
    if not summary or not summary.get("designs"):
        return None
    designs = [d for d in summary["designs"] if d.get("fit")]
    if not designs:
        return None
    plt = pyplot()
    colors = palette([d["label"] for d in designs])
    fig, ax = plt.subplots(figsize=(8, 5))
    for d in designs:
        f, c = d["fit"], colors[d["label"]]
        C = np.array([p[0] for p in f["points"]])
        L = np.array([p[1] for p in f["points"]])
        ax.scatter(C, L, color=c, s=14)
        grid = np.geomspace(C.min(), C.max() * 1.5, 50)
        extra = f" ({d['vs_llama']['percent_faster']:+.1f}% vs llama)" if d.get("vs_llama") else ""
        ax.plot(grid, f["a"] * grid ** -f["b"], color=c,
                label=f"{d['label']}: b={f['b']:.3f} [{f['b_ci'][0]:.3f}, {f['b_ci'][1]:.3f}]{extra}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training FLOPs")
    ax.set_ylabel("train loss (bits per byte)")
    ax.set_title("Scaling: loss vs compute over the ladder, fits L = a C^-b")
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
