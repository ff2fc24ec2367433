"""The halving scaffold: multi-fidelity search (asynchronous successive halving) around any scaffold.

Many candidates are screened cheaply, the best fraction is re-evaluated at a larger
budget, and the best of those again, up to the finalists; the finalists' leaders then
get extra seeds at the top fidelity before one of them is called best. Any domain can
use it: a fidelity is a multiple of the domain's configured evaluation budget (the
compose evaluator scales its training tokens by it, the toy evaluator shrinks its
noise), carried by the node and the evaluation job.

Each step, in order:
  1. reseed: among the best ``reseed_top`` candidates at the top rung (by their mean),
     one with fewer than ``seeds`` evaluations there: propose a ``reseed`` with the
     next unused seed (campaign seed + 1, + 2, ...), so selection is by a mean and the
     rivals of the leader are measured as often as the leader;
  2. promote (ASHA, Li et al. 2020): from the highest rung down, if a rung has n valid
     results at the campaign seed (with ``promote_seeds``: n finds, references apart),
     its best n // eta that have no evaluation at the next
     rung yet: propose the first as a ``promote`` (the engine evaluates the same
     candidate again, as a new node, at the next rung's fidelity);
  3. otherwise the inner scaffold proposes, and its candidates are screened at the first
     rung.
With a node budget, or a deadline (``budget.deadline_s``: the search evaluations that still
fit before it, ``SearchView.budget_left["deadline_nodes"]``), the budget's end goes to
finalists: when ``reserve`` nodes or fewer are left, screening stops (the agent waits for
its running evaluations, which may earn a promotion, and then stops, leaving the rest to
other agents' finalists), and a promotion is made only while the rest of its way up
(higher rungs and reseeds) fits.

The inner scaffold sees only the screening evaluations (one node per candidate it made);
promotions and reseeds are this scaffold's. With ``inner_rank: standings`` (the default)
each of those nodes carries its candidate's place in the standings instead of its raw
screening score (1 = best, negated when the objective is maximised): candidates that
climbed higher come first, by their mean there, then the rest by their screening score.
Raw scores at different fidelities do not compare, and a screening score is the noisiest
one a candidate has, so an evolutionary inner scaffold then breeds from the candidates
that did best at the largest budget. The places are in the standings of every agent's
results, and the other agents' screening nodes (the inner scaffold's ``shared``) are
scored the same way. The inner scaffold's ``observe`` still gets the real nodes (``bo``
tells optuna real screening values). Everything is
recomputed from the stored nodes at each step, so a resumed campaign continues the same
schedule (the inner scaffold replays its own nodes through ``observe``).

Options (defaults):
  inner ({name: random}): the scaffold that makes new candidates, with its options;
  inner_rank (standings): what the inner scaffold's nodes score (above): ``standings`` or
    ``screening`` (the raw screening score);
  rungs ([0.1, 0.33, 1.0]): ascending fidelities; the first screens, the last is final;
  eta (3): promote the best 1/eta of each rung;
  reseed_top (2), seeds (3): the best reseed_top finalists are evaluated with seeds
    seeds each (the campaign seed and seeds - 1 more);
  reserve (null): nodes kept for promotions and reseeds; null = len(rungs) - 1 +
    reseed_top * (seeds - 1), plus len(rungs) - 1 + seeds - 1 with promote_seeds;
  promote_seeds (false): the best of the domain's own starting designs (the nodes of the
    ``seeds`` operator, hand-built references) is promoted at every rung whatever its rank,
    and reseeded at the top like a leader, besides the eta fraction and the reseed_top
    finalists, which are then the other candidates' alone (the fraction is of them, and
    they are chosen among them; the weaker references stop where they are): the
    finalists are then ranked against the
    strongest reference at the same budget and seeds (a reference that learns slowly at a
    screening budget would otherwise never meet the finalists);
  promote_within (null): a find is promoted, and reseeded at the top, only while its score
    at the rung (its mean at the top) is within this fraction of the best hand-built
    reference's there (any agent's evaluations of a ``seeds`` candidate); the eta fraction
    is chosen first, then held to this bar. null: no bar (plain ASHA);
  size_credit (null): ``{metric: params, per_log: k}``: below the top rung, each result is
    credited ``k * ln(metric / median metric)`` towards better (lower loss for a larger model)
    wherever this scaffold ranks it (promotions, the bar, the inner scaffold's places); a node
    without the metric gets no credit. A short budget favours small models: it cuts their
    training where a larger one has gained least of what it will, so screening ranks them
    above larger designs that end better. In the default campaign's stores (25 candidates
    measured at both rungs, three campaign seeds) the rank correlation of screening with the
    full proxy was 0.62, 0.61 and 0.00 per seed; credited with 0.15 bpb per e-fold of
    parameters, 0.93, 0.86 and 0.74; in its seed 2 a credit changed what was promoted but
    not the verdict, so that campaign leaves it off (docs/benchmarks.md). null: raw scores;
  approve_from (null): a rung's fidelity; promotions to it or above wait for a person's
    approval (the campaign stops with status awaiting_approval and the promotion's cost,
    `cambrian approve RUN_DIR [--reject]`, then `cambrian resume`). A rejected promotion
    is not evaluated and not proposed again; the search goes on. Reseeds of an approved
    finalist follow without asking (seeds: 1 gates every evaluation at those rungs).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cambrian import Direction, Node, Options, Proposal, Scaffold, SearchView, hookimpl, standings
from cambrian.campaign.search_yield import REFERENCE_OPERATOR, best_reference
from cambrian.core.components import REEVALUATE_ROLES
from cambrian.core.plugins import get_plugin_manager


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "random"
    options: dict[str, Any] = Field(default_factory=dict)


class _SizeCredit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    metric: str = Field("params", description="the size metric the evaluator reports")
    per_log: float = Field(gt=0, description="credit per e-fold of the metric over its median")


class HalvingOptions(Options):
    inner: _Inner = Field(default_factory=_Inner, description="the scaffold that proposes new candidates")
    rungs: list[float] = Field(default_factory=lambda: [0.1, 0.33, 1.0], min_length=1,
                               description="ascending fidelities; the first screens, the last is final")
    eta: int = Field(3, ge=2, description="promote the best 1/eta of each rung")
    reseed_top: int = Field(2, ge=0, description="finalists that get extra seeds")
    seeds: int = Field(3, ge=1, description="evaluations per reseeded finalist at the top rung")
    reserve: int | None = Field(None, ge=0, description="nodes kept for promotions and reseeds")
    approve_from: float | None = Field(None, description="promotions to this rung's fidelity or above wait "
                                       "for a person's approval (cambrian approve); null: none do")
    inner_rank: Literal["standings", "screening"] = Field(
        "standings", description="what the inner scaffold's nodes score: their candidate's place in the "
        "standings (highest fidelity first), or the raw screening score")
    promote_seeds: bool = Field(False, description="also promote the best of the domain's own starting designs "
                                "(operator `seeds`: hand-built references) at every rung and reseed it at the top, "
                                "so the finalists are ranked against the strongest reference at their budget")
    promote_within: float | None = Field(None, ge=0, description="a find climbs (promotion or reseed) only while its "
                                         "score at the rung is within this fraction of the best hand-built "
                                         "reference's there (0.01: at most 1% worse); null: no such bar")
    size_credit: _SizeCredit | None = Field(None, description="below the top rung, credit each result "
                                            "per_log * ln(metric / median) towards better: a short budget "
                                            "favours small models; null: raw scores")

    @field_validator("inner", mode="before")
    @classmethod
    def _bare_name(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @field_validator("rungs")
    @classmethod
    def _ascending(cls, v: list[float]) -> list[float]:
        if any(f <= 0 for f in v) or any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError(f"rungs must be positive and strictly ascending, got {v}")
        return [float(f) for f in v]

    @model_validator(mode="after")
    def _gated_rung(self) -> HalvingOptions:
        if self.approve_from is not None and self.approve_from not in self.rungs[1:]:
            raise ValueError(f"approve_from: must be one of the rungs promoted to {self.rungs[1:]}, "
                             f"got {self.approve_from}")
        return self


def is_reevaluation(node: Node) -> bool:
    return node.operator in REEVALUATE_ROLES


class HalvingScaffold(Scaffold):
    name = "halving"
    Options = HalvingOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.opts = self.options
        if self.opts.inner.name == self.name:
            raise ValueError("halving: the inner scaffold cannot be halving itself")

        self.inner: Scaffold = get_plugin_manager().get("scaffold", self.opts.inner.name)(**self.opts.inner.options)
        self.rungs = self.opts.rungs
        o = self.opts
        climbers = 1 + int(o.promote_seeds)  # the best promotion, and the best reference
        self.reserve = o.reserve if o.reserve is not None else \
            (len(self.rungs) - 1) * climbers + (o.reseed_top + int(o.promote_seeds)) * (o.seeds - 1)

    def observe(self, node: Node) -> None:
        if not is_reevaluation(node):
            self.inner.observe(node)

    # -- the schedule ---------------------------------------------------------------------

    def _split(self, ranked: list, view: SearchView) -> tuple[list, list]:
        """``(finds, best_reference)``: with ``promote_seeds``, the rows that are not hand-built
        references (nodes of the ``seeds`` operator), and the best reference's row (a list of
        at most one); without it, every row is a find. The eta fraction and the reseed_top
        places are the finds' alone: the best reference climbs and is reseeded besides them
        (so when it leads the top rung the best find still gets its seeds), and the other
        references, which it beats, stop where they are (a weaker reference in the finals
        measures nothing new). The fraction is of the finds, too: a lone find screened among
        four references is not promoted for being the only find.
        """
        if not self.opts.promote_seeds:
            return ranked, []
        refs = {n.candidate.hash for n in view.nodes if n.operator == REFERENCE_OPERATOR}
        best_ref = next(([row] for row in ranked if row.hash in refs), [])
        return [row for row in ranked if row.hash not in refs], best_ref

    def _bar(self, view: SearchView, fidelity: float) -> float | None:
        """The worst score a find may have at ``fidelity`` and still climb: the best hand-built
        reference's there (any agent's evaluations of a ``seeds`` node's candidate: at the campaign
        seed below the top rung, by its mean at the top), ``promote_within`` of it worse. None
        without the option or before a reference has a result at that rung.

        ASHA promotes a rung's best fraction however it compares with anything else. When the
        aim is to beat the strongest hand-built design, a find well behind it at the same budget
        is not worth a larger one, and its reseed cannot make it best: in the default campaign's
        stores (9058142) such climbs were 7 of seed 0's 11 evaluations at the top budget, every
        one of them more than 0.1 bpb behind the Nemotron-style reference there.
        """
        if self.opts.promote_within is None:
            return None
        top = fidelity == self.rungs[-1]
        ref = best_reference(self._everyone(view), view.objective, fidelity, None if top else view.seed)
        if ref is None:
            return None
        slack = self.opts.promote_within * abs(ref.mean)
        return ref.mean - slack if view.objective.direction == Direction.MAX else ref.mean + slack

    @staticmethod
    def _clears(row: Any, bar: float | None, view: SearchView) -> bool:
        if bar is None:
            return True
        return row.mean >= bar if view.objective.direction == Direction.MAX else row.mean <= bar

    def promotion(self, view: SearchView, left: int | None = None) -> Proposal | None:
        """The next ASHA promotion, from the highest rung down (None when none is due).

        With ``left`` nodes of budget, a promotion is made only where the rest of the way up
        (the promotions above it and the finalist's reseeds) still fits in the budget."""
        have = {(n.candidate.hash, n.fidelity, n.seed) for n in view.nodes}
        top = len(self.rungs) - 1
        for i in range(top - 1, -1, -1):
            if left is not None and left < (top - i) + max(0, self.opts.seeds - 1):
                continue
            here = [n for n in view.nodes if n.fidelity == self.rungs[i] and n.seed == view.seed]
            ranked = standings(here, view.objective, fidelity=self.rungs[i], confirmed=False)
            to = self.rungs[i + 1]
            finds, best_ref = self._split(ranked, view)
            bar = self._bar(view, self.rungs[i])
            for row in [r for r in finds[: len(finds) // self.opts.eta] if self._clears(r, bar, view)] + best_ref:
                if (row.hash, to, view.seed) not in have and (row.hash, to) not in view.rejected:
                    gated = self.opts.approve_from is not None and to >= self.opts.approve_from
                    return Proposal("promote", (row.node.id,), fidelity=to, seed=view.seed, approve=gated)
        return None

    def reseeding(self, view: SearchView) -> Proposal | None:
        """The next extra seed for a leading finalist (None when they all have ``seeds``)."""
        if self.opts.seeds <= 1 or self.opts.reseed_top <= 0:
            return None
        top = self.rungs[-1]
        finals = [n for n in view.nodes if n.fidelity == top]
        ranked = standings(finals, view.objective, fidelity=top, confirmed=False)
        finds, best_ref = self._split(ranked, view)
        bar = self._bar(view, top)
        for row in [r for r in finds[: self.opts.reseed_top] if self._clears(r, bar, view)] + best_ref:
            used = {n.seed for n in finals if n.candidate.hash == row.hash}
            if len(used) < self.opts.seeds:
                seed = next(view.seed + j for j in range(1, 10 * self.opts.seeds) if view.seed + j not in used)
                return Proposal("reseed", (row.node.id,), fidelity=top, seed=seed)
        return None

    def _nodes_left(self, view: SearchView) -> int | None:
        left = [v for k, v in view.budget_left.items()
                if k in ("nodes", "campaign_nodes", "deadline_nodes") and v is not None]
        return min(left) if left else None

    def _credited(self, view: SearchView) -> SearchView:
        """The view with every result below the top rung credited for its size (``size_credit``);
        the top rung's results, by which a best design is chosen, stay as measured."""
        credit = self.opts.size_credit
        if credit is None:
            return view
        sizes = [m.value for n in self._everyone(view)
                 if (m := n.metrics.get(credit.metric)) is not None and m.value > 0]
        if not sizes:
            return view
        middle, name = statistics.median(sizes), view.objective.name
        sign = 1.0 if view.objective.direction == Direction.MAX else -1.0

        def one(n: Node) -> Node:
            size, score = n.metrics.get(credit.metric), n.score(view.objective)
            if n.fidelity >= self.rungs[-1] or size is None or size.value <= 0 or score is None:
                return n
            value = score + sign * credit.per_log * math.log(size.value / middle)
            metric = n.metrics[name].model_copy(update={"value": value})
            return n.model_copy(update={"metrics": {**n.metrics, name: metric}})

        return replace(view, nodes=[one(n) for n in view.nodes], shared=[one(n) for n in view.shared])

    def propose(self, view: SearchView) -> Proposal | None:
        view = self._credited(view)
        left = self._nodes_left(view)
        move = self.reseeding(view) or self.promotion(view, left)
        if move is not None:
            return move
        if left is not None and left <= self.reserve:
            # The budget's end is kept for the finalists (this agent's, or another's): no
            # more screening. With nothing running either, the agent is done.
            return None
        screening = [n for n in view.nodes if not is_reevaluation(n)]
        shared = [n for n in view.shared if not is_reevaluation(n)]
        if self.opts.inner_rank == "standings":
            place = self._places(view)
            screening, shared = self._ranked(screening, place, view), self._ranked(shared, place, view)
        inner_view = replace(view, nodes=screening, shared=shared,
                             in_flight=sum(not n.status.finished for n in screening))
        move = self.inner.propose(inner_view)
        if move is not None:
            move.fidelity = self.rungs[0]
        return move

    def why_none(self, view: SearchView) -> str | None:
        left = self._nodes_left(view)
        if left is not None and left <= self.reserve:
            which = next(k for k in ("nodes", "campaign_nodes", "deadline_nodes")
                         if view.budget_left.get(k) == left)
            return (f"screening stopped: {left} evaluation(s) left ({which}) are kept for finalists "
                    f"(reserve {self.reserve}), and no promotion is due")
        return None

    @staticmethod
    def _everyone(view: SearchView) -> list[Node]:
        """Every agent's nodes: this agent's and the shared leaderboard's, each once."""
        return list({n.id: n for n in [*view.shared, *view.nodes]}.values())

    @classmethod
    def _places(cls, view: SearchView) -> dict[str, int]:
        """Each candidate's place (1 = best) in the standings of every agent's results, so the
        inner scaffold compares its own candidates and the other agents' on one scale."""
        ranked = standings(cls._everyone(view), view.objective, confirmed=False)
        return {r.hash: i for i, r in enumerate(ranked, 1)}

    @staticmethod
    def _ranked(screening: list[Node], place: dict[str, int], view: SearchView) -> list[Node]:
        """The screening nodes, each scored by its candidate's ``place``."""
        sign = -1.0 if view.objective.direction == Direction.MAX else 1.0
        name, out = view.objective.name, []
        for n in screening:
            if n.score(view.objective) is None or n.candidate.hash not in place:
                out.append(n)
                continue
            metric = n.metrics[name].model_copy(update={"value": sign * place[n.candidate.hash]})
            out.append(n.model_copy(update={"metrics": {**n.metrics, name: metric}}))
        return out

    def state(self, view: SearchView) -> dict[str, Any]:
        """Per rung: the candidates with a valid result there (best first) and their means."""
        return {"rungs": [{"fidelity": f, "standings": [
            {"hash": r.hash, "mean": r.mean, "sd": r.sd, "seeds": list(r.seeds)}
            for r in standings(view.nodes, view.objective, fidelity=f)]} for f in self.rungs]}


@hookimpl
def cambrian_scaffolds():
    return [HalvingScaffold]
