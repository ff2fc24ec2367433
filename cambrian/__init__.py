"""Cambrian: a plugin framework for AI research agents.

Public API: the hook marker, the component base classes, the records, and
:class:`Campaign`.
"""

from cambrian.core.plugins import hookimpl
from cambrian.core.components import (ROLES, Domain, Evaluator, Executor, ExecutorOptions, LLMBackend,
                                      LLMResponse, Operator, OperatorContext, Options, Phase, PhaseEvaluations,
                                      Proposal, Scaffold, SearchView)
from cambrian.core.records import (Budget, Candidate, Cost, Direction, EvalJob, EvalOutcome, Insight, Metric,
                                   MetricSpec, Node, NodeStatus, ReportSection, best_nodes)
from cambrian.campaign.standings import Standing, standings
from cambrian.core.errors import CambrianError, InvalidCandidate
from cambrian.campaign.engine import Campaign, CampaignResult
from cambrian.core.store import Store

__all__ = [
    "hookimpl", "ROLES", "Domain", "Evaluator", "Executor", "ExecutorOptions", "Options", "LLMBackend", "LLMResponse", "Operator",
    "OperatorContext", "Phase", "PhaseEvaluations", "Proposal", "Scaffold", "SearchView", "Budget", "Candidate", "Cost",
    "Direction", "EvalJob", "EvalOutcome", "Insight", "Metric", "MetricSpec", "Node", "NodeStatus", "ReportSection",
    "best_nodes", "Standing", "standings", "CambrianError", "InvalidCandidate", "Campaign", "CampaignResult", "Store",
]
