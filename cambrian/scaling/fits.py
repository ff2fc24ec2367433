"""Scaling-law fits with bootstrap confidence intervals (scipy).

- :func:`fit_power_law`: loss against compute, ``L = a * C^-b`` (or ``E + a * C^-b``
  with an irreducible loss ``E``), fitted in log space.
- :func:`fit_chinchilla`: ``L(N, D) = E + A / N^alpha + B / D^beta`` (Hoffmann et
  al. 2022): Huber loss on log L, L-BFGS from a grid of starts; needs runs that
  vary both parameters N and data D.
- :func:`compare_slopes`: "scales X% faster than baseline" as the ratio of the
  fitted frontier exponents, with an interval from the paired bootstrap samples.
- ``fit.extrapolate(C)``: the loss predicted at a larger compute, with an interval.

Intervals are percentile bootstraps. With many points the data pairs are
resampled; with few (a three-rung ladder) resampling pairs degenerates, so the
residuals of the log-space fit are resampled instead (``method="auto"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class PowerLawFit:
    a: float
    b: float  # the exponent: loss falls as C^-b
    E: float  # irreducible loss (0 when not fitted)
    ci: dict[str, tuple[float, float]]  # parameter -> (lo, hi) at ``level``
    level: float
    samples: np.ndarray = field(repr=False)  # (n_boot, 3): bootstrap (a, b, E)
    n_points: int = 0

    def predict(self, C: np.ndarray | float) -> np.ndarray:
        return self.E + self.a * np.power(np.asarray(C, dtype=float), -self.b)

    def extrapolate(self, C: float) -> tuple[float, float, float]:
        """(prediction, lo, hi) of the loss at compute ``C``."""
        preds = self.samples[:, 2] + self.samples[:, 0] * np.power(float(C), -self.samples[:, 1])
        q = (1 - self.level) / 2
        return float(self.predict(C)), float(np.quantile(preds, q)), float(np.quantile(preds, 1 - q))


def _fit_loglog(C: np.ndarray, L: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(np.log(C), np.log(L), 1)
    return float(np.exp(intercept)), float(-slope)


def _fit_with_E(C: np.ndarray, L: np.ndarray, start: tuple[float, float, float]) -> tuple[float, float, float]:
    from scipy import optimize  # heavy: loaded when a fit runs, not with every plugin

    # Parameterise a and E by logs so both stay positive; fit log L (relative errors).
    x = np.log(C)

    def model(x, log_a, b, log_E):
        return np.logaddexp(log_a - b * x, log_E)

    a0, b0, E0 = start
    p, _ = optimize.curve_fit(model, x, np.log(L), p0=(np.log(a0), b0, np.log(max(E0, 1e-6))), maxfev=20000)
    return float(np.exp(p[0])), float(p[1]), float(np.exp(p[2]))


def fit_power_law(C, L, *, irreducible: bool = False, n_boot: int = 1000, level: float = 0.95,
                  method: Literal["auto", "pairs", "residuals"] = "auto", seed: int = 0) -> PowerLawFit:
    """Fit loss against compute with a bootstrap interval for each parameter."""
    C, L = np.asarray(C, dtype=float), np.asarray(L, dtype=float)
    if C.shape != L.shape or C.ndim != 1:
        raise ValueError("C and L must be 1-D arrays of the same length")
    if np.any(C <= 0) or np.any(L <= 0) or not np.all(np.isfinite(L)):
        raise ValueError("compute and loss must be positive and finite")
    need = 4 if irreducible else 2
    if len(np.unique(C)) < need:
        raise ValueError(f"need at least {need} distinct compute values to fit this law, got {len(np.unique(C))}")

    def fit(c, l):
        a, b = _fit_loglog(c, l)
        if not irreducible:
            return a, b, 0.0
        return _fit_with_E(c, l, (a, b, 0.5 * float(l.min())))

    a, b, E = fit(C, L)
    if method == "auto":
        method = "pairs" if len(C) >= 8 else "residuals"
    rng = np.random.default_rng(seed)
    resid = np.log(L) - np.log(E + a * C ** -b)
    samples = []
    for _ in range(n_boot):
        if method == "pairs":
            idx = rng.integers(0, len(C), len(C))
            if len(np.unique(C[idx])) < need:
                continue
            c, l = C[idx], L[idx]
        else:
            c, l = C, (E + a * C ** -b) * np.exp(rng.choice(resid, len(C)))
        try:
            samples.append(fit(c, l))
        except (RuntimeError, ValueError, np.linalg.LinAlgError):
            continue  # a resample the optimiser cannot fit is dropped, not faked
    s = np.array(samples) if samples else np.array([[a, b, E]])
    q = (1 - level) / 2
    ci = {name: (float(np.quantile(s[:, i], q)), float(np.quantile(s[:, i], 1 - q)))
          for i, name in enumerate(("a", "b", "E"))}
    return PowerLawFit(a=a, b=b, E=E, ci=ci, level=level, samples=s, n_points=len(C))


def frontier(C, L) -> np.ndarray:
    """Indices of the compute-efficient frontier: points with lower loss than every cheaper point."""
    C, L = np.asarray(C, dtype=float), np.asarray(L, dtype=float)
    order = np.argsort(C, kind="stable")
    best, keep = np.inf, []
    for i in order:
        if L[i] < best:
            best = L[i]
            keep.append(i)
    return np.array(keep, dtype=int)


@dataclass(frozen=True)
class SlopeComparison:
    ratio: float  # candidate exponent / baseline exponent
    percent_faster: float  # (ratio - 1) * 100: "scales X% faster than baseline"
    ci: tuple[float, float]  # interval of percent_faster
    level: float

    def __str__(self) -> str:
        lo, hi = self.ci
        return f"scales {self.percent_faster:+.1f}% vs baseline ({self.level:.0%} CI {lo:+.1f}% to {hi:+.1f}%)"


def compare_slopes(candidate: PowerLawFit, baseline: PowerLawFit) -> SlopeComparison:
    """Ratio of fitted exponents; the interval pairs the two fits' bootstrap samples."""
    n = min(len(candidate.samples), len(baseline.samples))
    ratios = candidate.samples[:n, 1] / baseline.samples[:n, 1]
    q = (1 - candidate.level) / 2
    ratio = candidate.b / baseline.b
    return SlopeComparison(ratio=ratio, percent_faster=100 * (ratio - 1),
                           ci=(float(100 * (np.quantile(ratios, q) - 1)), float(100 * (np.quantile(ratios, 1 - q) - 1))),
                           level=candidate.level)


# ----------------------------------------------------------------------------- Chinchilla

@dataclass(frozen=True)
class ChinchillaFit:
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    ci: dict[str, tuple[float, float]]
    level: float
    samples: np.ndarray = field(repr=False)  # (n_boot, 5): E, A, B, alpha, beta

    def predict(self, N, D) -> np.ndarray:
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        return self.E + self.A / N ** self.alpha + self.B / D ** self.beta

    def extrapolate(self, N: float, D: float) -> tuple[float, float, float]:
        s = self.samples
        preds = s[:, 0] + s[:, 1] / N ** s[:, 3] + s[:, 2] / D ** s[:, 4]
        q = (1 - self.level) / 2
        return float(self.predict(N, D)), float(np.quantile(preds, q)), float(np.quantile(preds, 1 - q))


def _chinchilla_objective(p, logN, logD, logL, delta):
    """Huber loss of log L against logsumexp(a - alpha logN, b - beta logD, e), and its gradient."""
    e, a, b, alpha, beta = p
    z = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])
    zmax = z.max(axis=0)
    ez = np.exp(z - zmax)
    pred = zmax + np.log(ez.sum(axis=0))
    w = ez / ez.sum(axis=0)  # softmax weights: d pred / d z
    r = pred - logL
    loss = np.sum(np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta)))
    h = np.clip(r, -delta, delta)  # d huber / d r
    grad = np.array([np.sum(h * w[2]), np.sum(h * w[0]), np.sum(h * w[1]),
                     -np.sum(h * w[0] * logN), -np.sum(h * w[1] * logD)])
    return loss, grad


def _fit_chinchilla_once(logN, logD, logL, starts, delta):
    from scipy import optimize  # heavy: loaded when a fit runs, not with every plugin

    best = None
    for p0 in starts:
        res = optimize.minimize(_chinchilla_objective, p0, args=(logN, logD, logL, delta), method="L-BFGS-B", jac=True,
                                bounds=[(-5, 5), (-10, 30), (-10, 30), (0.0, 2.0), (0.0, 2.0)],
                                options={"ftol": 1e-13, "gtol": 1e-10, "maxiter": 1000})
        if best is None or res.fun < best.fun:
            best = res
    e, a, b, alpha, beta = best.x
    return np.array([np.exp(e), np.exp(a), np.exp(b), alpha, beta])


def fit_chinchilla(N, D, L, *, n_boot: int = 50, level: float = 0.95, delta: float = 1e-3,
                   seed: int = 0) -> ChinchillaFit:
    """Fit ``L(N, D)``; needs at least 6 runs spanning 2+ model sizes and 2+ data sizes."""
    N, D, L = (np.asarray(v, dtype=float) for v in (N, D, L))
    if len(L) < 6 or len(np.unique(N)) < 2 or len(np.unique(D)) < 2:
        raise ValueError("the Chinchilla form needs >= 6 runs over at least 2 model sizes and 2 data sizes")
    logN, logD, logL = np.log(N), np.log(D), np.log(L)
    grid = [np.array([e, a, b, al, be]) for e in (-1.0, 0.5) for a in (0.0, 5.0, 10.0) for b in (0.0, 5.0, 10.0)
            for al, be in ((0.2, 0.2), (0.5, 0.5))]
    point = _fit_chinchilla_once(logN, logD, logL, grid, delta)
    start = [np.array([np.log(point[0]), np.log(point[1]), np.log(point[2]), point[3], point[4]])]
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(L), len(L))
        if len(np.unique(N[idx])) < 2 or len(np.unique(D[idx])) < 2:
            continue
        samples.append(_fit_chinchilla_once(logN[idx], logD[idx], logL[idx], start, delta))
    s = np.array(samples) if samples else point[None, :]
    q = (1 - level) / 2
    names = ("E", "A", "B", "alpha", "beta")
    ci = {n: (float(np.quantile(s[:, i], q)), float(np.quantile(s[:, i], 1 - q))) for i, n in enumerate(names)}
    return ChinchillaFit(*map(float, point), ci=ci, level=level, samples=s)
