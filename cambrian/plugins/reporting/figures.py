"""The report's figures, drawn with matplotlib (Agg) and saved as PNG.

Each function takes plain records (nodes, phase summaries), draws one figure,
saves it to ``path`` and returns the path, or returns None when there is
nothing to draw. Packs draw their own figures (compose: scaling curves, the
ladder) with :func:`pyplot`, :func:`palette` and :func:`save`, and embed them in
their report section with :func:`embed`.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from cambrian.core.records import MetricSpec, Node, NodeStatus, best_nodes
from cambrian.campaign.standings import standings
from cambrian.plugins.reporting.format import si, wrap

DPI = 110


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def palette(names: list[str]) -> dict[str, Any]:
    plt = pyplot()
    cmap = plt.get_cmap("tab10")
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    pyplot().close(fig)
    return path


def embed(path: Path | None, alt: str) -> str:
    """An ``<img>`` with the PNG inline (a data: URI), so the page stands on its own; '' for None.

    ``data-figure`` names the figure (its file's stem) for readers and tests of the page.
    """
    if path is None:
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return (f'<figure><img alt="{html.escape(alt)}" data-figure="{html.escape(Path(path).stem)}" '
            f'src="data:image/png;base64,{data}"></figure>')


def _si_axis(ax, axis: str = "x") -> None:
    """Tick labels as 232k / 1.5G instead of an offset like 1e10."""
    from matplotlib.ticker import FuncFormatter

    getattr(ax, f"{axis}axis").set_major_formatter(FuncFormatter(lambda v, _: si(v)))


def _metric(n: Node, name: str) -> float | None:
    m = n.metrics.get(name)
    return m.value if m is not None and math.isfinite(m.value) else None


def leaderboard(nodes: list[Node], objective: MetricSpec, agents: list[str], path: Path,
                k: int = 15, labels: dict[str, str] | None = None) -> Path | None:
    ranked = standings(nodes, objective)[:k]  # one bar per candidate: its mean at its ranked fidelity
    if not ranked:
        return None
    top = [r.node for r in ranked]
    plt, colors = pyplot(), palette(agents)
    # Labels wrap between words (never cut): node id, then the design on the next line(s).
    ticks = [f"{n.id}\n{wrap((labels or {}).get(n.id, ''), 36)}".strip() for n in top]
    lines = max(t.count("\n") + 1 for t in ticks)
    fig, ax = plt.subplots(figsize=(9, (0.18 + 0.12 * lines) * len(top) + 1.2))
    ys = list(range(len(top)))[::-1]
    vals = [r.mean for r in ranked]
    ax.barh(ys, vals, xerr=[r.sd for r in ranked], color=[colors.get(n.agent, "grey") for n in top])
    ax.set_yticks(ys, ticks, fontsize=7.5)
    lo, hi = min(vals), max(vals)
    pad = max(1e-3, (hi - lo) * 0.15)
    ax.set_xlim(lo - pad, hi + pad)
    for y, v in zip(ys, vals):
        ax.text(v, y, f" {v:.4f}", va="center", fontsize=7)
    fids = sorted({r.fidelity for r in ranked}, reverse=True)
    if len(fids) > 1:
        ax.text(1.0, -0.08, "ranked at fidelity " + ", then ".join(f"{f:g}" for f in fids) + "; bars: mean, "
                "lines: sd over seeds", transform=ax.transAxes, ha="right", va="top", fontsize=7)
    ax.set_xlabel(f"{objective.name} ({objective.direction.value}imise)")
    ax.set_title("Leaderboard (search)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[a]) for a in agents]
    ax.legend(handles, agents, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save(fig, path)


def best_so_far(nodes: list[Node], objective: MetricSpec, agents: list[str], path: Path) -> Path | None:
    """Best objective so far against cumulative evaluation FLOPs and wall time, per agent."""
    if not best_nodes(nodes, objective):
        return None
    plt, colors = pyplot(), palette(agents)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    sign = 1 if objective.direction.value == "min" else -1
    use_flops = any(n.cost.flops > 0 for n in nodes)
    t0 = min(n.created_at for n in nodes)
    for agent in agents:
        mine = sorted((n for n in nodes if n.agent == agent and n.status.finished), key=lambda n: n.updated_at)
        spent, best, xs, ts, ys = 0.0, math.inf, [], [], []
        for n in mine:
            spent += n.cost.flops if use_flops else n.cost.wall_s
            s = n.score(objective)
            if s is not None:
                best = min(best, sign * s)
            if math.isfinite(best):
                xs.append(spent)
                ts.append(n.updated_at - t0)
                ys.append(sign * best)
        if xs:
            axes[0].step(xs, ys, where="post", color=colors[agent], label=agent, marker="o", ms=3)
            axes[1].step(ts, ys, where="post", color=colors[agent], label=agent, marker="o", ms=3)
    axes[0].set_xlabel("cumulative training FLOPs of the agent" if use_flops else "cumulative evaluation s")
    if use_flops:
        _si_axis(axes[0])
    axes[1].set_xlabel("campaign wall time (s)")
    for ax in axes:
        ax.set_ylabel(f"best {objective.name} so far")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Best so far per agent")
    return save(fig, path)


def search_graph(nodes: list[Node], objective: MetricSpec, agents: list[str], path: Path) -> Path | None:
    """Every node at (creation order, objective); arrows from parents to children."""
    if not nodes:
        return None
    plt, colors = pyplot(), palette(agents)
    order = sorted(nodes, key=lambda n: n.created_at)
    x = {n.id: i for i, n in enumerate(order)}
    scores = [n.score(objective) for n in order]
    valid = [s for s in scores if s is not None]
    fail_y = (max(valid) + 0.1 * (max(valid) - min(valid) + 1e-3)) if valid else 0.0
    y = {n.id: (s if s is not None else fail_y) for n, s in zip(order, scores)}
    fig, ax = plt.subplots(figsize=(11, 5))
    for n in order:
        for p in n.parents:
            if p in x:
                ax.annotate("", xy=(x[n.id], y[n.id]), xytext=(x[p], y[p]),
                            arrowprops={"arrowstyle": "->", "color": colors.get(n.agent, "grey"),
                                        "alpha": 0.5, "lw": 0.8})
    markers = {"draft": "o", "improve": "s", "crossover": "D"}
    for n in order:
        ok = n.status == NodeStatus.DONE
        role = "draft" if not n.parents else ("crossover" if len(n.parents) > 1 else "improve")
        ax.scatter(x[n.id], y[n.id], color=colors.get(n.agent, "grey"), marker=markers[role] if ok else "x",
                   s=36, zorder=3)
    if valid and len(valid) < len(scores):
        ax.axhline(fail_y, color="grey", lw=0.5, ls=":")
        ax.text(0, fail_y, " failed / invalid", fontsize=7, va="bottom", color="grey")
    for a in agents:
        ax.scatter([], [], color=colors[a], label=a)
    for role, m in markers.items():
        ax.scatter([], [], color="black", marker=m, label=role)
    ax.legend(fontsize=8, ncol=2)
    ax.set_xlabel("node (creation order)")
    ax.set_ylabel(objective.name)
    ax.set_title("Search graph: parents -> children")
    ax.grid(alpha=0.3)
    return save(fig, path)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both cost (x) and objective (y, lower is better)."""
    front, best = [], math.inf
    for px, py in sorted(points):
        if py < best:
            front.append((px, py))
            best = py
    return front


def quality_vs_cost(nodes: list[Node], objective: MetricSpec, agents: list[str], path: Path) -> Path | None:
    """The objective against parameters and forward FLOPs per token, with the Pareto fronts."""
    axes_metrics = [m for m in ("params", "flops_per_token") if any(_metric(n, m) for n in nodes)]
    done = [n for n in nodes if n.score(objective) is not None]
    if not axes_metrics or not done:
        return None
    plt, colors = pyplot(), palette(agents)
    sign = 1 if objective.direction.value == "min" else -1
    fig, axes = plt.subplots(1, len(axes_metrics), figsize=(5.5 * len(axes_metrics), 4), squeeze=False)
    for ax, m in zip(axes[0], axes_metrics):
        pts = [(_metric(n, m), n.score(objective), n.agent) for n in done if _metric(n, m)]
        for a in agents:
            mine = [(px, py) for px, py, ag in pts if ag == a]
            if mine:
                ax.scatter(*zip(*mine), color=colors[a], label=a, s=20)
        front = pareto_front([(px, sign * py) for px, py, _ in pts])
        ax.plot([p[0] for p in front], [sign * p[1] for p in front], "k--", lw=1, marker="o", ms=9,
                mfc="none", label="Pareto front", drawstyle="steps-post")
        xs = [px for px, _, _ in pts]
        if max(xs) > 10 * min(xs):  # log only when the sizes span a decade
            ax.set_xscale("log")
        else:
            _si_axis(ax)
        ax.set_xlabel(m)
        ax.set_ylabel(objective.name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Quality against size and compute")
    return save(fig, path)


def hidden_results(summary: dict[str, Any] | None, path: Path,
                   label: Any = None) -> Path | None:
    """Hidden-split mean ± std per design; ``label`` turns a pattern into its short label."""
    if not summary or not summary.get("designs"):
        return None
    rows = [r for r in summary["designs"] if r.get("mean") is not None]
    if not rows:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    ys = list(range(len(rows)))[::-1]
    for y, r in zip(ys, rows):
        color = "tab:grey" if r.get("baseline") else "tab:blue"
        ax.errorbar(r["mean"], y, xerr=r["std"], fmt="o", color=color, capsize=4)
        ax.scatter(r["values"], [y] * len(r["values"]), color=color, s=10, alpha=0.5)
    ax.set_yticks(ys, [f"{r['label']}\n{wrap(label(r['pattern']) if label else r['pattern'], 36)}"
                       for r in rows], fontsize=7)
    ax.set_xlabel(f"hidden-split {summary.get('metric', 'score')} (mean ± std over seeds {summary.get('seeds')})")
    verdict = summary.get("beats_baseline")
    ax.set_title("Hidden evaluation: " + ("beats the baseline" if verdict else
                                          "no win beyond the seed spread" if verdict is False else "no verdict"))
    ax.grid(alpha=0.3)
    return save(fig, path)


def costs(nodes: list[Node], llm_calls: list[dict[str, Any]], path: Path) -> Path | None:
    """Wall time, training FLOPs and LLM tokens, per agent and per phase."""
    if not nodes:
        return None
    plt = pyplot()
    groups: dict[str, list[Node]] = {}
    for n in nodes:
        key = n.agent if n.phase == "search" else f"phase {n.phase.split(':')[0]}"
        groups.setdefault(key, []).append(n)
    names = list(groups)
    tokens = {k: 0 for k in names}
    for c in llm_calls:
        if c.get("agent") in tokens:
            tokens[c["agent"]] += int(c.get("prompt_tokens", 0)) + int(c.get("completion_tokens", 0))
    data = [("evaluation wall s", [sum(n.cost.wall_s for n in groups[k]) for k in names]),
            ("training FLOPs", [sum(n.cost.flops for n in groups[k]) for k in names]),
            ("LLM tokens", [tokens[k] for k in names])]
    data = [(title, vals) for title, vals in data if any(vals)]  # no empty panels
    if not data:
        return None
    fig, axes = plt.subplots(1, len(data), figsize=(4.4 * len(data) + 1, 0.35 * len(names) + 2), squeeze=False)
    for ax, (title, vals) in zip(axes[0], data):
        ax.set_title(f"{title} (total {si(sum(vals))})", fontsize=9)
        ax.barh(range(len(names))[::-1], vals, color="tab:blue")
        _si_axis(ax)
        ax.set_yticks(range(len(names))[::-1], names, fontsize=8)
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle("Costs per agent and phase")
    return save(fig, path)


def slots_over_time(allocations: list[dict[str, Any]], agents: list[str], t0: float, path: Path) -> Path | None:
    """Evaluation slots the supervisor gave each agent, cumulative, against campaign time."""
    if not allocations:
        return None
    plt = pyplot()
    colors = palette(agents)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for a in agents:
        ts = [e["ts"] - t0 for e in allocations if e["agent"] == a]
        if ts:
            ax.step([0.0, *ts], range(len(ts) + 1), where="post", color=colors[a], label=f"{a} ({len(ts)})")
    ax.set_xlabel("campaign time (s)")
    ax.set_ylabel("slots given (cumulative)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Evaluation slots per agent over time")
    return save(fig, path)
