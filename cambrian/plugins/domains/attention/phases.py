"""After search: the baselines and the best designs, re-evaluated on the hidden split.

``phases: {final: {top_k: 3, seeds: 5, split: hidden}}`` in a campaign config evaluates
every ``Domain.baselines()`` design and the search's top-k designs (by the mean over seeds at
the highest fidelity, :func:`cambrian.standings`; none equal to a baseline) by the same pipeline
under ``seeds`` fresh seeds (a count: from 1000 up, never a seed the search used; or a
list that must not reuse one). The summary gives each design's mean and sd over seeds and
the one verdict of :func:`cambrian.scaling.verdict.verdict`: the best design against
every baseline, naming the strongest (Welch t-test and margin > sum of sds). The script
pack uses this phase too.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from cambrian import Candidate, Options, Phase, PhaseEvaluations, standings
from cambrian.scaling.verdict import Row, hidden_seeds, verdict


class FinalEvaluation(Phase):
    name = "final"

    class Options(Options):
        top_k: int = Field(3, ge=0, description="search designs re-evaluated beside the baselines")
        seeds: int | list[int] = Field(5, description="a count of fresh seeds (from 1000 up, never used "
                                       "by the search), or a list of seeds the search did not use")
        split: str = Field("hidden", description="the split evaluated")

    def _request(self, campaign: Any, candidates: list[Candidate]) -> PhaseEvaluations:
        used = {n.seed for n in campaign.open_store().nodes() if n.phase != self.name} | {campaign.config.seed}
        return PhaseEvaluations(tuple(candidates), self.name, self.options.split,
                                tuple(hidden_seeds(self.options.seeds, used)))

    def ahead(self, campaign: Any) -> list[PhaseEvaluations]:
        """The baselines' seeds: the same whatever the search finds (run in its idle time)."""
        return [self._request(campaign, list(campaign.domain.baselines().values()))]

    def _named(self, campaign: Any) -> list[tuple[str, Candidate]]:
        """(label, candidate): every baseline, then the search's top-k designs."""
        baselines = campaign.domain.baselines()
        known = {c.hash for c in baselines.values()}  # a baseline the search re-found is judged as a baseline
        top = [r.node for r in standings(campaign.nodes.values(), campaign.objective)
               if r.hash not in known][: self.options.top_k]
        return [(f"baseline:{k}", c) for k, c in baselines.items()] + [(n.id, n.candidate) for n in top]

    def planned(self, campaign: Any) -> list[PhaseEvaluations]:
        """The baselines' seeds and the search's top-k as it stands."""
        return [self._request(campaign, [c for _, c in self._named(campaign)])]

    def run(self, campaign: Any) -> dict[str, Any]:
        obj = campaign.objective
        named = self._named(campaign)
        want = self._request(campaign, [c for _, c in named])
        seeds, split = want.seeds, want.split
        nodes = campaign.evaluate(list(want.candidates), phase=want.phase, split=split, seeds=seeds)
        rows, designs, bases = [], [], []
        for i, (label, _) in enumerate(named):
            runs = nodes[i * len(seeds):(i + 1) * len(seeds)]
            vals = [v for n in runs if (v := n.score(obj)) is not None]
            sized = [n.metrics["model_params"].value for n in runs if "model_params" in n.metrics]
            row = Row(name=label, values=vals, baseline=label.startswith("baseline:"),
                      params=sized[0] if sized else None)  # the whole LM's: the verdict says the size ratio
            (bases if row.baseline else designs).append(row)
            rows.append({"label": label, **{k: v for k, v in row.summary().items() if k != "name"},
                         "failed": len(runs) - len(vals), "errors": [n.error for n in runs if n.error][:3]})
        v = verdict(designs, bases, direction=obj.direction.value, metric=obj.name)
        return {"metric": obj.name, "split": split, "seeds": list(seeds), "designs": rows, "best": v.best,
                "strongest_baseline": v.strongest_baseline, "beats_all_baselines": v.beats_all_baselines,
                "comparisons": [c.model_dump() for c in v.comparisons], "verdict": v.text}
