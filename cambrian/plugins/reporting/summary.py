"""A campaign as one JSON object: what ``cambrian show RUN --json`` prints.

Read from the store only (a running, stopped or finished campaign). Keys:

- ``name``, ``status`` ("stopped (<reason>)", "awaiting_approval" or "running or killed"),
  ``counts`` (search nodes by status), ``objective`` ({name, direction});
- ``coordination``: {policy, awaiting (the pending approval: {phase, cost} or {promotion, agent, node, from_fidelity, fidelity, cost}, or null),
  approvals ({phase: decision}), paused ({agent: reason}), insights (the board)};
- ``warnings``: one-line warnings (e.g. references not below the bigram floor);
- ``leaderboard``: the standings (:func:`cambrian.standings`: one row per candidate, its
  mean at the highest fidelity it reached), each {id, agent, operator, design (a short
  summary: the layer pattern of a spec), score: {mean, sd, seeds}, fidelity, metrics (of
  the representative node)}; a candidate scored once has seeds 1 and sd null;
- ``floors``: the count-based floors (bits per byte) per split the campaign scored
  ({"val": {unigram_bpb, bigram_bpb}, "hidden": {...}});
- ``yield``: per agent and operator, the designs it made and how their first evaluations
  compared with the best hand-built reference at the same fidelity and seed
  (:func:`cambrian.campaign.search_yield.operator_yield`): {agent, operator, designs, failed,
  compared, near (at most 1% behind it), ahead, climbed (promoted), climbed_ahead (of those,
  ahead of the best reference at the largest fidelity they reached, by means), best_lead (a
  fraction; negative: behind)};
- ``hidden``: the final evaluation: {strongest_baseline, beats_all_baselines, verdict,
  metric, seeds, rows: [{name, mean, sd, seeds, params, baseline}], comparisons: [{baseline,
  margin, spread, welch_p, beats, rerun_beats}] (the best design against each baseline)}, or
  null before it ran;
- ``deadline``: the plan that stopped the search at ``budget.deadline_s`` ({elapsed_s,
  plan_s, deadline_s, phase_evaluations, phase_work_s, running, workers, next_search_s}),
  or null when no deadline stopped it (:mod:`cambrian.campaign.deadline`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cambrian.campaign.checkpoint import coordination_state
from cambrian.campaign.deadline import deadline_stop
from cambrian.campaign.engine import Campaign
from cambrian.campaign.search_yield import operator_yield
from cambrian.campaign.standings import Standing, standings
from cambrian.core.records import Node
from cambrian.plugins.reporting.format import layer_names

FINAL_PHASES = ("hidden", "final")  # the final evaluation's phase name: compose, attention/script


def design_summary(content: Any) -> str:
    names = layer_names(content) if isinstance(content, dict) else None
    if names:
        return ",".join(names)
    text = str(content)
    return text if len(text) <= 120 else text[:117] + "..."


def origins(nodes: Iterable[Node]) -> dict[str, str]:
    """Candidate hash -> the operator that made it (its first node's, not a re-evaluation's)."""
    out: dict[str, str] = {}
    for n in sorted(nodes, key=lambda n: n.created_at):
        out.setdefault(n.candidate.hash, n.operator)
    return out


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def _finite_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _finite(v) if isinstance(v, float) else v for k, v in row.items()}


def _score(row: Standing) -> dict[str, Any]:
    return {"mean": _finite(row.mean), "sd": _finite(row.sd) if row.n > 1 else None, "seeds": row.n}


def _floors(nodes: list[Node], phases: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    refs = phases.get("references") or {}
    if refs.get("floors"):
        out["val"] = {k: refs["floors"][k] for k in ("unigram_bpb", "bigram_bpb")}
    for n in nodes:
        if "val" not in out and n.split == "val" and "floor_bigram_bpb" in n.metrics:
            out["val"] = {"unigram_bpb": n.metrics["floor_unigram_bpb"].value,
                          "bigram_bpb": n.metrics["floor_bigram_bpb"].value}
    for name in FINAL_PHASES:
        f = (phases.get(name) or {}).get("floors")
        if f:
            out[f.get("split", "hidden")] = {k: f[k] for k in ("unigram_bpb", "bigram_bpb")}
    return out


def _hidden(phases: dict[str, Any]) -> dict[str, Any] | None:
    for name in FINAL_PHASES:
        h = phases.get(name)
        if not h or "designs" not in h:
            continue
        rows = [{"name": r.get("label"), "mean": r.get("mean"), "sd": r.get("sd", r.get("std")),
                 "seeds": r.get("seeds", r.get("n", len(r.get("values", [])))), "params": r.get("params"),
                 "baseline": bool(r.get("baseline"))} for r in h["designs"]]
        return {"phase": name, "metric": h.get("metric"), "seeds": h.get("seeds"),
                "strongest_baseline": h.get("strongest_baseline"),
                "beats_all_baselines": h.get("beats_all_baselines"), "verdict": h.get("verdict"), "rows": rows,
                "comparisons": h.get("comparisons")}
    return None


def run_state(campaign: Any, nodes: list[Any]) -> tuple[dict[str, int], str, dict[str, Any]]:
    """Search-node counts by status, "stopped (reason)" or "running or killed", and the
    coordination state: what ``show`` and ``show --json`` both open with."""
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n.status.value] = counts.get(n.status.value, 0) + 1
    ends = campaign.open_store().events("campaign_end")
    status = f"stopped ({ends[-1]['payload'].get('reason')})" if ends else "running or killed"
    return counts, status, coordination_state(campaign.run_dir)


def phase_records(campaign: Any) -> dict[str, Any]:
    """Each phase's stored record (by name), for the phases that have one."""
    store = campaign.open_store()
    phases = {p.name: store.get_meta(f"phase:{p.name}") for p in campaign.phases}
    return {k: v for k, v in phases.items() if v is not None}


def phase_warnings(phases: dict[str, Any]) -> list[str]:
    """The one-line warnings phases stored (e.g. a proxy whose references miss the floors)."""
    return [p["warning"] for p in phases.values() if isinstance(p, dict) and p.get("warning")]


def campaign_summary(run_dir: str | Path, top: int = 10) -> dict[str, Any]:
    campaign = Campaign.resume(run_dir, lock=False)  # a reader: works while a campaign runs
    store = campaign.open_store()
    obj = campaign.objective
    nodes = store.nodes(phase="search")
    counts, status, coord = run_state(campaign, nodes)
    if coord["awaiting"] is not None:
        status = "awaiting_approval"
    phases = phase_records(campaign)
    warnings = phase_warnings(phases)
    board = [{"id": r.node.id, "agent": r.node.agent, "operator": r.node.operator,
              "design": design_summary(r.node.candidate.content), "score": _score(r), "fidelity": r.fidelity,
              "metrics": {k: _finite(m.value) for k, m in r.node.metrics.items()}}
             for r in standings(nodes, obj)[:top]]
    return {"name": campaign.config.name, "run_dir": str(run_dir), "status": status, "counts": counts,
            "objective": {"name": obj.name, "direction": obj.direction.value}, "warnings": warnings,
            "leaderboard": board, "yield": [_finite_fields(y.model_dump()) for y in operator_yield(nodes, obj)],
            "floors": _floors(nodes, phases), "hidden": _hidden(phases), "deadline": deadline_stop(store),
            "coordination": {"policy": campaign.config.coordination.policy, "awaiting": coord["awaiting"],
                             "approvals": coord["approvals"], "paused": coord["paused"],
                             "insights": coord["insights"]}}
