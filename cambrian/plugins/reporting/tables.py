"""Rich renderings of a campaign: the leaderboard and the search yield (the live view is live.py)."""

from __future__ import annotations

from rich.table import Table

from cambrian.campaign.search_yield import NEAR, operator_yield
from cambrian.campaign.standings import standings, unconfirmed_note
from cambrian.core.records import MetricSpec, Node
from cambrian.plugins.reporting.format import percent
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
        # a narrow terminal wraps between layers, and between a layer and its options
        design = design_summary(n.candidate.content).replace(",", ", ").replace("(", " (")
        t.add_row(str(i), n.id, design, n.agent, origin[r.hash], f"{r.fidelity:g}",
                  r.text(), f"{sum(x.cost.wall_s for x in r.nodes):.1f}")
    return t


def yield_table(nodes: list[Node], objective: MetricSpec) -> Table | None:
    """Per agent and operator: the designs it made, and how many came near the best hand-built
    reference, or passed it, at the budget and seed of their first evaluation
    (:func:`cambrian.campaign.search_yield.operator_yield`). None when no reference was measured."""
    rows = operator_yield(nodes, objective)
    if not any(r.compared for r in rows):
        return None
    t = Table(title=f"Search yield (first evaluations against the best reference at their budget and seed; "
                    f"near: at most {100 * NEAR:g}% behind)")
    for col in ("agent", "operator", "designs", "failed", "near", "ahead", "promoted (ahead there)",
                "best vs reference"):
        t.add_column(col, justify="left" if col in ("agent", "operator") else "right", overflow="fold")
    for r in rows:
        t.add_row(r.agent, r.operator, str(r.designs), str(r.failed), f"{r.near}/{r.compared}",
                  f"{r.ahead}/{r.compared}", f"{r.climbed} ({r.climbed_ahead})", percent(r.best_lead))
    return t
