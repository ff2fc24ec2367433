"""The ``attention`` domain pack: design causal token mixers (see domain.py and docs/attention.md).

Registers the ``attention`` domain and evaluator, the ``cambrian attention register``
command (commands.py), and, through
``cambrian_primitives``, every design registered with ``cambrian attention
register`` (files in :func:`designs_dir`), so specs in any campaign, and its
evaluation workers, can use them. No torch at import.
"""

from __future__ import annotations

from cambrian import hookimpl
from cambrian.plugins.domains import commands_from
from cambrian.plugins.domains.attention.designs import design_primitives
from cambrian.plugins.domains.attention.domain import AttentionDomain
from cambrian.plugins.domains.attention.evaluator import AttentionEvaluator


@hookimpl
def cambrian_domains():
    return [AttentionDomain]


@hookimpl
def cambrian_evaluators():
    return [AttentionEvaluator]


@hookimpl
def cambrian_primitives():
    return design_primitives()


cambrian_commands = commands_from("cambrian.plugins.domains.attention.commands")
