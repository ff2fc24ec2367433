"""The compose pack's phases: the references check before search; after it aggregation,
scaling steps, hidden evaluation.

Every evaluation goes through :meth:`Campaign.evaluate` (deterministic node ids, finished
nodes reused), and every choice is a pure function of stored nodes, so a campaign killed
inside a phase resumes it and repeats nothing that finished.

Config (the campaign's ``phases`` mapping; a phase set to ``false`` is skipped):

  references: {baselines: null}
    Before search: the named baselines (null: the family's references, those the search
    starts from: llama and composer; with family hybrid also nemotron and jamba) trained at the proxy and scored
    on val beside the count-based floors (:mod:`cambrian.scaling.floors`). If any is not
    below the bigram floor, the campaign says so in one line (console, ``cambrian show``,
    report) before the search spends its budget: such a proxy ranks learning speed, not
    architecture.

  aggregation: {top: 6, radius: null}
    The ``top`` distinct designs of the search (by the objective) form the pool; the
    cluster is the designs within ``radius`` layer differences (default: half the proxy
    depth) of the best; a per-layer majority vote over the cluster (ties to the better
    design) gives the aggregate design, evaluated like a search candidate.
  scaling: {top_k: 3, baselines: null, ladder: [...], level: 0.95}
    Promotes the ``top_k`` designs (search and aggregate, deduplicated by canonical hash)
    and the baselines (null: all of them) through the ladder. A rung is {name, d_model, depth
    (a factor of the design's own depth) or n_layers, mode (stack | stretch), and training
    keys (train_tokens, device, checkpoint_every, ...)}, or names a ladder scale ({name,
    preset: 125m, ...}: that scale's dims, batch, lr, GPU and a Chinchilla budget;
    docs/scaling.md); the first rung is the proxy itself, whose search results are reused; every rung's spec comes from :func:`cambrian.scaling.ladder.at_rung`. Per design,
    one point per rung (training FLOPs, val bpb) is fitted as L = a * C^-b only where the data
    resolve it (:func:`cambrian.scaling.ladder.fit_scaling`: >= 3 rungs below the unigram
    floor spanning >= 10x compute), and "scales X% faster" compares b with the Llama-style
    baseline's only when both are resolved; otherwise the summary says "not resolved" and
    why. Rank agreement: Spearman and Kendall (exact p) between the proxy's and the largest
    rung's ranking of the promoted designs, resolved from 6 designs.
  hidden: {top_k: 2, seeds: 5, baselines: null, rung: null}
    The ``top_k`` designs the search found (the leaderboard's: mean over seeds at the highest
    fidelity; a hand-built reference leading the search is compared as a baseline) and
    the baselines (null: every baseline of the domain), each trained with every seed and
    scored on the hidden split, at the proxy's budget (fidelity 1, or the search's highest
    where finalists went beyond it), or at ``rung``. ``seeds`` is a count of fresh seeds
    (from 1000 up, skipping every seed the search used), or a list that must not reuse one.
    :func:`cambrian.scaling.verdict.verdict` compares the best design with every baseline
    and names the strongest one (Welch t-test and margin > sum of sds).
"""

from __future__ import annotations

import random
import sys
from typing import Any

from pydantic import Field, field_validator

from cambrian import Candidate, Node, NodeStatus, Options, Phase, PhaseEvaluations, standings
from cambrian.architectures import ArchSpec, count
from cambrian.plugins.domains.compose.evaluator import TRAINING_KEYS
from cambrian.scaling.floors import below
from cambrian.scaling.ladder import (
    MIN_RANKED,
    at_rung,
    compare_fits,
    fit_scaling,
    get_scale,
    layer_distance,
    majority_vote,
    rank_agreement,
    rung_at_scale,
)
from cambrian.scaling.verdict import Row, hidden_seeds, verdict

DEFAULT_LADDER = [{"name": "proxy"},
                  {"name": "x1.5", "d_model": 80, "depth": 1.5, "mode": "stack", "train_tokens": 300_000}]


def pattern(content: dict[str, Any]) -> str:
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


def floor_line(rows: list[dict[str, Any]]) -> str | None:
    """The one-line warning when a reference is not below the bigram floor (None when all are)."""
    above = [r for r in rows if r.get("below_bigram") is False]
    if not above:
        return None
    what = ", ".join(f"{r['name']} {r['bpb']:.3f}" for r in above)
    return (f"WARNING: proxy too small: {what} not below the bigram floor "
            f"({above[0]['floor_bigram_bpb']:.3f} bpb on val); the search ranks learning speed, not "
            "architecture (a longer proxy: raise train_tokens)")


class References(Phase):
    """Before search: do the hand-built references beat the count-based floors at the proxy?"""

    name = "references"
    before_search = True

    class Options(Options):
        baselines: list[str] | None = Field(None, description="references trained at the proxy (null: the "
                                            "family's, those the search starts from)")

    def run(self, campaign: Any) -> dict[str, Any]:
        refs = campaign.domain.baselines()
        family = [c.meta.get("baseline") for c in campaign.domain.seeds(random.Random(0))]
        names = list(self.options.baselines or [n for n in family if n in refs] or refs)
        for name in names:
            if name not in refs:
                raise ValueError(f"unknown baseline {name!r} (known: {', '.join(refs)})")
        nodes = campaign.evaluate([refs[n] for n in names], phase="references", split="val",
                                  seeds=(campaign.config.seed,), agent="references")
        value = lambda n, k: n.metrics[k].value if k in n.metrics else None
        rows = [{"name": name, "node": n.id, "status": n.status.value, "error": n.error,
                 "bpb": value(n, "bpb"), "floor_unigram_bpb": value(n, "floor_unigram_bpb"),
                 "floor_bigram_bpb": value(n, "floor_bigram_bpb"),
                 "below_unigram": below(value(n, "bpb"), value(n, "floor_unigram_bpb")),
                 "below_bigram": below(value(n, "bpb"), value(n, "floor_bigram_bpb"))}
                for name, n in zip(names, nodes)]
        scored = [r for r in rows if r["floor_bigram_bpb"] is not None]
        floors = ({"split": "val", "unigram_bpb": scored[0]["floor_unigram_bpb"],
                   "bigram_bpb": scored[0]["floor_bigram_bpb"]} if scored else None)
        warning = floor_line(rows)
        if warning:
            print(warning, file=sys.stderr, flush=True)  # before the search spends its budget
            campaign.open_store().log_event("floor_warning", message=warning)
        return {"references": rows, "floors": floors, "warning": warning,
                "all_below_bigram": all(r["below_bigram"] for r in rows) if rows else None}


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
    for rung in rungs or ():
        if rung.get("preset"):
            get_scale(rung["preset"])  # ValueError: unknown scale 'x'; known: ...
    return rungs


def expand_rung(rung: dict[str, Any]) -> dict[str, Any]:
    """A rung naming a ladder scale (``preset: 125m``) with that scale's dims, budget and device
    (:func:`cambrian.scaling.ladder.rung_at_scale`); other rungs as they are."""
    return rung_at_scale(rung) if rung.get("preset") else rung


def rung_spec(content: dict[str, Any], rung: dict[str, Any]) -> dict[str, Any]:
    """The design's spec at a ladder rung (``d_model``, ``n_layers`` or a ``depth`` factor, ``mode``,
    ``seq_len``; or a ``preset`` scale's): :func:`cambrian.scaling.ladder.at_rung`, the one
    rescaling rule."""
    rung = expand_rung(rung)
    return at_rung(content, d_model=rung.get("d_model"), depth=float(rung.get("depth") or 1.0),
                   n_layers=rung.get("n_layers"), mode=rung.get("mode", "stack"), seq_len=rung.get("seq_len"))


def rung_options(rung: dict[str, Any]) -> dict[str, Any]:
    rung = expand_rung(rung)
    return {**{k: rung[k] for k in TRAINING_KEYS if k in rung}, "scale": rung["name"]}


def promoted(campaign: Any, top_k: int, baselines: list[str], found_only: bool = False,
             size_matched: bool = False) -> list[dict[str, Any]]:
    """The designs a phase carries forward: the best ``top_k`` and the named baselines.

    With ``found_only``, the best ``top_k`` are the search's own designs: a hand-built
    reference that leads the search (it was evaluated there like any candidate) is compared
    as a baseline, not as a find, so the verdict always asks whether a discovery beats it.
    With ``size_matched``, each named baseline is also rebuilt at the depth of every find
    deeper or shallower than the proxy (label ``name@<layers>``): a find that wins only by
    its extra layers then meets a hand-built design as deep."""
    refs = campaign.domain.baselines()
    ref_hashes = {c.hash for c in refs.values()}
    if size_matched:  # a reference rebuilt at another depth is no more a find than at the proxy's
        lo, hi = int(campaign.domain.s["min_layers"]), int(campaign.domain.s["max_layers"])
        ref_hashes |= {c.hash for depth in range(lo, hi + 1) for c in campaign.domain.baselines(n_layers=depth).values()}
    pool = [n for n in search_pool(campaign) if not (found_only and n.candidate.hash in ref_hashes)]
    designs = [{"label": f"#{i + 1} {n.id}", "kind": n.phase, "hash": n.candidate.hash,
                "candidate": n.candidate, "proxy_node": n}
               for i, n in enumerate(pool[:top_k])]
    entries = [(name, name, refs.get(name)) for name in baselines]
    if size_matched:
        proxy_depth = int(campaign.domain.s["n_layers"])
        depths = sorted({len(d["candidate"].content["layers"]) for d in designs} - {proxy_depth})
        entries += [(f"{name}@{depth}", name, campaign.domain.baselines(n_layers=depth)[name])
                    for depth in depths for name in baselines if name in refs]
    for label, name, cand in entries:
        if cand is None:
            raise ValueError(f"unknown baseline {name!r} (known: {', '.join(refs)})")
        same = next((d for d in designs if d["hash"] == cand.hash), None)
        if same is not None:  # a search design equal to the baseline: one entry, both labels
            if same["kind"] != "baseline":  # (a baseline equal to one listed already: no second row)
                same["label"] += f" = {label}"
                same["baseline"] = label
            continue
        designs.append({"label": label, "kind": "baseline", "baseline": label, "hash": cand.hash,
                        "candidate": cand, "proxy_node": None})
    return designs


def _metric(n: Node, key: str) -> float | None:
    return n.metrics[key].value if key in n.metrics else None


class Scaling(Phase):
    name = "scaling"

    class Options(Options):
        ladder: list[dict[str, Any]] | None = Field(None, min_length=1, description="rungs: {name, d_model, "
                                                    "depth or n_layers, mode, training keys} or {name, preset: "
                                                    "a ladder scale, ...} (null: proxy and x1.5)")
        level: float = Field(0.95, gt=0, lt=1, description="confidence level of the fits")
        top_k: int = Field(3, ge=0, description="search designs promoted")
        baselines: list[str] | None = Field(None, description="baselines promoted with them (null: all)")

        @field_validator("ladder")
        @classmethod
        def _known_presets(cls, ladder):
            return check_presets(ladder)

    def estimate(self, campaign: Any) -> dict[str, Any]:
        """Evaluations, largest model, training tokens and FLOPs of the ladder; time scaled
        from the search's measured seconds per training FLOP."""
        ladder = self.options.ladder or DEFAULT_LADDER
        designs = promoted(campaign, self.options.top_k, list(self.options.baselines))
        proxy_tokens = int(campaign.domain.s["train_tokens"])
        evaluations, params, tokens, flops = 0, 0, 0, 0.0
        for r, rung in enumerate(ladder):
            for d in designs:
                if r == 0 and d["proxy_node"] is not None:
                    continue  # the search already trained it at the proxy
                c = count(ArchSpec.from_dict(rung_spec(d["candidate"].content, rung)))
                t = int(expand_rung(rung).get("train_tokens", proxy_tokens))
                evaluations, params, tokens = evaluations + 1, max(params, c.params), tokens + t
                flops += c.training_flops_per_token * t
        done = [n.cost for n in campaign.nodes.values() if n.status.finished and n.cost.flops > 0]
        out: dict[str, Any] = {"evaluations": evaluations, "params": params, "tokens": tokens, "flops": flops}
        if done:
            s_per_flop = sum(c.wall_s for c in done) / sum(c.flops for c in done)
            out["est_s"] = round(flops * s_per_flop / max(1, campaign.executor.workers), 1)
        return out

    def run(self, campaign: Any) -> dict[str, Any]:
        ladder = self.options.ladder or DEFAULT_LADDER
        level = self.options.level
        refs = list(campaign.domain.baselines())
        designs = promoted(campaign, self.options.top_k, list(self.options.baselines or refs))
        if not designs:
            return {"skipped": "nothing to promote"}
        seed = campaign.config.seed
        for d in designs:
            d["rungs"] = {}
        for r, rung in enumerate(ladder):
            todo = [d for d in designs if not (r == 0 and d["proxy_node"] is not None)]
            cands = [Candidate(kind="spec", content=rung_spec(d["candidate"].content, rung)) for d in todo]
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
        summary_designs, fits = [], {}
        for d in designs:
            done = [n for n in d["rungs"].values() if n.status == NodeStatus.DONE]
            # one point per rung: (training FLOPs, val bpb, that rung's unigram floor)
            points = [(_metric(n, "train_flops"), _metric(n, "bpb"), _metric(n, "floor_unigram_bpb"))
                      for n in done if _metric(n, "train_flops") and _metric(n, "bpb") is not None]
            fits[d["label"]] = fit = fit_scaling(d["label"], points, level=level)
            summary_designs.append({
                "label": d["label"], "kind": d["kind"], "baseline": d.get("baseline"), "hash": d["hash"],
                "pattern": pattern(d["candidate"].content),
                "rungs": {name: {"node": n.id, "status": n.status.value, "error": n.error,
                                 "score": _metric(n, obj), "bpb": _metric(n, "bpb"),
                                 "floor_unigram_bpb": _metric(n, "floor_unigram_bpb"),
                                 "floor_bigram_bpb": _metric(n, "floor_bigram_bpb"),
                                 "params": _metric(n, "params"), "train_flops": _metric(n, "train_flops"),
                                 "pattern": pattern(n.candidate.content)}
                          for name, n in d["rungs"].items()},
                "fit": fit.summary() if fit.resolved else None, "claim": fit.summary(),
            })
        ref = next((d["label"] for d in designs if d.get("baseline") == "llama"), None)
        for sd in summary_designs:
            if ref is not None and sd["label"] != ref:
                cmp = compare_fits(fits[sd["label"]], fits[ref])
                if cmp["resolved"]:
                    sd["vs_llama"] = cmp
                else:
                    sd["vs_llama_note"] = cmp["text"]
        first, last = ladder[0]["name"], ladder[-1]["name"]
        both = [sd for sd in summary_designs if all(sd["rungs"].get(x, {}).get("score") is not None
                                                     for x in (first, last))]
        if len(both) >= 2 and first != last:
            ra = rank_agreement({sd["label"]: sd["rungs"][first]["score"] for sd in both},
                                {sd["label"]: sd["rungs"][last]["score"] for sd in both}).summary()
        else:
            ra = {"n": len(both), "resolved": False, "spearman": None, "kendall": None,
                  "note": f"not resolved: {len(both)} designs at both rungs (needs >= {MIN_RANKED})"}
        ra.update({"from": first, "to": last, "designs": [sd["label"] for sd in both]})
        resolved = sum(f.resolved for f in fits.values())
        return {"ladder": ladder, "reference": ref, "designs": summary_designs, "rank_agreement": ra,
                "fit_note": (f"per design: L = a * C^-b over the rungs' (training FLOPs, val bpb), fitted only "
                             f"where >= 3 rungs below the unigram floor span >= 10x compute ({resolved} of "
                             f"{len(fits)} resolved); otherwise not resolved")}


# -- hidden evaluation ------------------------------------------------------------------------


def split_floors(nodes: list[Node], split: str) -> dict[str, Any] | None:
    """The count-based floors recorded with the nodes' scores (the same for every node of a split)."""
    for n in nodes:
        if "floor_bigram_bpb" in n.metrics:
            return {"split": split, "unigram_bpb": n.metrics["floor_unigram_bpb"].value,
                    "bigram_bpb": n.metrics["floor_bigram_bpb"].value}
    return None


class HiddenEvaluation(Phase):
    name = "hidden"

    class Options(Options):
        seeds: int | list[int] = Field(5, description="a count of fresh seeds (from 1000 up, never used "
                                       "by the search), or a list of seeds the search did not use")
        baselines: list[str] | None = Field(None, description="baselines compared (null: all of the domain's; "
                                            "[]: none, e.g. when they are scored elsewhere)")
        top_k: int = Field(2, ge=0, description="search designs evaluated")
        rung: dict[str, Any] | None = Field(None, description="evaluate at this ladder rung (null: the proxy)")
        val_tokens: int | None = Field(None, ge=1, description="tokens scored on the hidden split (null: the "
                                       "domain's val_tokens): the verdict can score more than the search does")
        size_matched: bool = Field(False, description="also rebuild each baseline at the depth of a find "
                                   "deeper or shallower than the proxy (name@<layers>): a win by extra "
                                   "layers then meets a hand-built design as deep")

        @field_validator("rung")
        @classmethod
        def _known_preset(cls, rung):
            check_presets([rung] if rung else None)
            return rung

    def _request(self, campaign: Any, candidates: list[Candidate]) -> PhaseEvaluations:
        """The evaluations of these designs: fresh seeds, at the proxy (or the rung) on the hidden split."""
        rung = self.options.rung
        opts = rung_options(rung) if rung else None
        if self.options.val_tokens is not None:
            opts = {**(opts or {}), "val_tokens": self.options.val_tokens}
        return PhaseEvaluations(
            candidates=tuple(Candidate(kind="spec", content=rung_spec(c.content, rung or {})) for c in candidates),
            phase="hidden", split="hidden", seeds=tuple(hidden_seeds(self.options.seeds, search_seeds(campaign))),
            evaluator_options=opts, agent="hidden",
            fidelity=1.0 if rung else search_fidelity(campaign))  # the proxy, or the finalists' budget

    def _baselines(self, campaign: Any) -> list[str]:
        return list(campaign.domain.baselines() if self.options.baselines is None else self.options.baselines)

    def ahead(self, campaign: Any) -> list[PhaseEvaluations]:
        """The baselines' hidden seeds: the same whatever the search finds (run in its idle time)."""
        refs = campaign.domain.baselines()
        return [self._request(campaign, [refs[n] for n in self._baselines(campaign) if n in refs])]

    def _designs(self, campaign: Any) -> list[dict[str, Any]]:
        return promoted(campaign, self.options.top_k, self._baselines(campaign), found_only=True,
                        size_matched=self.options.size_matched)

    def planned(self, campaign: Any) -> list[PhaseEvaluations]:
        """The best designs' hidden seeds as the search stands, and the baselines'."""
        return [self._request(campaign, [d["candidate"] for d in self._designs(campaign)])]

    def run(self, campaign: Any) -> dict[str, Any]:
        designs = self._designs(campaign)
        want = self._request(campaign, [d["candidate"] for d in designs])
        seeds, rung, fidelity = want.seeds, self.options.rung, want.fidelity
        nodes = campaign.evaluate(list(want.candidates), phase=want.phase, split=want.split, seeds=seeds,
                                  evaluator_options=want.evaluator_options, agent=want.agent, fidelity=fidelity)
        obj = campaign.objective.name
        rows, searched, base_rows = [], [], []
        for i, d in enumerate(designs):
            mine = nodes[i * len(seeds):(i + 1) * len(seeds)]
            done = [n for n in mine if n.status == NodeStatus.DONE and obj in n.metrics]
            row = Row(name=d["label"], values=[n.metrics[obj].value for n in done],
                      params=done[0].metrics["params"].value if done and "params" in done[0].metrics else None,
                      baseline=bool(d.get("baseline")))
            (base_rows if d.get("baseline") else searched).append(row)
            rows.append({"label": d["label"], "kind": d["kind"], "baseline": d.get("baseline"),
                         "hash": d["hash"], "pattern": pattern(d["candidate"].content),
                         "nodes": [n.id for n in mine], "failed": len(mine) - len(done),
                         "errors": [n.error for n in mine if n.error][:3],
                         # "baseline" stays the baseline's name (or None), not the row's flag
                         **{k: v for k, v in row.summary().items() if k not in ("name", "baseline")},
                         "std": row.sd, "n": row.seeds})
        v = verdict(searched, base_rows, direction=campaign.objective.direction.value, metric=obj)
        return {"seeds": list(seeds), "rung": rung, "fidelity": fidelity, "metric": obj, "designs": rows,
                "floors": split_floors(nodes, "hidden"), "best": v.best,
                "strongest_baseline": v.strongest_baseline, "beats_all_baselines": v.beats_all_baselines,
                "beats_baseline": v.beats_all_baselines,  # the figure's and older readers' key
                "comparisons": [c.model_dump() for c in v.comparisons], "alpha": v.alpha,
                "verdict": v.text}  # the verdict sentence carries the strongest baseline's Welch p


PHASES = {"references": References, "aggregation": Aggregation, "scaling": Scaling, "hidden": HiddenEvaluation}


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
