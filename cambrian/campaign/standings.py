"""Standings: one row per candidate, ranked by its mean at the highest fidelity it reached.

Under multi-fidelity search a candidate has several nodes: a short screening evaluation,
re-evaluations at larger budgets (promotions) and at other seeds (reseeds). Raw scores at
different fidelities do not compare (a longer-trained model scores better), and one seed
is one draw of the noise. So the leaderboard groups a candidate's valid nodes by fidelity,
takes the mean (and sd, where there is more than one seed) at the highest fidelity it
reached, and ranks tier by tier: candidates that reached the highest fidelity first, by
their mean there, then those whose highest is the next one, and so on. Every row says the
fidelity it is ranked at; two rows of one tier are compared at a fidelity they share.

Within a tier, a candidate measured on one seed ranks after those measured on several
(``confirmed``, the default): one draw of the noise never outranks a mean, so a finalist
whose extra seeds the budget did not reach is not called best on one lucky score (the
incumbent rule of SMAC's intensification: a challenger replaces the incumbent only once it
is measured as often). Schedulers that must see the raw means (halving ranks a new
finalist by its one score to decide whether it earns the extra seeds) pass
``confirmed=False``.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from cambrian.core.records import Direction, MetricSpec, Node


class Standing(BaseModel):
    """A candidate's result at one fidelity: its valid nodes there and their mean and sd."""

    model_config = ConfigDict(frozen=True)

    hash: str
    fidelity: float  # the fidelity this row is ranked at
    mean: float
    sd: float  # sample standard deviation over seeds (0.0 for one seed)
    seeds: tuple[int, ...]
    nodes: tuple[Node, ...]  # the valid nodes at this fidelity, oldest first
    fidelities: tuple[float, ...]  # every fidelity with a valid result, ascending

    @property
    def n(self) -> int:
        return len(self.nodes)

    @property
    def node(self) -> Node:
        """The representative node: the oldest valid evaluation at the ranked fidelity."""
        return self.nodes[0]

    def text(self, digits: int = 4) -> str:
        """``mean`` or ``mean ± sd (n seeds)``."""
        if self.n > 1:
            return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f} ({self.n} seeds)"
        return f"{self.mean:.{digits}f}"


def _groups(nodes: Iterable[Node], objective: MetricSpec) -> dict[str, dict[float, list[Node]]]:
    out: dict[str, dict[float, list[Node]]] = {}
    for n in sorted(nodes, key=lambda n: n.created_at):
        if n.score(objective) is not None:
            out.setdefault(n.candidate.hash, {}).setdefault(float(n.fidelity), []).append(n)
    return out


def _standing(h: str, by_fid: dict[float, list[Node]], fidelity: float, objective: MetricSpec) -> Standing:
    group = by_fid[fidelity]
    values = [n.score(objective) for n in group]
    return Standing(hash=h, fidelity=fidelity, mean=statistics.fmean(values),
                    sd=statistics.stdev(values) if len(values) > 1 else 0.0,
                    seeds=tuple(n.seed for n in group), nodes=tuple(group),
                    fidelities=tuple(sorted(by_fid)))


def standings(nodes: Iterable[Node], objective: MetricSpec, fidelity: float | None = None,
              confirmed: bool = True) -> list[Standing]:
    """Valid candidates, best first (see the module docstring); invalid nodes never rank.

    With ``fidelity``, only candidates with a valid result at that fidelity, ranked there.
    With ``confirmed`` (default), one-seed rows come after the several-seed rows of their
    tier; without it, a tier is ranked by the mean alone. Ties go to the candidate
    evaluated first.
    """
    sign = -1.0 if objective.direction == Direction.MAX else 1.0
    rows = []
    for h, by_fid in _groups(nodes, objective).items():
        if fidelity is not None and float(fidelity) not in by_fid:
            continue
        rows.append(_standing(h, by_fid, float(fidelity) if fidelity is not None else max(by_fid), objective))
    rows.sort(key=lambda r: (-r.fidelity, confirmed and r.n == 1, sign * r.mean, r.node.created_at))
    return rows


def unconfirmed_note(rows: Iterable[Standing]) -> str | None:
    """A line for a leaderboard where the confirmed rule reordered rows: a fidelity with both
    one-seed rows and means over several seeds (None where it did not apply)."""
    by_fid: dict[float, set[bool]] = {}
    for r in rows:
        by_fid.setdefault(r.fidelity, set()).add(r.n == 1)
    if any(len(kinds) == 2 for kinds in by_fid.values()):
        return "a row measured on one seed ranks after the means over several seeds at its fidelity"
    return None

