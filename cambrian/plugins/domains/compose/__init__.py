"""``compose``: discover language-model architectures by composing primitives.

The pack: the domain (spec candidates, seeds, baselines, objective, LLM task
description), structured spec operators, the ``compose`` evaluator (proxy LM
training + MQAR) and the phases after search (aggregation, scaling steps,
hidden evaluation). See docs/compose.md.
"""

from cambrian import hookimpl
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
