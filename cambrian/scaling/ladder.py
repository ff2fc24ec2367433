"""The scaling ladder: named scales, spec rescaling, promotion, aggregation, rank agreement.

Everything here works on spec dicts (or ArchSpecs), so a domain pack can call
it between its own evaluations:

- :data:`SCALES`: CPU proxies (about 0.1M / 0.5M / 2M parameters for a
  Llama-style pattern) and GPU scales (125M, 350M, 1B, 3B) as dims and a token budget;
- :func:`at_scale`: a proxy spec at a named scale: width from the scale,
  dimension-derived options re-derived (head size kept), depth grown to the
  scale's layer count by :func:`stack` (repeat the pattern) or :func:`stretch`
  (repeat each layer in place);
- :func:`promote`: the top-k designs plus the baselines;
- :func:`majority_vote`: one spec from a cluster of top designs, layer by layer;
- :func:`rank_agreement`: Spearman and Kendall correlation of two scales' rankings;
- :func:`run_ladder` / :func:`analyse_ladder`: train specs x scales, fit loss
  against compute per spec, compare slopes with a baseline.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats

from cambrian.scaling.fits import PowerLawFit, SlopeComparison, compare_slopes, fit_power_law


@dataclass(frozen=True)
class Scale:
    """A rung of the ladder: width, depth in residual layers, context, batch and data budget."""

    name: str
    d_model: int
    n_layers: int  # residual layers (a mixer or an MLP each); the pattern is grown to about this
    seq_len: int
    batch_size: int
    lr: float
    train_tokens: int | None = None  # fixed budget; None: tokens_per_param x parameters (Chinchilla)
    tokens_per_param: float = 20.0
    device: Literal["cpu", "gpu"] = "cpu"


SCALES: dict[str, Scale] = {s.name: s for s in (
    Scale("cpu-0.1m", d_model=64, n_layers=4, seq_len=128, batch_size=16, lr=3e-3, train_tokens=400_000),
    Scale("cpu-0.5m", d_model=96, n_layers=8, seq_len=128, batch_size=16, lr=3e-3, train_tokens=800_000),
    Scale("cpu-2m", d_model=160, n_layers=12, seq_len=128, batch_size=16, lr=2e-3, train_tokens=1_600_000),
    # GPT-3 Small's dims (85M parameters with the byte vocabulary; 124M with GPT-2's); 32 x 1024
    # tokens a step fit one GPU without gradient accumulation
    Scale("125m", d_model=768, n_layers=24, seq_len=1024, batch_size=32, lr=6e-4, device="gpu"),
    Scale("350m", d_model=1024, n_layers=48, seq_len=2048, batch_size=256, lr=3e-4, device="gpu"),
    Scale("1b", d_model=2048, n_layers=32, seq_len=2048, batch_size=512, lr=3e-4, device="gpu"),
    Scale("3b", d_model=3072, n_layers=56, seq_len=2048, batch_size=512, lr=2e-4, device="gpu"),
)}


def get_scale(scale: str | Scale) -> Scale:
    if isinstance(scale, Scale):
        return scale
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")
    return SCALES[scale]


# ----------------------------------------------------------------------------- rescaling

def _as_dict(spec: Any) -> dict[str, Any]:
    return json.loads(json.dumps(spec.to_dict() if hasattr(spec, "to_dict") else spec))


def stack(layers: Sequence[Any], times: int) -> list[Any]:
    """Repeat the whole pattern: [a, b] x 2 -> [a, b, a, b]."""
    return [json.loads(json.dumps(layer)) for _ in range(times) for layer in layers]


def stretch(layers: Sequence[Any], times: int) -> list[Any]:
    """Repeat each layer in place: [a, b] x 2 -> [a, a, b, b]."""
    return [json.loads(json.dumps(layer)) for layer in layers for _ in range(times)]


def grow(spec: Any, n_layers: int, mode: Literal["stack", "stretch"] = "stack") -> dict[str, Any]:
    """The spec with its layer pattern repeated to about ``n_layers`` layers (never fewer than it has)."""
    d = _as_dict(spec)
    times = max(1, round(n_layers / len(d["layers"])))
    d["layers"] = (stack if mode == "stack" else stretch)(d["layers"], times)
    return d


def _free_derived_options(d: dict[str, Any]) -> dict[str, Any]:
    """Drop layer options that merely restate a default derived from the dims (so they re-derive)."""
    from cambrian.architectures import ArchSpec, get_primitive

    glob = {k: v for k, v in d.items() if k != "layers"}
    out = []
    for layer in d["layers"]:
        opts = dict(layer.get("options", {}))
        derived = [o.name for o in get_primitive(layer["primitive"]).options if o.default is None]
        for name in derived:
            if name not in opts or opts[name] is None:
                opts.pop(name, None)
                continue
            trial = {k: v for k, v in opts.items() if k != name}
            resolved = ArchSpec.from_dict({**glob, "layers": [{"primitive": layer["primitive"], "options": trial}]})
            if resolved.layers[0].options.get(name) == opts[name]:
                opts = trial
        out.append({"primitive": layer["primitive"], "options": opts})
    return {**d, "layers": out}


def _rescale_heads(opts: dict[str, Any], old_d: int, new_d: int) -> dict[str, Any]:
    """Keep the head size when the width changes (the usual practice), and the GQA group size."""
    if "n_heads" not in opts:
        return opts
    heads = max(1, round(opts["n_heads"] * new_d / old_d))
    while new_d % heads:
        heads -= 1
    out = {**opts, "n_heads": heads}
    kv = opts.get("n_kv_heads")
    if kv and kv != opts["n_heads"]:
        group = max(1, opts["n_heads"] // kv)
        out["n_kv_heads"] = max(1, heads // group)
        while heads % out["n_kv_heads"]:
            out["n_kv_heads"] -= 1
    elif kv:
        out["n_kv_heads"] = heads
    return out


def at_scale(spec: Any, scale: str | Scale, mode: Literal["stack", "stretch"] = "stack",
             vocab_size: int | None = None) -> dict[str, Any]:
    """``spec`` (a short proxy) rebuilt at ``scale``: width, derived options and depth."""
    from cambrian.architectures import ArchSpec

    s = get_scale(scale)
    d = _free_derived_options(_as_dict(spec))
    old_d = d["d_model"]
    d["layers"] = [{"primitive": layer["primitive"], "options": _rescale_heads(layer["options"], old_d, s.d_model)}
                   for layer in d["layers"]]
    d.update(d_model=s.d_model, max_seq_len=max(s.seq_len, d.get("max_seq_len", 0)))
    if vocab_size is not None:
        d["vocab_size"] = vocab_size
    d = grow(d, s.n_layers, mode)
    return ArchSpec.from_dict(d).to_dict()  # validated, defaults filled at the new dims


def scale_budget(spec: Any, scale: str | Scale) -> tuple[int, float]:
    """(training tokens, training FLOPs) of ``spec`` already at ``scale``."""
    from cambrian.architectures import ArchSpec, count

    s = get_scale(scale)
    c = count(ArchSpec.from_dict(_as_dict(spec)), seq_len=s.seq_len)
    tokens = s.train_tokens or int(s.tokens_per_param * c.params)
    return tokens, 3.0 * c.flops_per_token * tokens


def rung_at_scale(rung: Mapping[str, Any], vocab_size: int = 256) -> dict[str, Any]:
    """A campaign's ladder rung that names a scale (``{"name", "preset": "125m", ...}``) with the
    scale's keys filled in: d_model, n_layers, seq_len, batch_size, lr, device (``cuda`` for a
    GPU scale) and train_tokens. The budget is the scale's fixed one, else ``tokens_per_param``
    (the rung's, else the scale's) x the parameters of the Llama reference at that scale: one
    budget for every design of the rung, so they compare at equal data. The rung's own keys win.
    """
    from cambrian.architectures import ArchSpec, count, reference_spec

    s = get_scale(rung["preset"])
    out: dict[str, Any] = {"d_model": s.d_model, "n_layers": s.n_layers, "seq_len": s.seq_len,
                           "batch_size": s.batch_size, "lr": s.lr, "device": "cuda" if s.device == "gpu" else "cpu"}
    if "train_tokens" not in rung:
        llama = at_scale(reference_spec("llama", d_model=64, n_layers=1, vocab_size=vocab_size,
                                        max_seq_len=s.seq_len), s)
        ratio = float(rung.get("tokens_per_param", s.tokens_per_param))
        out["train_tokens"] = s.train_tokens or int(ratio * count(ArchSpec.from_dict(llama), seq_len=s.seq_len).params)
    return {**out, **{k: v for k, v in rung.items() if k not in ("preset", "tokens_per_param")}}


# ----------------------------------------------------------------------------- selection and aggregation

def promote(scores: Mapping[str, float], k: int, baselines: Sequence[str] = (),
            direction: Literal["min", "max"] = "min") -> list[str]:
    """The ``k`` best names (ties by name), then the baselines not already among them."""
    finite = {n: v for n, v in scores.items() if v is not None and math.isfinite(v)}
    sign = 1 if direction == "min" else -1
    top = sorted(finite, key=lambda n: (sign * finite[n], n))[:k]
    return top + [b for b in baselines if b not in top]


def _layer_key(layer: Mapping[str, Any]) -> str:
    return json.dumps({"primitive": layer["primitive"], "options": layer.get("options", {})}, sort_keys=True)


def majority_vote(specs: Sequence[Any]) -> dict[str, Any]:
    """One spec from a cluster of designs, best first: per layer position, the most common layer.

    Depth is the most common depth; at each position the most common
    primitive wins, then the most common options among layers of that
    primitive. Ties go to the better-ranked design. Global fields come from
    the best design.
    """
    if not specs:
        raise ValueError("majority_vote needs at least one spec")
    ds = [_as_dict(s) for s in specs]
    depths = Counter(len(d["layers"]) for d in ds)
    depth = max(depths, key=lambda n: (depths[n], -[len(d["layers"]) for d in ds].index(n)))
    layers = []
    for i in range(depth):
        at = [d["layers"][i] for d in ds if len(d["layers"]) > i]
        prims = Counter(layer["primitive"] for layer in at)
        prim = max(prims, key=lambda p: (prims[p], -[x["primitive"] for x in at].index(p)))
        same = [layer for layer in at if layer["primitive"] == prim]
        keys = Counter(_layer_key(layer) for layer in same)
        best = max(keys, key=lambda k: (keys[k], -[_layer_key(x) for x in same].index(k)))
        layers.append(json.loads(best))
    return {**ds[0], "layers": layers}


def layer_distance(a: Any, b: Any) -> int:
    """Positions whose primitive differs, plus the difference in depth."""
    la, lb = _as_dict(a)["layers"], _as_dict(b)["layers"]
    return sum(x["primitive"] != y["primitive"] for x, y in zip(la, lb)) + abs(len(la) - len(lb))


def cluster_of_best(specs: Sequence[Any], max_distance: int) -> list[dict[str, Any]]:
    """The designs (best first) within ``max_distance`` of the best one: the cluster to vote over."""
    ds = [_as_dict(s) for s in specs]
    return [d for d in ds if layer_distance(ds[0], d) <= max_distance]


@dataclass(frozen=True)
class RankAgreement:
    n: int
    spearman: float
    spearman_p: float
    kendall: float
    kendall_p: float


def rank_agreement(a: Mapping[str, float], b: Mapping[str, float]) -> RankAgreement:
    """How well two scales rank the same designs (on the names both scored)."""
    names = sorted(set(a) & set(b))
    if len(names) < 2:
        raise ValueError("rank agreement needs at least two designs scored at both scales")
    x, y = [a[n] for n in names], [b[n] for n in names]
    sp, kt = stats.spearmanr(x, y), stats.kendalltau(x, y)
    sp_p = _exact_spearman_p(x, y, float(sp.statistic)) if len(names) <= 8 else float(sp.pvalue)
    return RankAgreement(n=len(names), spearman=float(sp.statistic), spearman_p=sp_p,
                         kendall=float(kt.statistic), kendall_p=float(kt.pvalue))


def _exact_spearman_p(x: Sequence[float], y: Sequence[float], rho: float) -> float:
    """Two-sided p of Spearman's rho over every pairing of the ranks (exact, for small n).

    scipy's t approximation gives p = 0 for a perfect ranking of 4 designs; the exact
    answer is 2/24: promoted-design counts are that small.
    """
    if not math.isfinite(rho):
        return math.nan
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx = rx - rx.mean()
    perms = np.array(list(itertools.permutations(ry)))
    perms -= perms.mean(axis=1, keepdims=True)
    rhos = perms @ rx / (np.linalg.norm(perms, axis=1) * np.linalg.norm(rx))
    return float(np.mean(np.abs(rhos) >= abs(rho) - 1e-9))


# ----------------------------------------------------------------------------- running a ladder

@dataclass(frozen=True)
class Rung:
    spec_name: str
    scale: str
    params: float
    flops: float  # training FLOPs
    loss: float  # the evaluated metric (val bits per byte for the LM ladder)
    wall_s: float


@dataclass
class LadderResult:
    rungs: list[Rung]
    fits: dict[str, PowerLawFit] = field(default_factory=dict)
    vs_baseline: dict[str, SlopeComparison] = field(default_factory=dict)
    agreement: dict[tuple[str, str], RankAgreement] = field(default_factory=dict)

    def scores(self, scale: str) -> dict[str, float]:
        return {r.spec_name: r.loss for r in self.rungs if r.scale == scale}


def run_ladder(specs: Mapping[str, Any], scales: Sequence[str | Scale],
               train_fn: Callable[[dict[str, Any], Scale], tuple[float, float]],
               mode: Literal["stack", "stretch"] = "stack",
               on_rung: Callable[[Rung], None] | None = None) -> list[Rung]:
    """Train every spec at every scale; ``train_fn(spec_at_scale, scale) -> (loss, train_flops)``."""
    from cambrian.architectures import ArchSpec, count

    rungs = []
    for scale in map(get_scale, scales):
        for name, spec in specs.items():
            big = at_scale(spec, scale, mode)
            t0 = time.perf_counter()
            loss, flops = train_fn(big, scale)
            params = float(count(ArchSpec.from_dict(big)).params)
            rungs.append(Rung(name, scale.name, params, flops, loss, time.perf_counter() - t0))
            if on_rung is not None:
                on_rung(rungs[-1])
    return rungs


def lm_train_fn(corpus: Any, seed: int = 0, eval_tokens: int = 32768,
                threads: int | None = None) -> Callable[[dict[str, Any], Scale], tuple[float, float]]:
    """A ``train_fn`` for :func:`run_ladder`: train on ``corpus`` for the scale's budget, score val bpb."""
    from cambrian.scaling.runs import train_lm
    from cambrian.scaling.trainer import TrainConfig

    def fn(spec: dict[str, Any], scale: Scale) -> tuple[float, float]:
        tokens, _ = scale_budget(spec, scale)
        steps = max(1, tokens // (scale.batch_size * scale.seq_len))
        config = TrainConfig(lr=scale.lr, max_tokens=tokens, warmup_steps=max(1, min(20, steps // 5)),
                             threads=threads)
        run = train_lm(spec, corpus, config, batch_size=scale.batch_size, seq_len=scale.seq_len, seed=seed,
                       eval_tokens=eval_tokens)
        return run.metrics["bpb"], run.metrics["flops"]

    return fn


def analyse_ladder(rungs: Sequence[Rung], baseline: str | None = None, n_boot: int = 1000,
                   seed: int = 0) -> LadderResult:
    """Fit loss = a * C^-b per spec, compare each slope with the baseline's, rank agreement per scale pair."""
    result = LadderResult(rungs=list(rungs))
    names = list(dict.fromkeys(r.spec_name for r in rungs))
    scales = list(dict.fromkeys(r.scale for r in rungs))
    for name in names:
        mine = [r for r in rungs if r.spec_name == name and math.isfinite(r.loss)]
        if len({r.flops for r in mine}) >= 2:
            result.fits[name] = fit_power_law([r.flops for r in mine], [r.loss for r in mine], n_boot=n_boot,
                                              seed=seed)
    if baseline is not None and baseline in result.fits:
        for name, fit in result.fits.items():
            if name != baseline:
                result.vs_baseline[name] = compare_slopes(fit, result.fits[baseline])
    for i, a in enumerate(scales):
        for b in scales[i + 1:]:
            try:
                result.agreement[(a, b)] = rank_agreement(result.scores(a), result.scores(b))
            except ValueError:
                continue
    return result


def extrapolate(fit: PowerLawFit, spec: Any, scale: str | Scale,
                mode: Literal["stack", "stretch"] = "stack") -> tuple[float, float, float, float]:
    """(compute, predicted loss, lo, hi) of ``spec`` grown to a named larger ``scale``."""
    _, flops = scale_budget(at_scale(spec, scale, mode), scale)
    return (flops, *fit.extrapolate(flops))
