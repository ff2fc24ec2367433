"""Rich renderings of a campaign: leaderboard and live per-agent progress."""

from __future__ import annotations

from rich.table import Table

from cambrian.core.records import MetricSpec, Node, NodeStatus, best_nodes
from cambrian.core.standings import standings


def leaderboard_table(nodes: list[Node], objective: MetricSpec, k: int = 10,
                      title: str = "Leaderboard") -> Table:
    """One row per candidate (:func:`cambrian.standings`): mean ± sd over seeds at the highest
    fidelity it reached, ranked tier by tier from the highest fidelity down."""
    rows = standings(nodes, objective)[:k]
    fids = sorted({r.fidelity for r in rows}, reverse=True)
    note = f"; ranked at fidelity {', then '.join(f'{f:g}' for f in fids)}" if len(fids) > 1 else ""
    t = Table(title=f"{title} ({objective.name}, {objective.direction.value}{note})")
    for col in ("rank", "node", "agent", "operator", "fidelity", objective.name, "wall s"):
        t.add_column(col, justify="left" if col in ("node", "agent", "operator") else "right")
    for i, r in enumerate(rows, 1):
        n = r.node
        t.add_row(str(i), n.id, n.agent, n.operator, f"{r.fidelity:g}", r.text(),
                  f"{sum(x.cost.wall_s for x in r.nodes):.1f}")
    return t


def progress_table(campaign) -> Table:
    store = campaign.open_store()
    nodes = store.nodes(phase="search")
    obj = campaign.objective
    budget = campaign.config.budget
    phase = getattr(campaign, "current_phase", None)
    t = Table(title=f"{campaign.config.name}: {len(nodes)}"
                    f"{'/' + str(budget.max_nodes) if budget.max_nodes else ''} nodes, "
                    f"{campaign.elapsed():.0f}s" + (f"; phase {phase} running" if phase else ""))
    for col in ("agent", "scaffold", "done", "failed", "running", "best", "status"):
        t.add_column(col)
    for a in campaign.agents:
        mine = [n for n in nodes if n.agent == a.name]
        best = best_nodes(mine, obj)
        t.add_row(a.name, a.scaffold.name,
                  str(sum(n.status == NodeStatus.DONE for n in mine)),
                  str(sum(n.status in (NodeStatus.FAILED, NodeStatus.INVALID) for n in mine)),
                  str(len(a.in_flight)),
                  f"{best[0].score(obj):.4f}" if best else "-",
                  a.stopped or "searching")
    return t
