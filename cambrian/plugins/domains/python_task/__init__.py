"""The ``python-task`` pack: search over Python source that a harness-side task scores.

Registers the ``python-task`` domain (domain.py). Candidates run through the
domain-free ``python-code`` evaluator (cambrian/plugins/evaluators/code.py) and
are drafted by the domain-free ``seeds`` and LLM operators.
"""

from __future__ import annotations

from cambrian import hookimpl
from cambrian.plugins.domains.python_task.domain import FitTask, PythonTaskDomain, load_task

__all__ = ["FitTask", "PythonTaskDomain", "load_task"]


@hookimpl
def cambrian_domains():
    return [PythonTaskDomain]
