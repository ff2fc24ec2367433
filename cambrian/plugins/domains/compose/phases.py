"""The compose pack's phases after search: aggregation, scaling steps, hidden evaluation.

Every evaluation goes through :meth:`Campaign.evaluate` (deterministic node ids, finished
nodes reused), and every choice is a pure function of stored nodes, so a campaign killed
inside a phase resumes it and repeats nothing that finished.

Config (the campaign's ``phases`` mapping; a phase set to ``false`` is skipped):

  aggregation: {top: 6, radius: null}
    The ``top`` distinct designs of the search (by the objective) form the pool; the
    cluster is the designs within ``radius`` layer differences (default: half the proxy
    depth) of the best; a per-layer majority vote over the cluster (ties to the better
    design) gives the aggregate design, evaluated like a search candidate.
  scaling: {top_k: 2, baselines: [llama, composer], ladder: [...], level: 0.95}
    Promotes the ``top_k`` designs (search and aggregate, deduplicated by canonical hash)
    and the named baselines through the ladder. A rung is {name, d_model, depth (a factor of
    the design's own depth) or n_layers, mode (stack | stretch), and training keys
    (train_tokens, device, checkpoint_every, ...)}, or names a ladder scale ({name, preset:
    125m, ...}: that scale's dims, batch, lr, GPU and a Chinchilla budget; docs/scaling.md);
    the first rung is the proxy itself, whose search results are reused. Per design, the
    training curves of all rungs give loss-vs-compute points; their compute-efficient
    frontier is fitted as L = a * C^-b (:func:`cambrian.scaling.fits.fit_power_law`, bootstrap
    intervals), and "scales X% faster" compares b with the Llama-style baseline's
    (:func:`compare_slopes`). Rank agreement: Spearman and Kendall between the proxy's and the
    largest rung's ranking of the promoted designs.
  hidden: {top_k: 2, seeds: 5, baselines: [llama], rung: null}
    The ``top_k`` designs (the leaderboard's: mean over seeds at the highest fidelity) and
    the baselines, each trained with every seed and scored on the hidden split, at the
    proxy's budget (fidelity 1, or the search's highest where finalists went beyond it), or
    at ``rung``. ``seeds`` is a count of fresh seeds (from
    1000 up, skipping every seed the search used), or a list that must not reuse one.
    The best design "beats" the first baseline only when its mean is lower by more than the sum of both seed standard
    deviations; the verdict is stored either way.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from cambrian import Candidate, Node, NodeStatus, Options, Phase, standings
from cambrian.core.standings import hidden_seeds
from cambrian.plugins.domains.compose.evaluator import CURVE_FILE, TRAINING_KEYS
from cambrian.plugins.domains.compose.patterns import minimal_layers, resize

DEFAULT_LADDER = [{"name": "proxy"},
                  {"name": "x1.5", "d_model": 80, "depth": 1.5, "mode": "stack", "train_tokens": 300_000}]


def pattern(content: dict[str, Any]) -> str:
    from cambrian.architectures import ArchSpec

    return ArchSpec.from_dict(content).pattern()


def search_pool(campaign: Any, phases: tuple[str, ...] = ("search", "aggregation")) -> list[Node]:
    """One node per design of ``phases``, best first by the leaderboard's rule
    (:func:`cambrian.standings`: the mean over seeds at the highest fidelity reached)."""
    store = campaign.open_store()
    nodes = [n for p in phases for n in store.nodes(phase=p)]
    return [row.node for row in standings(nodes, campaign.objective)]


def search_fidelity(campaign: Any) -> float:
    """The fidelity final evaluations train at: the proxy's (1.0), or the search's highest
    where finalists were evaluated beyond it (e.g. rungs [1, 3, 10])."""
    return max([1.0] + [n.fidelity for n in campaign.open_store().nodes(phase="search")])


def search_seeds(campaign: Any) -> set[int]:
    """Every seed a search or selection evaluation used (the hidden phase must avoid them)."""
    store = campaign.open_store()
    return {n.seed for n in store.nodes() if n.phase != "hidden"} | {int(campaign.config.seed)}


def node_summary(n: Node, objective: str) -> dict[str, Any]:
    return {"node": n.id, "hash": n.candidate.hash, "agent": n.agent, "operator": n.operator,
            "score": n.metrics[objective].value if objective in n.metrics else None,
            "bpb": n.metrics["bpb"].value if "bpb" in n.metrics else None,
            "pattern": pattern(n.candidate.content)}


class Aggregation(Phase):
    name = "aggregation"

    class Options(Options):
        top: int = Field(6, ge=1, description="best search designs clustered")
        radius: int | None = Field(None, ge=0, description="layer distance of a neighbour (null: n_layers // 2)")

    def run(self, campaign: Any) -> dict[str, Any]:
        domain, obj = campaign.domain, campaign.objective.name
        # Search nodes only: on a resume, this phase's own node must not change its input.
        pool = search_pool(campaign, ("search",))
        top = pool[:self.options.top]
        if not top:
            return {"skipped": "no valid search node"}
        from cambrian.scaling.ladder import layer_distance, majority_vote

        radius = self.options.radius
        radius = radius if radius is not None else max(1, domain.s["n_layers"] // 2)
        best = top[0].candidate.content
        cluster = [n for n in top if layer_distance(best, n.candidate.content) <= radius]
        out: dict[str, Any] = {"top": [node_summary(n, obj) for n in top], "radius": radius,
                               "cluster": [n.id for n in cluster]}
        if len(cluster) < 2:
            out["aggregate"] = None
            out["note"] = "the best design has no neighbour within the radius: nothing to vote"
            return out
        try:
            cand = domain.validate(Candidate(kind="spec", content=majority_vote(
                [n.candidate.content for n in cluster])))
        except ValueError as exc:
            out["aggregate"], out["note"] = None, f"the voted design is invalid: {exc}"
            return out
        known = {n.candidate.hash: n for n in pool}
        if cand.hash in known:  # the vote reproduced a design already evaluated
            node = known[cand.hash]
        else:
            node = campaign.evaluate([cand], phase="aggregation", split="val",
                                     seeds=(campaign.config.seed,), agent="aggregation")[0]
        out["aggregate"] = {"node": node.id, "hash": cand.hash, "pattern": pattern(cand.content),
                            "status": node.status.value, "new": cand.hash not in known,
                            "score": node.score(campaign.objective), "content": cand.content}
        best = top[0].score(campaign.objective)
        s = node.score(campaign.objective)
        out["aggregate_beats_best"] = s is not None and s < best
        return out


# -- scaling ----------------------------------------------------------------------------------


def check_presets(rungs: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Rungs naming a scale (``preset``) name a known one: checked when the config loads."""
    from cambrian.scaling.ladder import get_scale

    for rung in rungs or ():
        if rung.get("preset"):
            get_scale(rung["preset"])  # ValueError: unknown scale 'x'; known: ...
    return rungs


def expand_rung(rung: dict[str, Any]) -> dict[str, Any]:
    """A rung naming a ladder scale (``preset: 125m``) with that scale's dims, budget and device
    (:func:`cambrian.scaling.ladder.rung_at_scale`); other rungs as they are."""
    from cambrian.scaling.ladder import rung_at_scale

    return rung_at_scale(rung) if rung.get("preset") else rung


def at_rung(content: dict[str, Any], rung: dict[str, Any]) -> dict[str, Any]:
    """The design's spec at a ladder rung: wider (``d_model``) and deeper (``n_layers`` residual
    layers, or ``depth`` x its own; stacked or stretched), with derivable options re-derived at
    the new width. A rung naming a scale (``preset``) takes that scale's dims."""
    from cambrian.architectures import ArchSpec

    rung = expand_rung(rung)
    if rung.get("d_model") is None and rung.get("depth") in (None, 1, 1.0) and rung.get("n_layers") is None:
        return content
    layers = minimal_layers(content)
    depth = int(rung["n_layers"]) if rung.get("n_layers") else max(1, round(len(layers) * float(rung.get("depth", 1.0))))
    new = {**content, "d_model": int(rung.get("d_model", content["d_model"])),
           "layers": resize(layers, depth, rung.get("mode", "stack"))}
    if "seq_len" in rung:
        new["max_seq_len"] = int(rung["seq_len"])
    return ArchSpec.from_dict(new).to_dict()


def rung_options(rung: dict[str, Any]) -> dict[str, Any]:
    rung = expand_rung(rung)
    return {**{k: rung[k] for k in TRAINING_KEYS if k in rung}, "scale": rung["name"]}


def curve_points(run_dir: Path, node: Node, skip_frac: float = 0.2) -> list[tuple[float, float]]:
    """(training FLOPs so far, train loss in bits per token) along a node's training run."""
    path = run_dir / "evals" / node.id / "work" / CURVE_FILE
    if not path.is_file():
        return []
    c = json.loads(path.read_text())
    per_step = 3.0 * c["flops_per_token"] * c["tokens_per_step"]
    hist = c["history"]
    last = hist[-1][0] if hist else 0
    return [(step * per_step, loss / math.log(2)) for step, loss in hist
            if step > skip_frac * last and math.isfinite(loss) and loss > 0]


def fit_design(points: list[tuple[float, float]], level: float) -> dict[str, Any] | None:
    from cambrian.scaling.fits import fit_power_law, frontier

    if len(points) < 3:
        return None
    C, L = zip(*points)
    keep = frontier(C, L)
    Cf, Lf = [C[i] for i in keep], [L[i] for i in keep]
    if len(set(Cf)) < 3:
        return None
    fit = fit_power_law(Cf, Lf, level=level, n_boot=400)
    return {"fit": fit, "a": fit.a, "b": fit.b, "b_ci": list(fit.ci["b"]), "n_points": len(Cf),
            "points": [[c, l] for c, l in zip(Cf, Lf)]}


def agreement(first: dict[str, float], last: dict[str, float]) -> dict[str, Any]:
    """Spearman and Kendall between two rungs' scores (:func:`cambrian.scaling.ladder.rank_agreement`)."""
    from cambrian.scaling.ladder import rank_agreement

    if len(set(first) & set(last)) < 3:
        return {"n": len(set(first) & set(last)), "note": "fewer than 3 designs at both rungs: no rank correlation"}
    ra = rank_agreement(first, last)
    clean = lambda v: float(v) if math.isfinite(v) else None
    return {"n": ra.n, "spearman": clean(ra.spearman), "spearman_p": clean(ra.spearman_p),
            "kendall": clean(ra.kendall), "kendall_p": clean(ra.kendall_p)}


def promoted(campaign: Any, top_k: int, baselines: list[str]) -> list[dict[str, Any]]:
    """The designs a phase carries forward: the best ``top_k`` and the named baselines."""
    designs = [{"label": f"#{i + 1} {n.id}", "kind": n.phase, "hash": n.candidate.hash,
                "candidate": n.candidate, "proxy_node": n}
               for i, n in enumerate(search_pool(campaign)[:top_k])]
    refs = campaign.domain.baselines()
    for name in baselines:
        if name not in refs:
            raise ValueError(f"unknown baseline {name!r} (known: {', '.join(refs)})")
        cand = refs[name]
        same = next((d for d in designs if d["hash"] == cand.hash), None)
        if same is not None:  # a search design equal to the baseline: one entry, both labels
            same["label"] += f" = {name}"
            same["baseline"] = name
            continue
        designs.append({"label": name, "kind": "baseline", "baseline": name, "hash": cand.hash,
                        "candidate": cand, "proxy_node": None})
    return designs


class Scaling(Phase):
    name = "scaling"

    class Options(Options):
        ladder: list[dict[str, Any]] | None = Field(None, min_length=1, description="rungs: {name, d_model, "
                                                    "depth or n_layers, mode, training keys} or {name, preset: "
                                                    "a ladder scale, ...} (null: proxy and x1.5)")
        level: float = Field(0.95, gt=0, lt=1, description="confidence level of the fits")
        top_k: int = Field(2, ge=0, description="search designs promoted")
        baselines: list[str] = Field(["llama", "composer"], description="baselines promoted with them")

        @field_validator("ladder")
        @classmethod
        def _known_presets(cls, ladder):
            return check_presets(ladder)

    def run(self, campaign: Any) -> dict[str, Any]:
        ladder = self.options.ladder or DEFAULT_LADDER
        level = self.options.level
        designs = promoted(campaign, self.options.top_k, list(self.options.baselines))
        if not designs:
            return {"skipped": "nothing to promote"}
        run_dir = Path(campaign.run_dir)
        seed = campaign.config.seed
        for d in designs:
            d["rungs"] = {}
        for r, rung in enumerate(ladder):
            todo = [d for d in designs if not (r == 0 and d["proxy_node"] is not None)]
            cands = [Candidate(kind="spec", content=at_rung(d["candidate"].content, rung)) for d in todo]
            nodes = campaign.evaluate(cands, phase=f"scale:{rung['name']}", split="val", seeds=(seed,),
                                      evaluator_options=rung_options(rung) if r else None,
                                      agent="scaling") if cands else []
            for d, n in zip(todo, nodes):
                d["rungs"][rung["name"]] = n
            if r == 0:
                for d in designs:
                    if d["proxy_node"] is not None:
                        d["rungs"][rung["name"]] = d["proxy_node"]
        obj = campaign.objective.name
        summary_designs = []
        fits: dict[str, Any] = {}
        for d in designs:
            points = [p for n in d["rungs"].values() if n.status == NodeStatus.DONE
                      for p in curve_points(run_dir, n)]
            fit = fit_design(points, level)
            fits[d["label"]] = fit
            summary_designs.append({
                "label": d["label"], "kind": d["kind"], "baseline": d.get("baseline"), "hash": d["hash"],
                "pattern": pattern(d["candidate"].content),
                "rungs": {name: {"node": n.id, "status": n.status.value, "error": n.error,
                                 "score": n.metrics[obj].value if obj in n.metrics else None,
                                 "bpb": n.metrics["bpb"].value if "bpb" in n.metrics else None,
                                 "params": n.metrics["params"].value if "params" in n.metrics else None,
                                 "train_flops": n.metrics["train_flops"].value if "train_flops" in n.metrics else None,
                                 "pattern": pattern(n.candidate.content)}
                          for name, n in d["rungs"].items()},
                "fit": None if fit is None else {k: v for k, v in fit.items() if k != "fit"},
            })
        ref = next((d["label"] for d in designs if d.get("baseline") == "llama"), None)
        from cambrian.scaling.fits import compare_slopes

        for sd in summary_designs:
            f, base = fits.get(sd["label"]), fits.get(ref) if ref else None
            if f is not None and base is not None and sd["label"] != ref:
                cmp = compare_slopes(f["fit"], base["fit"])
                sd["vs_llama"] = {"percent_faster": cmp.percent_faster, "ci": list(cmp.ci),
                                  "level": cmp.level, "text": str(cmp)}
        first, last = ladder[0]["name"], ladder[-1]["name"]
        both = [sd for sd in summary_designs if all(sd["rungs"].get(x, {}).get("score") is not None
                                                     for x in (first, last))]
        ra = agreement({sd["label"]: sd["rungs"][first]["score"] for sd in both},
                       {sd["label"]: sd["rungs"][last]["score"] for sd in both})
        ra.update({"from": first, "to": last, "designs": [sd["label"] for sd in both]})
        return {"ladder": ladder, "reference": ref, "designs": summary_designs, "rank_agreement": ra,
                "fit_note": ("per design: L = a * C^-b fitted on the compute-efficient frontier of the training "
                             "curves (train loss, bits per byte) of every rung; C = training FLOPs")}


# -- hidden evaluation ------------------------------------------------------------------------


def seed_stats(values: list[float]) -> dict[str, Any]:
    return {"values": values, "mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


class HiddenEvaluation(Phase):
    name = "hidden"

    class Options(Options):
        seeds: int | list[int] = Field(5, description="a count of fresh seeds (from 1000 up, never used "
                                       "by the search), or a list of seeds the search did not use")
        baselines: list[str] = Field(["llama"], description="baselines compared (the first names the verdict)")
        top_k: int = Field(2, ge=0, description="search designs evaluated")
        rung: dict[str, Any] | None = Field(None, description="evaluate at this ladder rung (null: the proxy)")

        @field_validator("rung")
        @classmethod
        def _known_preset(cls, rung):
            check_presets([rung] if rung else None)
            return rung

    def run(self, campaign: Any) -> dict[str, Any]:
        seeds = tuple(hidden_seeds(self.options.seeds, search_seeds(campaign)))
        baselines = list(self.options.baselines)
        designs = promoted(campaign, self.options.top_k, baselines)
        rung = self.options.rung
        opts = rung_options(rung) if rung else None
        fidelity = 1.0 if rung else search_fidelity(campaign)  # the proxy, or the finalists' budget
        cands = [Candidate(kind="spec", content=at_rung(d["candidate"].content, rung or {})) for d in designs]
        nodes = campaign.evaluate(cands, phase="hidden", split="hidden", seeds=seeds,
                                  evaluator_options=opts, agent="hidden", fidelity=fidelity)
        obj = campaign.objective.name
        rows = []
        for i, d in enumerate(designs):
            mine = nodes[i * len(seeds):(i + 1) * len(seeds)]
            vals = [n.metrics[obj].value for n in mine if n.status == NodeStatus.DONE and obj in n.metrics]
            rows.append({"label": d["label"], "kind": d["kind"], "baseline": d.get("baseline"),
                         "hash": d["hash"], "pattern": pattern(d["candidate"].content),
                         "nodes": [n.id for n in mine], "failed": sum(n.status != NodeStatus.DONE for n in mine),
                         **seed_stats(vals)})
        return {"seeds": list(seeds), "rung": rung, "fidelity": fidelity, "metric": obj, "designs": rows,
                **verdict(rows, baselines[0] if baselines else None)}


def verdict(rows: list[dict[str, Any]], baseline: str | None) -> dict[str, Any]:
    """Does the best searched design beat ``baseline`` by more than the seed spread?"""
    searched = [r for r in rows if r["kind"] != "baseline" and r["mean"] is not None and not r.get("baseline")]
    base = next((r for r in rows if r.get("baseline") == baseline), None)
    if not searched or base is None or base["mean"] is None:
        return {"beats_baseline": None, "verdict": "no comparison: the best design or the baseline has no "
                                                    "valid hidden result"}
    best = min(searched, key=lambda r: r["mean"])
    margin = base["mean"] - best["mean"]
    spread = best["std"] + base["std"]
    beats = margin > spread and best["n"] > 1 and base["n"] > 1
    p = None
    if best["n"] > 1 and base["n"] > 1 and (best["std"] or base["std"]):
        from scipy import stats

        p = float(stats.ttest_ind(best["values"], base["values"], equal_var=False).pvalue)
    text = (f"{best['label']} ({best['pattern']}) {'beats' if beats else 'does not beat'} the {baseline} baseline "
            f"on the hidden split: mean {best['mean']:.4f} vs {base['mean']:.4f} over {best['n']} seeds, "
            f"margin {margin:+.4f} against a seed spread of {spread:.4f} (sum of the two standard deviations)")
    return {"best": best["label"], "baseline": baseline, "margin": margin, "spread": spread,
            "welch_p": p, "beats_baseline": bool(beats), "verdict": text}


PHASES = {"aggregation": Aggregation, "scaling": Scaling, "hidden": HiddenEvaluation}


def make_phases(domain: Any, options: dict[str, Any]) -> list[Phase]:
    """The phases in order; ``options[name]`` is each one's mapping, ``false`` skips it."""
    unknown = sorted(set(options) - set(PHASES))
    if unknown:
        raise ValueError(f"compose phases: unknown phase {unknown[0]!r} (phases: {', '.join(PHASES)})")
    out = []
    for name, cls in PHASES.items():
        opts = options.get(name, {})
        if opts is False:
            continue
        out.append(cls(**(opts or {})))
    return out
