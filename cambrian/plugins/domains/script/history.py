"""Keep or discard, per agent, like autoresearch's results table.

Each finished node of an agent, in creation order, is compared with the
agent's incumbent (its last kept node): it is kept only if it beats the
incumbent by more than the margin, the largest of the task's recorded seed
spread, the spread measured across the node's own seeds and the
incumbent's, so a lucky seed is not an improvement. Crashes and invalid
runs are recorded as ``crash``. The decisions are a pure function of the
stored nodes: the ``keep-discard`` scaffold, the ``script_decision`` events
and the results fragment all agree and survive a resume.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from cambrian import Direction, MetricSpec, Node, NodeStatus, Store
from cambrian.plugins.domains.script.domain import task_from_options


@dataclass(frozen=True)
class Decision:
    node_id: str
    agent: str
    operator: str
    parent: str | None
    value: float | None
    spread: float | None
    decision: str  # keep | discard | crash
    incumbent: str | None  # the incumbent it was compared with
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def spread_of(node: Node, objective: MetricSpec) -> float:
    m = node.metrics
    vals = [m[k].value for k in (f"{objective.name}_spread", "seed_spread") if k in m]
    return max(vals, default=0.0)


def decide(nodes: Iterable[Node], objective: MetricSpec, min_margin: float = 0.0) -> list[Decision]:
    """Decisions for one agent's finished search nodes, in creation order."""
    sign = 1.0 if objective.direction == Direction.MIN else -1.0
    out: list[Decision] = []
    inc: Node | None = None
    for n in sorted((n for n in nodes if n.status.finished and n.status != NodeStatus.CANCELLED),
                    key=lambda n: (n.created_at, n.id)):
        parent = n.parents[0] if n.parents else None
        val = n.score(objective)
        if val is None:
            first = (n.error or "invalid result").strip().splitlines()[0][:200]
            out.append(Decision(n.id, n.agent, n.operator, parent, None, None, "crash",
                                inc.id if inc else None, first))
            continue
        spread = spread_of(n, objective)
        if inc is None:
            out.append(Decision(n.id, n.agent, n.operator, parent, val, spread, "keep", None,
                                "first valid result"))
            inc = n
            continue
        inc_val = inc.score(objective)
        margin = max(min_margin, spread, spread_of(inc, objective))
        gain = sign * (inc_val - val)
        if gain > margin:
            d, why = "keep", f"beats {inc.id} by {gain:.4f} > margin {margin:.4f}"
        elif gain > 0:
            d, why = "discard", f"better than {inc.id} by {gain:.4f}, within the seed margin {margin:.4f}"
        else:
            d, why = "discard", f"not better than {inc.id} ({val:.4f} vs {inc_val:.4f})"
        out.append(Decision(n.id, n.agent, n.operator, parent, val, spread, d, inc.id, why))
        if d == "keep":
            inc = n
    return out


def incumbent(decisions: list[Decision]) -> str | None:
    kept = [d.node_id for d in decisions if d.decision == "keep"]
    return kept[-1] if kept else None


def results_table(run_dir: str | Path) -> dict[str, list[Decision]]:
    """Every agent's decisions, recomputed from the store of a script campaign."""
    store = Store(run_dir, create=False)
    try:
        config = store.get_meta("config") or {}
        objective = task_from_options(config.get("domain", {}).get("options", {})).objective_spec
        nodes = store.nodes(phase="search")
    finally:
        store.close()
    agents = sorted({n.agent for n in nodes})
    return {a: decide([n for n in nodes if n.agent == a], objective) for a in agents}


def write_results(run_dir: str | Path) -> list[Path]:
    """``results.tsv`` (autoresearch's format plus agent and reason) and ``results.html`` in the run dir."""
    run_dir = Path(run_dir)
    table = results_table(run_dir)
    lines = ["agent\tnode\toperator\tparent\tvalue\tspread\tstatus\tdescription"]
    for agent, rows in table.items():
        for d in rows:
            lines.append("\t".join([agent, d.node_id, d.operator, d.parent or "-",
                                    "" if d.value is None else f"{d.value:.6f}",
                                    "" if d.spread is None else f"{d.spread:.6f}", d.decision,
                                    d.reason.replace("\t", " ")]))
    tsv = run_dir / "results.tsv"
    tsv.write_text("\n".join(lines) + "\n")
    frag = run_dir / "results.html"
    frag.write_text("<section id='keep-discard'><h2>Keep / discard history</h2>\n"
                    + history_html(run_dir, table) + "\n</section>\n")
    return [tsv, frag]


def history_html(run_dir: str | Path, table: dict[str, list[Decision]] | None = None) -> str:
    """The keep/discard tables per agent, as HTML (the report section and ``results.html``)."""
    table = results_table(run_dir) if table is None else table
    colour = {"keep": "#e6f4e6", "discard": "#f4f4f4", "crash": "#f8e1e1"}
    parts = []
    for agent, rows in table.items():
        parts.append(f"<h3>{html.escape(agent)}</h3><table><tr><th>#</th><th>node</th><th>operator</th>"
                     "<th>value</th><th>spread</th><th>status</th><th>reason</th></tr>")
        for i, d in enumerate(rows, 1):
            parts.append(f"<tr style='background:{colour[d.decision]}'><td>{i}</td><td><code>{d.node_id}</code></td>"
                         f"<td>{html.escape(d.operator)}</td><td>{'' if d.value is None else f'{d.value:.4f}'}</td>"
                         f"<td>{'' if d.spread is None else f'{d.spread:.4f}'}</td><td>{d.decision}</td>"
                         f"<td>{html.escape(d.reason)}</td></tr>")
        parts.append("</table>")
    return "\n".join(parts)
