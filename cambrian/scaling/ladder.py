"""The scaling ladder: named scales, spec rescaling, promotion, aggregation, rank agreement.

Everything here works on spec dicts (or ArchSpecs), so a domain pack can call
it between its own evaluations:

- :data:`SCALES`: CPU proxies (about 0.1M / 0.5M / 2M parameters for a
  Llama-style pattern) and GPU scales (125M, 350M, 1B, 3B) as dims and a token budget;
- :func:`at_rung`: the one rescaling rule: a spec at a new width (head size
  kept, width-derived options re-derived) and depth (the pattern stacked or
  stretched, :func:`resize`); :func:`at_scale` applies a named scale;
- :func:`promote`: the top-k designs plus the baselines;
- :func:`majority_vote`: one spec from a cluster of top designs, layer by layer;
- :func:`rank_agreement`: Spearman and Kendall correlation of two scales'
  rankings with exact p (resolved from :data:`MIN_RANKED` = 6 designs);
- :func:`fit_scaling` / :func:`compare_fits`: honest exponents: only rungs below
  the unigram floor, >= 3 of them spanning >= 10x compute, else "not resolved";
- :func:`run_ladder` / :func:`analyse_ladder`: train specs x scales (through the
  one train-and-score pipeline, :func:`cambrian.scaling.runs.train_lm`), fit,
  compare slopes with a baseline.

The compose pack's scaling and hidden phases call these; nothing else rescales a spec.
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

from cambrian.architectures import ArchSpec, count, get_primitive, reference_spec
from cambrian.architectures.spec import GLOBAL_OPTIONS
from cambrian.scaling.fits import PowerLawFit, compare_slopes, fit_power_law


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


Layer = dict[str, Any]  # {"primitive": name, "options": {...}}


def _draft(spec_dims: dict[str, Any]):
    dims = {o.name: spec_dims.get(o.name, o.default) for o in GLOBAL_OPTIONS}
    return ArchSpec(layers=(), **dims)


def minimal_layers(spec: dict[str, Any]) -> list[Layer]:
    """The layers of a canonical spec with every option removed that the primitive would derive
    (or default) on its own at this width: a canonical spec at d_model 64 carries ``head_dim: 16``
    for 4 heads; its minimal form drops it, so a new width re-derives it instead of freezing it.
    The spec operators work on this form too."""
    draft = _draft(spec)
    out = []
    for layer in spec["layers"]:
        prim = get_primitive(layer["primitive"])
        full = dict(layer.get("options") or {})
        given = dict(full)
        for key in list(given):
            trial = {k: v for k, v in given.items() if k != key}
            try:
                if prim.normalize(trial, draft, "") == prim.normalize(full, draft, ""):
                    given = trial
            except ValueError:
                continue
        out.append({"primitive": layer["primitive"], "options": given})
    return out


def resize(layers: Sequence[Layer], depth: int, mode: str = "stack") -> list[Layer]:
    """The pattern at ``depth`` layers: ``stack`` repeats the whole pattern (abc -> abcabc),
    ``stretch`` repeats each layer in place (abc -> aabbcc); cut to ``depth`` when not a multiple."""
    n = len(layers)
    copy = lambda layer: json.loads(json.dumps(layer))
    if mode == "stack":
        return [copy(layers[i % n]) for i in range(depth)]
    if mode == "stretch":
        return [copy(layers[min(n - 1, math.floor(j * n / depth))]) for j in range(depth)]
    raise ValueError(f"resize mode must be 'stack' or 'stretch', got {mode!r}")


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


def at_rung(spec: Any, *, d_model: int | None = None, depth: float = 1.0, n_layers: int | None = None,
            mode: Literal["stack", "stretch"] = "stack", seq_len: int | None = None,
            vocab_size: int | None = None) -> dict[str, Any]:
    """``spec`` rebuilt at a rung of the ladder: the one rescaling rule.

    Width ``d_model`` (head size kept: more heads, not wider ones; options derived from the
    width re-derived), depth ``n_layers`` or ``depth`` x the spec's own (the pattern stacked or
    stretched, :func:`resize`), context ``seq_len``. Unchanged dims give the spec back as is.
    """
    d = _as_dict(spec)
    old_d = int(d["d_model"])
    new_d = int(d_model or old_d)
    target = int(n_layers) if n_layers is not None else max(1, round(len(d["layers"]) * float(depth)))
    if new_d == old_d and target == len(d["layers"]) and seq_len is None and vocab_size is None:
        return d
    layers = minimal_layers(d)
    if new_d != old_d:
        for small, full in zip(layers, d["layers"]):
            heads = {k: full["options"][k] for k in ("n_heads", "n_kv_heads")
                     if full.get("options", {}).get(k) is not None}
            small["options"].update(_rescale_heads(heads, old_d, new_d))
    new = {**d, "d_model": new_d, "layers": resize(layers, target, mode)}
    if seq_len is not None:
        new["max_seq_len"] = max(int(seq_len), int(d.get("max_seq_len", 0) or 0))
    if vocab_size is not None:
        new["vocab_size"] = vocab_size
    return ArchSpec.from_dict(new).to_dict()  # validated, defaults filled at the new dims


def at_scale(spec: Any, scale: str | Scale, mode: Literal["stack", "stretch"] = "stack",
             vocab_size: int | None = None) -> dict[str, Any]:
    """``spec`` (a short proxy) rebuilt at a named scale (:func:`at_rung` with its dims)."""
    s = get_scale(scale)
    return at_rung(spec, d_model=s.d_model, n_layers=s.n_layers, mode=mode, seq_len=s.seq_len,
                   vocab_size=vocab_size)


def scale_budget(spec: Any, scale: str | Scale) -> tuple[int, float]:
    """(training tokens, training FLOPs) of ``spec`` already at ``scale``."""
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


MIN_RUNGS = 3  # distinct compute values a scaling fit needs
MIN_SPAN = 10.0  # ... spanning at least this factor of compute
MIN_RANKED = 6  # designs (baselines included) a rank agreement needs


@dataclass(frozen=True)
class RankAgreement:
    n: int
    spearman: float
    spearman_p: float  # exact (every permutation) up to 9 designs, else a 20,000-draw permutation test
    kendall: float
    kendall_p: float  # exact without ties, else scipy's asymptotic

    @property
    def resolved(self) -> bool:
        return self.n >= MIN_RANKED

    def summary(self) -> dict[str, Any]:
        clean = lambda v: float(v) if math.isfinite(v) else None
        out: dict[str, Any] = {"n": self.n, "spearman": clean(self.spearman), "spearman_p": clean(self.spearman_p),
                               "kendall": clean(self.kendall), "kendall_p": clean(self.kendall_p),
                               "resolved": self.resolved}
        if not self.resolved:
            out["note"] = f"not resolved: {self.n} designs at both rungs (needs >= {MIN_RANKED})"
        return out


def rank_agreement(a: Mapping[str, float], b: Mapping[str, float]) -> RankAgreement:
    """How well two scales rank the same designs (on the names both scored).

    Meaningful from :data:`MIN_RANKED` designs (``resolved``); computed from 2 so that a
    report can still show the numbers it has.
    """
    from scipy import stats  # heavy (seconds): loaded when ranks are compared, not with every plugin

    names = sorted(set(a) & set(b))
    if len(names) < 2:
        raise ValueError("rank agreement needs at least two designs scored at both scales")
    x, y = [a[n] for n in names], [b[n] for n in names]
    sp = stats.spearmanr(x, y)
    rho = float(sp.statistic)
    if len(names) <= 9:
        sp_p = _exact_spearman_p(x, y, rho)
    elif math.isfinite(rho):
        sp_p = float(stats.permutation_test((x,), lambda v: stats.spearmanr(v, y).statistic,
                                            permutation_type="pairings", n_resamples=20_000,
                                            random_state=0).pvalue)
    else:
        sp_p = math.nan
    ties = len(set(x)) < len(x) or len(set(y)) < len(y)
    kt = stats.kendalltau(x, y, method="asymptotic" if ties else "exact")
    return RankAgreement(n=len(names), spearman=rho, spearman_p=sp_p,
                         kendall=float(kt.statistic), kendall_p=float(kt.pvalue))


def _exact_spearman_p(x: Sequence[float], y: Sequence[float], rho: float) -> float:
    """Two-sided p of Spearman's rho over every pairing of the ranks (exact, for small n).

    scipy's t approximation gives p = 0 for a perfect ranking of 4 designs; the exact
    answer is 2/24: promoted-design counts are that small.
    """
    from scipy import stats  # heavy (seconds): loaded when ranks are compared, not with every plugin

    if not math.isfinite(rho):
        return math.nan
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx = rx - rx.mean()
    perms = np.array(list(itertools.permutations(ry)))
    perms -= perms.mean(axis=1, keepdims=True)
    rhos = perms @ rx / (np.linalg.norm(perms, axis=1) * np.linalg.norm(rx))
    return float(np.mean(np.abs(rhos) >= abs(rho) - 1e-9))


# ----------------------------------------------------------------------------- honest scaling fits

@dataclass(frozen=True)
class ScalingFit:
    """Loss = a * C^-b over a design's rungs, or why the data do not resolve it."""

    name: str
    fit: PowerLawFit | None  # None: not resolved
    reason: str | None  # why not resolved
    points: list[tuple[float, float]]  # (compute, loss) fitted: the rungs below the unigram floor
    dropped: list[tuple[float, float]]  # rungs at or above the floor (on the plateau)

    @property
    def resolved(self) -> bool:
        return self.fit is not None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"resolved": self.resolved, "reason": self.reason,
                               "points": [list(p) for p in self.points], "dropped": [list(p) for p in self.dropped]}
        if self.fit is not None:
            out.update(a=self.fit.a, b=self.fit.b, b_ci=list(self.fit.ci["b"]), n_points=len(self.points),
                       level=self.fit.level)
        return out


def fit_scaling(name: str, points: Sequence[tuple[float, float, float | None]], *, level: float = 0.95,
                n_boot: int = 400, seed: int = 0, min_rungs: int = MIN_RUNGS,
                min_span: float = MIN_SPAN) -> ScalingFit:
    """Fit one design's ladder, only where the data resolve an exponent.

    ``points``: (training compute, loss, unigram floor or None) per rung. Rungs whose loss is
    not below their unigram floor sit on the plateau (a fit there measures how fast a model
    leaves it, not how it scales) and are dropped; the rest must be >= ``min_rungs`` distinct
    compute values spanning >= ``min_span`` x. Otherwise the fit is "not resolved" with the reason.
    """
    valid = [(float(c), float(l), f) for c, l, f in points if c > 0 and math.isfinite(l) and l > 0]
    keep = [(c, l) for c, l, f in valid if f is None or l < f]
    dropped = [(c, l) for c, l, f in valid if not (f is None or l < f)]
    computes = sorted({c for c, _ in keep})
    reason = None
    if len(computes) < min_rungs:
        reason = (f"not resolved: {len(computes)} rung(s) below the unigram floor "
                  f"(needs >= {min_rungs} spanning >= {min_span:g}x compute)")
    elif computes[-1] / computes[0] < min_span:
        reason = (f"not resolved: the rungs below the unigram floor span {computes[-1] / computes[0]:.1f}x "
                  f"compute (needs >= {min_span:g}x)")
    if reason is not None:
        return ScalingFit(name, None, reason, keep, dropped)
    fit = fit_power_law([c for c, _ in keep], [l for _, l in keep], level=level, n_boot=n_boot, seed=seed)
    return ScalingFit(name, fit, None, keep, dropped)


def compare_fits(fit: ScalingFit, reference: ScalingFit) -> dict[str, Any]:
    """"Scales X% faster than the reference" only when both exponents are resolved, else why not."""
    if not fit.resolved or not reference.resolved:
        which = fit if not fit.resolved else reference
        return {"resolved": False, "text": f"{which.reason} ({which.name})"}
    cmp = compare_slopes(fit.fit, reference.fit)
    return {"resolved": True, "percent_faster": cmp.percent_faster, "ci": list(cmp.ci), "level": cmp.level,
            "text": str(cmp).replace("vs baseline", f"vs {reference.name}")}


# ----------------------------------------------------------------------------- running a ladder

@dataclass(frozen=True)
class Rung:
    spec_name: str
    scale: str
    params: float
    flops: float  # training FLOPs
    loss: float  # the evaluated metric (val bits per byte for the LM ladder)
    wall_s: float
    floor: float | None = None  # the unigram floor of the scored tokens (LM ladders)


@dataclass
class LadderResult:
    rungs: list[Rung]
    fits: dict[str, ScalingFit] = field(default_factory=dict)
    vs_baseline: dict[str, dict[str, Any]] = field(default_factory=dict)
    agreement: dict[tuple[str, str], RankAgreement] = field(default_factory=dict)

    def scores(self, scale: str) -> dict[str, float]:
        return {r.spec_name: r.loss for r in self.rungs if r.scale == scale}


def run_ladder(specs: Mapping[str, Any], scales: Sequence[str | Scale],
               train_fn: Callable[[dict[str, Any], Scale], tuple[float, ...]],
               mode: Literal["stack", "stretch"] = "stack",
               on_rung: Callable[[Rung], None] | None = None) -> list[Rung]:
    """Train every spec at every scale; ``train_fn(spec_at_scale, scale) -> (loss, train_flops[, floor])``."""
    rungs = []
    for scale in map(get_scale, scales):
        for name, spec in specs.items():
            big = at_scale(spec, scale, mode)
            t0 = time.perf_counter()
            loss, flops, *floor = train_fn(big, scale)
            params = float(count(ArchSpec.from_dict(big)).params)
            rungs.append(Rung(name, scale.name, params, flops, loss, time.perf_counter() - t0,
                              floor[0] if floor else None))
            if on_rung is not None:
                on_rung(rungs[-1])
    return rungs


def lm_train_fn(corpus: Any, seed: int = 0, val_tokens: int = 32768,
                threads: int | None = None) -> Callable[[dict[str, Any], Scale], tuple[float, float, float]]:
    """A ``train_fn`` for :func:`run_ladder`: train on ``corpus`` for the scale's budget through
    :func:`cambrian.scaling.runs.train_lm`; (val bpb, training FLOPs, unigram floor)."""
    # torch: the ladder's fits and rung arithmetic are used without it (compose's phases at plugin load)
    from cambrian.scaling.runs import train_lm
    from cambrian.scaling.trainer import TrainConfig

    def fn(spec: dict[str, Any], scale: Scale) -> tuple[float, float, float]:
        tokens, _ = scale_budget(spec, scale)
        steps = max(1, tokens // (scale.batch_size * scale.seq_len))
        config = TrainConfig(lr=scale.lr, max_tokens=tokens, warmup_steps=max(1, min(20, steps // 5)),
                             threads=threads)
        run = train_lm(spec, corpus, config, batch_size=scale.batch_size, seq_len=scale.seq_len, seed=seed,
                       val_tokens=val_tokens)
        return run.metrics["bpb"], run.metrics["train_flops"], run.metrics["floor_unigram_bpb"]

    return fn


def analyse_ladder(rungs: Sequence[Rung], baseline: str | None = None, n_boot: int = 1000,
                   seed: int = 0, level: float = 0.95) -> LadderResult:
    """Fit each spec where resolved (:func:`fit_scaling`), compare with the baseline's exponent
    (:func:`compare_fits`), rank agreement for every pair of scales."""
    result = LadderResult(rungs=list(rungs))
    names = list(dict.fromkeys(r.spec_name for r in rungs))
    scales = list(dict.fromkeys(r.scale for r in rungs))
    for name in names:
        result.fits[name] = fit_scaling(name, [(r.flops, r.loss, r.floor) for r in rungs if r.spec_name == name],
                                        level=level, n_boot=n_boot, seed=seed)
    if baseline is not None and baseline in result.fits:
        for name, fit in result.fits.items():
            if name != baseline:
                result.vs_baseline[name] = compare_fits(fit, result.fits[baseline])
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
