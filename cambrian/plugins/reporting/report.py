"""The campaign report: a self-contained HTML page and its figures as PNG, in the run directory.

``write_report(run_dir)`` reads only the store (it can run while a campaign is
stopped, or after it finished) and writes ``report.html`` plus
``figures/*.png``; the page embeds the same PNGs as base64 so it opens
anywhere on its own.

The page is a list of sections, each built by one function of :data:`SECTIONS`
from a :class:`ReportData` (what the store holds, read once). A builder returns
a :class:`Section` or None when it has nothing to show, so an empty section is
never written. To add a section, write a builder (and, if it is more than a few
lines of HTML, a template under ``templates/sections/``) and put it in
:data:`SECTIONS` where it belongs. Plugins (a domain pack for its own phases)
add sections through the ``cambrian_report_sections`` hook; they appear where
:func:`plugin_sections` stands in :data:`SECTIONS`, and the phases they show are
left out of the generic "Other phases" JSON.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from cambrian.campaign.checkpoint import coordination_state
from cambrian.campaign.deadline import deadline_line
from cambrian.campaign.engine import Campaign
from cambrian.campaign.search_yield import NEAR, operator_yield
from cambrian.campaign.standings import Standing, standings, unconfirmed_note
from cambrian.core.plugins import get_plugin_manager
from cambrian.core.records import Node, ReportSection
from cambrian.plugins.reporting import figures
from cambrian.plugins.reporting import format as fmt
from cambrian.plugins.reporting.summary import origins

# Metrics shown first in tables when a domain reports them; the rest follow by name.
LEADING_METRICS = ("bpb", "mqar_acc", "params", "flops_per_token")
LEADERBOARD_ROWS = 20
MAX_FAILURES = 200


@dataclass
class Section:
    id: str  # the HTML anchor, unique in the page
    title: str
    html: Markup
    figures: list[str] = field(default_factory=list)  # keys of the figures it shows
    heading: bool = True  # False when the html brings its own <h2> (a domain's fragment)


@dataclass
class ReportData:
    """Everything a section builder may read, loaded once from the store."""

    run_dir: Path
    campaign: Any
    store: Any

    def __post_init__(self) -> None:
        self.config = self.campaign.config
        self.objective = self.campaign.objective
        self.header: dict[str, Any] = self.store.get_meta("header", {}) or {}
        all_nodes = self.store.nodes()
        self.nodes: list[Node] = [n for n in all_nodes if n.phase == "search"]
        self.phase_nodes: list[Node] = [n for n in all_nodes if n.phase != "search"]
        self.agents = [a.name for a in self.campaign.agents]
        names = [p.name for p in self.campaign.phases]  # (without the engine's `approve` keys)
        phases = {name: self.store.get_meta(f"phase:{name}") for name in names}
        self.phases: dict[str, Any] = {k: v for k, v in phases.items() if v is not None}
        self.llm_calls = self.store.llm_calls()
        self.labels = fmt.Labels()
        self.fig_dir = self.run_dir / "figures"
        self.env = Environment(loader=PackageLoader("cambrian.plugins.reporting", "templates"),
                               autoescape=select_autoescape(["html", "j2"]))
        self.env.filters.update(metric=fmt.metric, si=fmt.si, number=fmt.number, date=fmt.date,
                                duration=fmt.duration, shorten=fmt.shorten, percent=fmt.percent)
        self.env.globals.update(label=self.label, fmt=fmt, objective=self.objective)

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        return self.store.events()

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["kind"] == kind]

    def label(self, content: Any, width: int = 60) -> str:
        return self.labels.design(content, width)

    def figure(self, key: str, draw: Callable[..., Path | None], *args: Any, **kw: Any) -> Markup | None:
        """Draw one figure into figures/KEY.png; its <img> tag, or None when there is nothing to draw."""
        self.fig_dir.mkdir(exist_ok=True)
        path = draw(*args, self.fig_dir / f"{key}.png", **kw)
        if path is None:
            return None
        return Markup(figures.embed(path, key.replace("_", " ")))

    def render(self, template: str, **kw: Any) -> Markup:
        return Markup(self.env.get_template(template).render(d=self, **kw))


# -- tables --------------------------------------------------------------------------------


def metric_columns(nodes: list[Node], objective_name: str) -> tuple[list[str], list[str]]:
    """Columns worth a column: the objective, leading metrics, then the rest by name.

    Returns (columns, notes): a metric equal to the objective in every row, or the same
    in every row, becomes a note under the table instead of a column.
    """
    names: list[str] = []
    for n in nodes:
        names += [k for k in n.metrics if k not in names]
    ordered = [objective_name] + [m for m in LEADING_METRICS if m in names and m != objective_name]
    ordered += sorted(m for m in names if m not in ordered)
    columns, notes, same = [], [], []
    for m in ordered:
        values = [n.metrics[m].value if m in n.metrics else None for n in nodes]
        if m != objective_name and len(nodes) > 1:
            if all(v == (n.metrics[objective_name].value if objective_name in n.metrics else None)
                   for v, n in zip(values, nodes)):
                notes.append(f"{m} equals {objective_name} in every row")
                continue
            if len(set(values)) == 1:
                same.append(f"{m} {fmt.metric(m, values[0])}")
                continue
        columns.append(m)
    if same:
        notes.append("the same in every row: " + ", ".join(same))
    return columns, notes


def _cell(name: str, value: float | None) -> dict[str, Any]:
    ok = value is not None and math.isfinite(value)
    return {"text": fmt.metric(name, value), "sort": value if ok else ""}


def leaderboard_rows(d: ReportData, ranked: list[Standing], columns: list[str]) -> list[dict[str, Any]]:
    """One row per candidate: the objective as mean ± sd over its seeds at the fidelity it is
    ranked at; the other metrics are its representative node's (the first evaluation there)."""
    origin = origins(d.nodes)
    rows = []
    for rank, r in enumerate(ranked, 1):
        n = r.node
        cells = [{"text": r.text(), "sort": r.mean} if m == d.objective.name
                 else _cell(m, n.metrics[m].value if m in n.metrics else None) for m in columns]
        rows.append({"rank": rank, "node": n, "design": d.label(n.candidate.content), "fidelity": r.fidelity,
                     "seeds": r.n, "origin": origin[r.hash], "cells": cells,
                     "wall_s": sum(x.cost.wall_s for x in r.nodes)})
    return rows


# -- sections ------------------------------------------------------------------------------


def overview(d: ReportData) -> Section:
    ends = d.events_of("campaign_end")
    counts: dict[str, int] = {}
    for n in d.nodes:
        counts[n.status.value] = counts.get(n.status.value, 0) + 1
    started = d.header.get("created_at")
    last = max([n.updated_at for n in d.nodes + d.phase_nodes] + [e["ts"] for e in d.events[-1:]],
               default=None)
    code = d.header.get("code") or (f"cambrian {d.header['cambrian']} (commit not recorded)"
                                    if d.header.get("cambrian") else "not recorded")
    config_yaml = yaml.safe_dump(d.config.model_dump(mode="json", exclude_none=True), sort_keys=False)
    return Section("overview", "Campaign", d.render(
        "sections/overview.html.j2", ends=ends, counts=counts, started=started, last=last, code=code,
        elapsed=d.store.get_meta("elapsed_s"), config_yaml=config_yaml, deadline=deadline_line(d.store)))


def verdict(d: ReportData) -> Section | None:
    hidden = d.phases.get("hidden") or {}
    if not hidden.get("verdict"):
        return None
    return Section("verdict", "Verdict", d.render("sections/verdict.html.j2", h=hidden))


def agents(d: ReportData) -> Section | None:
    if not d.campaign.agents:
        return None
    stops: dict[str, str] = {}
    for e in d.events_of("agent_stopped"):
        stops[e["agent"]] = e["payload"].get("reason") or ""
    errors = d.campaign.agent_errors() if hasattr(d.campaign, "agent_errors") else {}
    rows = []
    for a in d.campaign.agents:
        mine = [n for n in d.nodes if n.agent == a.name]
        best = standings(mine, d.objective)
        cfg = a.config
        rows.append({
            "name": a.name, "scaffold": cfg.scaffold.name,
            "operators": ", ".join(cfg.operators or d.campaign.domain.default_operators),
            "llm": (f"{cfg.llm.name} ({cfg.llm.options.get('model')})" if cfg.llm and cfg.llm.options.get("model")
                    else cfg.llm.name if cfg.llm else "none"),
            "nodes": len(mine), "done": sum(n.status.value == "done" for n in mine),
            "failed": sum(n.status.value in ("failed", "invalid") for n in mine),
            "best": best[0].mean if best else None,
            "stopped": stops.get(a.name), "error": a.name in errors,
        })
    llm_failed = [c for c in d.llm_calls if not c.get("ok")]
    with_llm = any(a.config.llm for a in d.campaign.agents)
    return Section("agents", "Agents", d.render("sections/agents.html.j2", rows=rows, llm_failed=llm_failed,
                                                with_llm=with_llm))


def leaderboard(d: ReportData) -> Section | None:
    ranked = standings(d.nodes, d.objective)
    top = ranked[:LEADERBOARD_ROWS]
    if not top:
        return None
    columns, notes = metric_columns([r.node for r in top], d.objective.name)
    if (once := unconfirmed_note(top)) is not None:
        notes.append(once)
    rows = leaderboard_rows(d, top, columns)
    labels = {r.node.id: d.label(r.node.candidate.content, 44) for r in top}
    img = d.figure("leaderboard", figures.leaderboard, d.nodes, d.objective, d.agents, labels=labels)
    fids = sorted({r.fidelity for r in top}, reverse=True)
    return Section("leaderboard", "Leaderboard", d.render(
        "sections/leaderboard.html.j2", img=img, rows=rows, columns=columns, notes=notes,
        total=len(ranked), fidelities=fids, objective=d.objective.name),
        figures=["leaderboard"])


def search_yield(d: ReportData) -> Section | None:
    rows = operator_yield(d.nodes, d.objective)
    if not any(r.compared for r in rows):
        return None  # no reference measured: nothing to compare with
    return Section("search-yield", "Search yield", d.render(
        "sections/search_yield.html.j2", rows=rows, near=NEAR))


def _figure_section(key: str, title: str, draw: Callable[[ReportData], Markup | None],
                    caption: str = "") -> Callable[[ReportData], Section | None]:
    def build(d: ReportData) -> Section | None:
        img = draw(d)
        if img is None:
            return None
        return Section(key, title, Markup("{}{}").format(img, Markup("<p class=caption>{}</p>").format(caption)
                                                           if caption else ""), figures=[key])
    build.__name__ = key
    return build


best_so_far = _figure_section(
    "best_so_far", "Best so far per agent",
    lambda d: d.figure("best_so_far", figures.best_so_far, d.nodes, d.objective, d.agents))
search_graph = _figure_section(
    "search_graph", "Search graph",
    lambda d: d.figure("search_graph", figures.search_graph, d.nodes, d.objective, d.agents),
    "Every search node by creation order; lines join parents to children; crosses are failed nodes.")
quality_vs_cost = _figure_section(
    "quality_vs_cost", "Quality against parameters and FLOPs",
    lambda d: d.figure("quality_vs_cost", figures.quality_vs_cost, d.nodes, d.objective, d.agents))


def plugin_report_sections(d: ReportData) -> list[ReportSection]:
    """What plugins add (``cambrian_report_sections``), in registration order; trusted markup."""
    if "plugin_sections" not in d.__dict__:
        hook = get_plugin_manager().hook.cambrian_report_sections
        found = hook(run_dir=str(d.run_dir), config=d.config.model_dump(mode="json"), phases=d.phases)
        d.__dict__["plugin_sections"] = [s for batch in reversed(found) for s in batch or ()]
    return d.__dict__["plugin_sections"]


def plugin_sections(d: ReportData) -> list[Section]:
    out = []
    for s in plugin_report_sections(d):
        slug = re.sub(r"[^a-z0-9]+", "-", s.title.lower()).strip("-") or "section"
        heading = not re.match(r"\s*<h2", s.html)  # a fragment may bring its own heading
        figs = re.findall(r'<img [^>]*data-figure="([^"]+)"', s.html)
        out.append(Section(slug, s.title, Markup(s.html), figures=figs, heading=heading))
    return out


def shown_by_plugins(d: ReportData) -> set[str]:
    """Phases a plugin's section shows: the report's own view of them is left out."""
    return {name for s in plugin_report_sections(d) for name in s.phases}


def hidden(d: ReportData) -> Section | None:
    h = d.phases.get("hidden")
    if not h or not h.get("designs") or "hidden" in shown_by_plugins(d):
        return None
    img = d.figure("hidden", figures.hidden_results, h, label=d.label)
    return Section("hidden", "Hidden evaluation", d.render("sections/hidden.html.j2", h=h, img=img),
                   figures=["hidden"] if img is not None else [])


def other_phases(d: ReportData) -> Section | None:
    shown = {"hidden", *shown_by_plugins(d)}
    rest = {k: v for k, v in d.phases.items() if k not in shown and v}
    if not rest:
        return None
    body = Markup("").join(Markup("<h3>{}</h3><pre>{}</pre>").format(
        k, json.dumps(v, indent=1, default=str)) for k, v in rest.items())
    return Section("phases", "Other phases", body)


def failures(d: ReportData) -> Section | None:
    failed = [n for n in d.nodes + d.phase_nodes if n.error or n.status.value in ("failed", "invalid")]
    if not failed:
        return None
    failed.sort(key=lambda n: n.created_at)
    return Section("failures", "Failures", d.render("sections/failures.html.j2", nodes=failed[:MAX_FAILURES],
                                                     total=len(failed)))


def coordination(d: ReportData) -> Section | None:
    """Slots per agent over time, pauses, approvals and the insights board (from the checkpoint)."""
    state = coordination_state(d.run_dir)
    allocations = d.events_of("allocation")
    approvals = d.events_of("approval_decided")
    pauses = [e for e in d.events if e["kind"] in ("agent_paused", "agent_unpaused")]
    if not (len(d.agents) > 1 or state["insights"] or state["awaiting"] or approvals or pauses):
        return None  # one agent, nothing shared, nothing waiting: nothing to coordinate
    started = d.events_of("campaign_started")
    img = d.figure("slots", figures.slots_over_time, allocations, d.agents, started[0]["ts"] if started else 0.0)
    body = d.render("sections/coordination.html.j2", policy=d.config.coordination.policy, img=img,
                    slot_counts={a: sum(1 for e in allocations if e["agent"] == a) for a in d.agents},
                    pauses=pauses, approvals=approvals, awaiting=state["awaiting"], insights=state["insights"])
    return Section("coordination", "Coordination", body, figures=["slots"] if img is not None else [])


def costs(d: ReportData) -> Section | None:
    nodes, total = d.nodes + d.phase_nodes, d.store.total_cost()
    if not nodes or not (total.wall_s or total.flops or total.llm_tokens):
        return None  # nothing was evaluated: LLM use, if any, is in the agents section
    img = d.figure("costs", figures.costs, nodes, d.llm_calls)
    return Section("costs", "Costs", d.render("sections/costs.html.j2", img=img, total=total),
                   figures=["costs"] if img is not None else [])


def environment(d: ReportData) -> Section | None:
    if not d.header:
        return None
    return Section("environment", "Environment", d.render("sections/environment.html.j2", h=d.header))


# A builder returns a Section, None (nothing to show) or a list of Sections (plugin_sections).
SECTIONS: list[Callable[[ReportData], Section | list[Section] | None]] = [
    overview, verdict, agents, leaderboard, search_yield, best_so_far, search_graph, quality_vs_cost, coordination,
    plugin_sections, hidden, other_phases, failures, costs, environment,
]


def build_sections(d: ReportData) -> list[Section]:
    out: list[Section] = []
    for build in SECTIONS:
        made = build(d)
        out += made if isinstance(made, list) else [made] if made is not None else []
    ids: set[str] = set()
    for s in out:  # anchors stay unique whatever titles plugins choose
        while s.id in ids:
            s.id += "-2"
        ids.add(s.id)
    return out


def write_report(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    campaign = Campaign.resume(run_dir, lock=False)  # a reader: works while a campaign runs
    d = ReportData(run_dir, campaign, campaign.open_store())
    sections = build_sections(d)
    page = d.env.get_template("report.html.j2").render(
        d=d, sections=sections, legend=d.labels.legend(),
        generated=fmt.date(time.time()))
    out = run_dir / "report.html"
    out.write_text(page)
    return out
