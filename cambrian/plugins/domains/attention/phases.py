"""After search: the baselines and the best designs, re-evaluated on the hidden split.

``phases: {final: {top_k: 3, seeds: [0, 1], split: hidden}}`` in a campaign
config evaluates ``Domain.baselines()`` (softmax attention) and the search's
top-k designs by the same pipeline, under every seed; the summary gives each
design's mean and spread and whether it beats the baseline by more than the
seed spread (a claim of "better" needs that margin).
"""

from __future__ import annotations

import statistics
from typing import Any

from pydantic import Field

from cambrian import Options, Phase, best_nodes


class FinalEvaluation(Phase):
    name = "final"

    class Options(Options):
        top_k: int = Field(3, ge=0, description="search designs re-evaluated beside the baselines")
        seeds: list[int] = Field([0, 1], min_length=1, description="evaluation seeds")
        split: str = Field("hidden", description="the split evaluated")

    def run(self, campaign: Any) -> dict[str, Any]:
        obj = campaign.objective
        top = best_nodes(campaign.nodes.values(), obj)[: self.options.top_k]
        seeds = tuple(self.options.seeds)
        split = self.options.split
        named = [(f"baseline:{k}", c) for k, c in campaign.domain.baselines().items()]
        named += [(n.id, n.candidate) for n in top]
        nodes = campaign.evaluate([c for _, c in named], phase=self.name, split=split, seeds=seeds)
        rows = []
        for i, (label, _) in enumerate(named):
            runs = nodes[i * len(seeds):(i + 1) * len(seeds)]
            vals = [v for n in runs if (v := n.score(obj)) is not None]
            rows.append({"label": label, "values": vals, "mean": statistics.fmean(vals) if vals else None,
                         "spread": (max(vals) - min(vals)) if len(vals) > 1 else 0.0,
                         "failed": len(runs) - len(vals),
                         "errors": [n.error for n in runs if n.error][:3]})
        base = [r for r in rows if r["label"].startswith("baseline:") and r["mean"] is not None]
        sign = 1.0 if obj.direction.value == "max" else -1.0
        for r in rows:
            if base and r["mean"] is not None and not r["label"].startswith("baseline:"):
                b = base[0]
                margin = max(b["spread"], r["spread"])
                r["beats_baseline"] = sign * (r["mean"] - b["mean"]) > margin
        return {"metric": obj.name, "split": split, "seeds": list(seeds), "designs": rows}
