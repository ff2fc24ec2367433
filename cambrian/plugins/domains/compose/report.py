"""The compose pack's sections of the campaign report: aggregation and scaling steps.

Drawn here, not in the generic reporting plugin, so the report names no pack:
``cambrian_report_sections`` (registered in this pack's ``__init__``) calls
:func:`report_sections` for every report; it speaks only for compose campaigns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from cambrian import ReportSection
from cambrian.plugins.domains.compose.domain import ComposeDomain
from cambrian.plugins.domains.compose.figures import ladder_scores, scaling_curves
from cambrian.plugins.reporting import format as fmt
from cambrian.plugins.reporting.figures import embed

TITLES = {"aggregation": "Aggregation", "scaling": "Scaling steps"}


def report_sections(run_dir: str | Path, config: dict[str, Any], phases: dict[str, Any]) -> list[ReportSection]:
    domain = config.get("domain") or {}
    if domain.get("name") != ComposeDomain.name:
        return []
    objective = ComposeDomain(**(domain.get("options") or {})).objective
    out_dir = Path(run_dir) / "figures"
    out_dir.mkdir(exist_ok=True)
    scaling = phases.get("scaling")
    figures = {"scaling": Markup(embed(scaling_curves(scaling, out_dir / "scaling.png"), "scaling curves")),
               "ladder": Markup(embed(ladder_scores(scaling, out_dir / "ladder.png"), "ladder"))}
    env = Environment(loader=PackageLoader("cambrian.plugins.domains.compose", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    # The report's way with numbers and labels: 232k params, 4 digits, patterns that wrap.
    env.filters.update(si=fmt.si, number=fmt.number,
                       pattern=lambda p: str(p).replace(",", ", ") if p is not None else "-")
    template = env.get_template("report_section.html.j2")
    return [ReportSection(title=title, phases=(name,),
                          html=template.render(phases={name: phases[name]}, objective=objective,
                                               figures=figures))
            for name, title in TITLES.items() if phases.get(name)]
