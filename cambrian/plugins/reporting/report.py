"""The campaign report: a self-contained HTML page written into the run directory."""

from __future__ import annotations

import html
import time
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from cambrian.core.records import best_nodes


def write_report(run_dir: str | Path) -> Path:
    from cambrian.core.campaign import Campaign

    run_dir = Path(run_dir)
    campaign = Campaign.resume(run_dir)
    store = campaign.open_store()
    nodes = store.nodes(phase="search")
    obj = campaign.objective
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n.status.value] = counts.get(n.status.value, 0) + 1
    failures = [n for n in nodes if n.error][:50]
    env = Environment(loader=PackageLoader("cambrian.plugins.reporting", "templates"),
                      autoescape=select_autoescape())
    page = env.get_template("report.html.j2").render(
        config=campaign.config, header=store.get_meta("header", {}), objective=obj,
        leaderboard=best_nodes(nodes, obj)[:20], counts=counts, failures=failures,
        agents=[a.name for a in campaign.agents], nodes=nodes,
        ends=store.events("campaign_end"), generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        notes=store.notes(limit=50), llm_calls=store.llm_calls(), escape=html.escape,
    )
    out = run_dir / "report.html"
    out.write_text(page)
    return out
