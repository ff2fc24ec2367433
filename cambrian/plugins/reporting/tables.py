"""Rich renderings of a campaign: the leaderboard (the live view is live.py)."""

from __future__ import annotations

from rich.table import Table

from cambrian.core.records import MetricSpec, Node
from cambrian.campaign.standings import standings, unconfirmed_note
from cambrian.plugins.reporting.summary import design_summary, origins


def leaderboard_table(nodes: list[Node], objective: MetricSpec, k: int = 10,
                      title: str = "Leaderboard") -> Table:
    """One row per candidate (:func:`cambrian.standings`): mean ± sd over seeds at the highest
    fidelity it reached, ranked tier by tier from the highest fidelity down."""
    rows = standings(nodes, objective)[:k]
    fids = sorted({r.fidelity for r in rows}, reverse=True)
    note = f"; ranked at fidelity {', then '.join(f'{f:g}' for f in fids)}" if len(fids) > 1 else ""
    if (once := unconfirmed_note(rows)) is not None:
        note += f"; {once}"
    origin = origins(nodes)
    t = Table(title=f"{title} ({objective.name}, {objective.direction.value}{note})")
    for col in ("rank", "node", "design", "agent", "origin", "fidelity", objective.name, "wall s"):
        t.add_column(col, justify="left" if col in ("node", "design", "agent", "origin") else "right",
                     overflow="fold" if col == "design" else "ellipsis")
    for i, r in enumerate(rows, 1):
        n = r.node
        design = design_summary(n.candidate.content).replace(",", ", ")  # a narrow terminal wraps between layers
        t.add_row(str(i), n.id, design, n.agent, origin[r.hash], f"{r.fidelity:g}",
                  r.text(), f"{sum(x.cost.wall_s for x in r.nodes):.1f}")
    return t
