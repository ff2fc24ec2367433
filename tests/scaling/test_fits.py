import numpy as np
import pytest

from cambrian.scaling.fits import compare_slopes, fit_chinchilla, fit_power_law, frontier


def noisy_law(b=0.12, a=30.0, E=0.0, n=16, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    C = np.logspace(13, 19, n)
    return C, (E + a * C ** -b) * np.exp(rng.normal(0, noise, n))


def test_power_law_exponent_recovered_within_5_percent_with_covering_interval():
    covered = 0
    for seed in range(10):  # a 95% interval must cover the true exponent in most repeats
        C, L = noisy_law(b=0.12, seed=seed)
        fit = fit_power_law(C, L, n_boot=400, seed=seed)
        assert abs(fit.b - 0.12) / 0.12 < 0.05
        lo, hi = fit.ci["b"]
        assert lo < fit.b < hi
        covered += lo < 0.12 < hi
    assert covered >= 8


def test_power_law_with_irreducible_loss():
    C, L = noisy_law(b=0.3, a=2000.0, E=1.5, n=20, noise=0.003, seed=1)
    fit = fit_power_law(C, L, irreducible=True, n_boot=200)
    assert abs(fit.b - 0.3) / 0.3 < 0.05 and abs(fit.E - 1.5) < 0.05
    assert fit.ci["b"][0] < 0.3 < fit.ci["b"][1]


def test_few_points_use_residual_bootstrap_and_extrapolate_with_an_interval():
    C, L = noisy_law(b=0.1, n=3, noise=0.005, seed=2)
    fit = fit_power_law(C, L, n_boot=300)
    pred, lo, hi = fit.extrapolate(1e21)
    assert lo <= pred <= hi and pred == pytest.approx(30.0 * 1e21 ** -0.1, rel=0.05)


def test_slope_ratio_against_a_baseline():
    C, base = noisy_law(b=0.10, seed=3)
    _, fast = noisy_law(b=0.12, seed=4)
    cmp = compare_slopes(fit_power_law(C, fast, n_boot=300), fit_power_law(C, base, n_boot=300))
    assert cmp.ratio == pytest.approx(1.2, rel=0.05)
    assert cmp.ci[0] < cmp.percent_faster < cmp.ci[1] and cmp.ci[0] > 0
    assert "scales +" in str(cmp)


def test_frontier_keeps_only_compute_efficient_points():
    C = np.array([1, 2, 3, 4, 5.0])
    L = np.array([5, 4, 4.5, 3, 3.2])
    assert frontier(C, L).tolist() == [0, 1, 3]


def test_too_few_points_is_a_readable_error():
    with pytest.raises(ValueError, match="distinct compute"):
        fit_power_law([1e10, 1e10], [3.0, 2.9])
    with pytest.raises(ValueError, match="Chinchilla"):
        fit_chinchilla([1e6] * 6, [1e8] * 6, [3.0] * 6)


def test_chinchilla_form_recovers_its_exponents():
    rng = np.random.default_rng(0)
    N, D = np.repeat([1e6, 3e6, 1e7, 3e7], 4), np.tile([1e8, 3e8, 1e9, 3e9], 4)
    L = (1.69 + 406.4 / N ** 0.34 + 410.7 / D ** 0.28) * np.exp(rng.normal(0, 0.002, len(N)))
    fit = fit_chinchilla(N, D, L, n_boot=3)
    assert abs(fit.alpha - 0.34) < 0.03 and abs(fit.beta - 0.28) < 0.03
    pred, lo, hi = fit.extrapolate(1e8, 1e10)
    assert lo <= pred <= hi or np.isclose(lo, hi)
