"""``compose``: discover language-model architectures by composing primitives.

The pack: the domain (spec candidates, seeds, baselines, objective, LLM task
description), structured spec operators, the ``compose`` evaluator (proxy LM
training + MQAR), the phases after search (aggregation, scaling steps, hidden
evaluation), its report sections (report.py, figures.py) and its command
(``cambrian export``, commands.py). See docs/compose.md.
"""

from cambrian import hookimpl
from cambrian.plugins.domains import commands_from
from cambrian.plugins.domains.compose.domain import ComposeDomain
from cambrian.plugins.domains.compose.evaluator import ComposeEvaluator
from cambrian.plugins.domains.compose.operators import OPERATORS


@hookimpl
def cambrian_domains():
    return [ComposeDomain]


@hookimpl
def cambrian_operators():
    return OPERATORS


@hookimpl
def cambrian_evaluators():
    return [ComposeEvaluator]


cambrian_commands = commands_from("cambrian.plugins.domains.compose.commands")


@hookimpl
def cambrian_report_sections(run_dir: str, config: dict, phases: dict) -> list:
    # jinja2 and the figures stay out of evaluation workers, which import this pack
    from cambrian.plugins.domains.compose.report import report_sections

    return report_sections(run_dir, config, phases)
