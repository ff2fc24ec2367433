"""The ``attention`` domain pack: design causal token mixers (see domain.py and docs/attention.md).

Registers the ``attention`` domain and evaluator, the ``cambrian attention register``
command (commands.py), and, through
``cambrian_primitives``, every design registered with ``cambrian attention
register`` (files in :func:`designs_dir`), so specs in any campaign, and its
evaluation workers, can use them. No torch at import.
"""

from __future__ import annotations

from typing import Any

from cambrian import hookimpl
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


@hookimpl
def cambrian_commands(app: Any) -> None:
    # typer stays out of evaluation workers, which import this pack
    from cambrian.plugins.domains.attention.commands import register

    register(app)
