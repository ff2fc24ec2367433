"""One verdict for every pack: does the best design beat every hand-built baseline?

The final evaluation trains the best searched designs and every listed baseline
on the hidden split under fresh seeds (:func:`hidden_seeds`:
seeds the search never used, since a seed the search selected on would carry the
winner's curse), then calls :func:`verdict`.

The statistic, the same everywhere:

- ``margin``: how much better the design's mean is than the baseline's (positive =
  better, whatever the metric's direction);
- ``spread``: the sum of the two sample standard deviations over seeds;
- ``welch_p``: the two-sided Welch t-test p-value (unequal variances) of the two
  seed samples;
- the design **beats** a baseline when both have at least 2 seeds, the margin is
  larger than the spread, and ``welch_p < alpha`` (0.05). Both numbers are always
  printed, so a reader can apply a stricter rule;
- ``rerun_beats`` (:func:`rerun_beats`): how often a rerun on as many fresh seeds would
  call it "beats" again, simulated with the measured means and sds taken for the truth.
  A margin just over the spread is a coin toss on the next seeds; the line says so.

The **strongest baseline** is the one with the best mean. The verdict line names
it, beaten or not; ``beats_all_baselines`` is true only when every baseline is
beaten (None when some baseline or the design has no valid result). Where both rows
know their parameter counts, the line gives the design's as a multiple of the
strongest baseline's: a win by a bigger model at the same training budget is a
different claim from a win at equal size.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel

ALPHA = 0.05


class Row(BaseModel):
    """One design's (or baseline's) hidden results over seeds."""

    name: str
    values: list[float]
    params: float | None = None
    baseline: bool = False

    @property
    def seeds(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def sd(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    def text(self) -> str:
        """``mean ± sd (n seeds)``, as the verdict line writes it."""
        return _fmt(self)

    def summary(self) -> dict[str, Any]:
        """The row as ``{"name", "mean", "sd", "seeds", "params"}`` (plus ``baseline`` and the values)."""
        return {"name": self.name, "mean": self.mean, "sd": self.sd, "seeds": self.seeds, "params": self.params,
                "baseline": self.baseline, "values": list(self.values)}


class Comparison(BaseModel):
    baseline: str
    margin: float | None  # design better by this much (positive = better)
    spread: float | None  # sum of the two seed standard deviations
    welch_p: float | None
    beats: bool | None  # None: not comparable (a side has no valid result)
    rerun_beats: float | None = None  # share of simulated reruns that beat (rerun_beats)


class Verdict(BaseModel):
    metric: str
    direction: Literal["min", "max"]
    best: str | None
    strongest_baseline: str | None
    beats_all_baselines: bool | None
    comparisons: list[Comparison]
    rows: list[dict[str, Any]]
    alpha: float
    text: str


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided Welch t-test p; None with fewer than 2 values a side; 0 or 1 when both are constant."""
    if len(a) < 2 or len(b) < 2:
        return None
    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        return 0.0 if statistics.fmean(a) != statistics.fmean(b) else 1.0
    from scipy import stats

    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def compare(design: Row, base: Row, direction: str = "min", alpha: float = ALPHA) -> Comparison:
    if design.mean is None or base.mean is None:
        return Comparison(baseline=base.name, margin=None, spread=None, welch_p=None, beats=None)
    sign = 1.0 if direction == "min" else -1.0
    margin = sign * (base.mean - design.mean)
    spread = (design.sd or 0.0) + (base.sd or 0.0)
    p = welch_p(design.values, base.values)
    beats = design.seeds >= 2 and base.seeds >= 2 and margin > spread and p is not None and p < alpha
    return Comparison(baseline=base.name, margin=margin, spread=spread, welch_p=p, beats=bool(beats),
                      rerun_beats=rerun_beats(design, base, direction, alpha))


RERUN_DRAWS = 20_000


def _rule(a: Any, b: Any, sign: float, alpha: float) -> Any:
    """The "beats" rule on many reruns at once: ``a`` and ``b`` are (draws, seeds) arrays of
    the design's and the baseline's per-seed scores; a boolean per draw (Welch's p by the
    Welch-Satterthwaite degrees of freedom, as ``scipy.stats.ttest_ind(equal_var=False)``)."""
    import numpy as np
    from scipy import stats

    na, nb = a.shape[1], b.shape[1]
    ma, mb, va, vb = a.mean(1), b.mean(1), a.var(1, ddof=1), b.var(1, ddof=1)
    qa, qb = va / na, vb / nb
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (ma - mb) / np.sqrt(qa + qb)
        df = (qa + qb) ** 2 / (qa ** 2 / (na - 1) + qb ** 2 / (nb - 1))
        p = 2 * stats.t.sf(np.abs(t), df)
    return (sign * (mb - ma) > np.sqrt(va) + np.sqrt(vb)) & (p < alpha)


def rerun_beats(design: Row, base: Row, direction: str = "min", alpha: float = ALPHA,
                draws: int = RERUN_DRAWS, seed: int = 0) -> float | None:
    """The share of ``draws`` simulated reruns, each on as many fresh seeds as measured, whose
    seeds' scores (normal, with the measured mean and sd of each side) "beat" by the rule.

    A plug-in estimate: it takes the measured means and sds for the truth, so it says how much
    the verdict hangs on which seeds were drawn (a margin equal to the spread beats in about
    half the reruns), not the probability that the design is better. None with fewer than 2
    seeds a side. Simulated here because the rule (margin over the sum of sds *and* Welch's p)
    is this module's own; no library gives its power.
    """
    if design.seeds < 2 or base.seeds < 2 or design.sd is None or base.sd is None:
        return None
    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.normal(design.mean, design.sd, (draws, design.seeds))
    b = rng.normal(base.mean, base.sd, (draws, base.seeds))
    return float(np.mean(_rule(a, b, 1.0 if direction == "min" else -1.0, alpha)))


def _fmt(r: Row) -> str:
    sd = f" ± {r.sd:.4f}" if r.sd is not None else ""
    return f"{r.mean:.4f}{sd} ({r.seeds} seed{'s' if r.seeds != 1 else ''})"


def _stat(c: Comparison) -> str:
    p = "n/a" if c.welch_p is None else f"{c.welch_p:.3g}"
    rel = ">" if c.margin > c.spread else "<="
    rerun = "" if c.rerun_beats is None else f"; a rerun on fresh seeds beats in {c.rerun_beats:.0%} (simulated)"
    return f"margin {c.margin:+.4f} {rel} spread {c.spread:.4f} (sum of sds), Welch p = {p}{rerun}"


def verdict(designs: Mapping[str, Sequence[float]] | Sequence[Row],
            baselines: Mapping[str, Sequence[float]] | Sequence[Row] = (), *, direction: str = "min",
            metric: str = "score", alpha: float = ALPHA) -> Verdict:
    """Compare the best design (by mean) with every baseline; see the module docstring for the rule.

    ``designs`` and ``baselines`` are rows, or mappings of name -> per-seed values.
    """
    def rows(x: Any, is_base: bool) -> list[Row]:
        if isinstance(x, Mapping):
            return [Row(name=k, values=[float(v) for v in vals], baseline=is_base) for k, vals in x.items()]
        return [r.model_copy(update={"baseline": is_base}) for r in x]

    drows, brows = rows(designs, False), rows(baselines, True)
    for r in drows + brows:
        bad = [v for v in r.values if not math.isfinite(v)]
        if bad:
            raise ValueError(f"{r.name}: non-finite value {bad[0]} (invalid runs are left out, not scored)")
    sign = 1.0 if direction == "min" else -1.0
    best_of = lambda rs: min((r for r in rs if r.mean is not None), key=lambda r: sign * r.mean, default=None)
    best, strongest = best_of(drows), best_of(brows)
    out_rows = [r.summary() for r in drows + brows]
    common = {"metric": metric, "direction": direction, "rows": out_rows, "alpha": alpha}
    if best is None or not brows:
        what = "no searched design has a valid result" if best is None else "no baseline was evaluated"
        return Verdict(best=best.name if best else None, strongest_baseline=strongest.name if strongest else None,
                       beats_all_baselines=None, comparisons=[], text=f"no verdict: {what}", **common)
    comps = [compare(best, b, direction, alpha) for b in brows]
    missing = [c.baseline for c in comps if c.beats is None]
    lost = [c.baseline for c in comps if c.beats is False]
    beats_all = False if lost else (None if missing else True)
    head = f"{best.name} {_fmt(best)}"
    if strongest is None:
        text = f"no verdict: no baseline has a valid hidden result ({', '.join(missing)})"
    else:
        cs = next(c for c in comps if c.baseline == strongest.name)
        vs = f"the strongest baseline, {strongest.name} {_fmt(strongest)}: {_stat(cs)}"
        if best.params and strongest.params:
            vs += f"; {best.params / strongest.params:.2f}x its parameters"
        if beats_all:
            text = f"{head} beats every baseline; {vs}"
        elif cs.beats:
            text = f"{head} beats {vs}" + (f"; but not {', '.join(lost)}" if lost else "")
        else:
            text = f"{head} does not beat {vs}"
        if missing:
            text += f" (no valid hidden result for {', '.join(missing)})"
    text += f" [{metric}, {'lower' if direction == 'min' else 'higher'} is better, hidden split]"
    return Verdict(best=best.name, strongest_baseline=strongest.name if strongest else None,
                   beats_all_baselines=beats_all, comparisons=comps, text=text, **common)


def fresh_seeds(count: int, used: Iterable[int], start: int = 1000) -> list[int]:
    """``count`` seeds, from ``start`` up, that are not in ``used``.

    The final (hidden) evaluation trains every design again with seeds the search never
    used: a design selected on its search seeds' luck would otherwise keep that luck
    (the winner's curse).
    """
    taken = set(used)
    out: list[int] = []
    seed = start
    while len(out) < count:
        if seed not in taken:
            out.append(seed)
        seed += 1
    return out


def hidden_seeds(option: int | Iterable[int] | None, used: Iterable[int], default: int = 5) -> list[int]:
    """The hidden evaluation's seeds from a phase option: a count (fresh seeds, see
    :func:`fresh_seeds`) or an explicit list, which must not reuse a search seed."""
    used = set(used)
    if option is None or isinstance(option, int):
        return fresh_seeds(default if option is None else int(option), used)
    seeds = [int(s) for s in option]
    clash = sorted(set(seeds) & used)
    if clash:
        raise ValueError(f"hidden seeds {clash} were used by the search; the hidden evaluation needs seeds "
                         f"the search never used (give a count, e.g. seeds: {len(seeds)}, for fresh ones)")
    return seeds
