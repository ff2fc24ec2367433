"""Rich renderings of a campaign: leaderboard and live per-agent progress."""

from __future__ import annotations

from rich.table import Table

from cambrian.core.records import MetricSpec, Node, NodeStatus, best_nodes


def leaderboard_table(nodes: list[Node], objective: MetricSpec, k: int = 10,
                      title: str = "Leaderboard") -> Table:
    t = Table(title=f"{title} ({objective.name}, {objective.direction.value})")
    for col in ("rank", "node", "agent", "operator", objective.name, "wall s"):
        t.add_column(col, justify="right" if col in ("rank", objective.name, "wall s") else "left")
    for i, n in enumerate(best_nodes(nodes, objective)[:k], 1):
        t.add_row(str(i), n.id, n.agent, n.operator, f"{n.score(objective):.4f}", f"{n.cost.wall_s:.1f}")
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
