"""Search yield: what each agent's operators made, measured against the hand-built references.

A leaderboard shows the best design; it does not show whether the search could have found
a better one. When the aim is to beat the strongest hand-built design, the question a
researcher asks of a search is how often each of its ways of making designs (an operator:
random drafts, edits, crossovers, a model's proposals) gives one that comes near the best
reference, or passes it, at the budget it was first evaluated at, and how many of those it
promoted stay ahead at the largest budget. In three seeds of the default compose campaign
(0c8f4f1, docs/benchmarks.md), 8 of 34 designs passed the Nemotron-style reference at
screening and 1 was still ahead of it at the full budget: a rate that says how far a
24-node search can be expected to reach.

A design's first evaluation (its screening, under multi-fidelity search) is compared with
the best reference measured at the same fidelity and seed: a reference is a candidate of the
``seeds`` operator (the domain's hand-built starting designs). Re-evaluations (promotions,
reseeds) and the references themselves are not designs of the search.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from cambrian.campaign.standings import Standing, standings
from cambrian.core.components import REEVALUATE_ROLES
from cambrian.core.records import Direction, MetricSpec, Node

REFERENCE_OPERATOR = "seeds"  # the operator whose candidates are the domain's hand-built references
NEAR = 0.01  # "near the reference": at most 1% behind it


def best_reference(nodes: Iterable[Node], objective: MetricSpec, fidelity: float,
                   seed: int | None = None) -> Standing | None:
    """The best hand-built reference at ``fidelity`` (its mean over its valid evaluations there;
    only those at ``seed`` when given), or None where no reference was measured there."""
    nodes = list(nodes)
    refs = {n.candidate.hash for n in nodes if n.operator == REFERENCE_OPERATOR}
    measured = [n for n in nodes if n.candidate.hash in refs and n.fidelity == fidelity
                and (seed is None or n.seed == seed)]
    rows = standings(measured, objective, fidelity=fidelity, confirmed=False)
    return rows[0] if rows else None


def lead(value: float, reference: float, objective: MetricSpec) -> float:
    """How far ``value`` is ahead of ``reference``, as a fraction of it (negative: behind)."""
    ahead = reference - value if objective.direction == Direction.MIN else value - reference
    return ahead / abs(reference) if reference else 0.0


class OperatorYield(BaseModel):
    """One agent's designs from one operator, each first evaluation against the best reference."""

    model_config = ConfigDict(frozen=True)

    agent: str
    operator: str
    designs: int  # new candidates this operator made for this agent
    failed: int  # of them, first evaluations that failed or were invalid
    compared: int  # of them, valid first evaluations with a reference measured at their fidelity and seed
    near: int  # of those, at most NEAR behind the reference (or ahead of it)
    ahead: int  # of those, ahead of it
    climbed: int  # of them, evaluated again at a larger fidelity (promoted)
    climbed_ahead: int  # of those, ahead of the best reference at the largest fidelity they reached (by means)
    best_lead: float | None  # the best of them against the reference (fraction; negative: behind)


def operator_yield(nodes: Iterable[Node], objective: MetricSpec) -> list[OperatorYield]:
    """One row per (agent, operator) that made designs, in the order they first did."""
    nodes = sorted(nodes, key=lambda n: n.created_at)
    first: dict[str, Node] = {}  # candidate hash -> the evaluation that made it
    for n in nodes:
        first.setdefault(n.candidate.hash, n)
    reached = {row.hash: row for row in standings(nodes, objective, confirmed=False)}  # at its top fidelity
    groups: dict[tuple[str, str], list[Node]] = {}
    for n in first.values():
        if n.operator != REFERENCE_OPERATOR and n.operator not in REEVALUATE_ROLES:
            groups.setdefault((n.agent, n.operator), []).append(n)

    refs: dict[tuple[float, int | None], Standing | None] = {}

    def lead_at(value: float | None, fidelity: float, seed: int | None) -> float | None:
        """``value``'s lead over the best reference at this fidelity (and seed), if both exist."""
        if (fidelity, seed) not in refs:
            refs[fidelity, seed] = best_reference(nodes, objective, fidelity, seed)
        ref = refs[fidelity, seed]
        return None if value is None or ref is None else lead(value, ref.mean, objective)

    out = []
    for (agent, operator), made in groups.items():
        leads = [x for n in made if (x := lead_at(n.score(objective), n.fidelity, n.seed)) is not None]
        climbed = [reached[n.candidate.hash] for n in made
                   if n.candidate.hash in reached and reached[n.candidate.hash].fidelity > n.fidelity]
        top_leads = [x for row in climbed if (x := lead_at(row.mean, row.fidelity, None)) is not None]
        out.append(OperatorYield(
            agent=agent, operator=operator, designs=len(made),
            failed=sum(n.status.finished and n.score(objective) is None for n in made),
            compared=len(leads), near=sum(x >= -NEAR for x in leads), ahead=sum(x > 0 for x in leads),
            climbed=len(climbed), climbed_ahead=sum(x > 0 for x in top_leads),
            best_lead=max(leads) if leads else None))
    return out
