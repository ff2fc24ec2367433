"""The campaign report: a self-contained HTML page and its figures as PNG, in the run directory.

``write_report(run_dir)`` reads only the store (it can run while a campaign is
stopped, or after it finished) and writes ``report.html`` plus
``figures/*.png``; the page embeds the same PNGs as base64 so it opens
anywhere on its own. Figures: leaderboard, best so far per agent against
compute and wall time, the search graph, quality against parameters and FLOPs
with the Pareto front, the hidden-split evaluation, costs. Plugins (a domain
pack for its own phases) add sections through ``cambrian_report_sections``,
with figures of their own. Phase summaries (stored
as meta ``phase:<name>``) that no section shows appear as JSON; the hidden
evaluation has its own table.
"""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from cambrian.core.plugins import get_plugin_manager
from cambrian.core.records import ReportSection, best_nodes
from cambrian.plugins.reporting import figures


def _pattern(content: Any) -> str:
    if isinstance(content, dict) and isinstance(content.get("layers"), list):
        names = [layer.get("primitive", "?") if isinstance(layer, dict) else str(layer)
                 for layer in content["layers"]]
        return ",".join(names)
    return str(content)[:120]


def make_figures(run_dir: Path, nodes: list, phase_nodes: list, objective, agents: list[str],
                 phases: dict[str, Any], llm_calls: list[dict[str, Any]]) -> dict[str, Path]:
    out_dir = run_dir / "figures"
    out_dir.mkdir(exist_ok=True)
    labels = {n.id: _pattern(n.candidate.content) for n in nodes}
    made = {
        "leaderboard": figures.leaderboard(nodes, objective, agents, out_dir / "leaderboard.png", labels=labels),
        "best_so_far": figures.best_so_far(nodes, objective, agents, out_dir / "best_so_far.png"),
        "search_graph": figures.search_graph(nodes, objective, agents, out_dir / "search_graph.png"),
        "quality_vs_cost": figures.quality_vs_cost(nodes, objective, agents, out_dir / "quality_vs_cost.png"),
        "hidden": figures.hidden_results(phases.get("hidden"), out_dir / "hidden.png"),
        "costs": figures.costs(nodes + phase_nodes, llm_calls, out_dir / "costs.png"),
    }
    return {k: v for k, v in made.items() if v is not None}


def report_sections(run_dir: Path, config: dict[str, Any], phases: dict[str, Any]) -> list[ReportSection]:
    """What plugins add to the report (``cambrian_report_sections``), in registration order;
    their HTML is trusted markup."""
    hook = get_plugin_manager().hook.cambrian_report_sections
    found = [s for batch in reversed(hook(run_dir=str(run_dir), config=config, phases=phases))
             for s in batch or ()]
    return [s.model_copy(update={"html": Markup(s.html)}) for s in found]


def write_report(run_dir: str | Path) -> Path:
    from cambrian.core.campaign import Campaign

    run_dir = Path(run_dir)
    campaign = Campaign.resume(run_dir, lock=False)  # a reader: works while a campaign runs
    store = campaign.open_store()
    nodes = store.nodes(phase="search")
    phase_nodes = [n for n in store.nodes() if n.phase != "search"]
    obj = campaign.objective
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n.status.value] = counts.get(n.status.value, 0) + 1
    failures = [n for n in nodes if n.error][:50]
    phase_names = [p.name for p in campaign.domain.phases(campaign.config.phases)]
    phases = {name: store.get_meta(f"phase:{name}") for name in phase_names}
    phases = {k: v for k, v in phases.items() if v is not None}
    agents = [a.name for a in campaign.agents]
    stops = {e["agent"]: e["payload"].get("reason") for e in store.events("agent_stopped")}
    llm_calls = store.llm_calls()
    figs = make_figures(run_dir, nodes, phase_nodes, obj, agents, phases, llm_calls)
    images = {k: base64.b64encode(p.read_bytes()).decode() for k, p in figs.items()}
    sections = report_sections(run_dir, campaign.config.model_dump(mode="json"), phases)
    total = store.total_cost()
    env = Environment(loader=PackageLoader("cambrian.plugins.reporting", "templates"),
                      autoescape=select_autoescape())
    page = env.get_template("report.html.j2").render(
        config=campaign.config, header=store.get_meta("header", {}), objective=obj,
        leaderboard=best_nodes(nodes, obj)[:20], counts=counts, failures=failures,
        agents=agents, stops=stops, nodes=nodes, pattern=_pattern,
        ends=store.events("campaign_end"), generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        notes=store.notes(limit=50), llm_calls=llm_calls, escape=html.escape,
        images=images, phases=phases, total=total, elapsed=store.get_meta("elapsed_s", 0.0),
        n_phase_nodes=len(phase_nodes), to_json=lambda v: json.dumps(v, indent=1, default=str),
        sections=sections, shown_phases={name for s in sections for name in s.phases},
    )
    out = run_dir / "report.html"
    out.write_text(page)
    return out
