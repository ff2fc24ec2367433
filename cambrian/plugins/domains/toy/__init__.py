"""The ``toy`` pack: noisy function optimisation, the smallest domain that exercises the engine.

Registers the ``toy`` domain (domain.py), its evaluator (evaluator.py) and the
structured vector operators (operators.py). No torch at import.
"""

from __future__ import annotations

from cambrian import hookimpl
from cambrian.plugins.domains.toy.domain import ToyDomain
from cambrian.plugins.domains.toy.evaluator import ToyEvaluator
from cambrian.plugins.domains.toy.operators import Analyze, Blend, Perturb, Sample


@hookimpl
def cambrian_domains():
    return [ToyDomain]


@hookimpl
def cambrian_evaluators():
    return [ToyEvaluator]


@hookimpl
def cambrian_operators():
    return [Sample, Perturb, Blend, Analyze]
