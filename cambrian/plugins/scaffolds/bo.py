"""The bo scaffold: Bayesian optimisation over the domain's structured space (optuna TPE).

Model-based search in the manner of Composer's: a tree-structured Parzen estimator
(optuna's ``TPESampler``, through its ask/tell interface) models which regions of the
domain's :meth:`Domain.search_space` give good objective values and proposes the next
point there; the agent's ``space-draft`` operator turns the point into a candidate.

Every step builds the study afresh from the view and asks it for one point, proposed as a
draft with ``options={"params": point}``. The study holds this agent's evaluations (its own
point in ``candidate.meta["params"]``; failed or invalid ones as failed trials, running ones
as running trials, which TPE's constant liar keeps it from asking again) and, with
``learn_from_shared``, the other agents' evaluations of points in the space at the same
fidelity and seed (:meth:`Domain.to_params` maps their candidates back: hand-built
references and evolutionary edits are evidence too, and with few evaluations per agent a
model that sees only its own is still guessing when the budget ends). A node's value is
what the view says it scores; inside ``halving`` that is its candidate's place in the
standings, which TPE (it only ranks values) reads like a score. A point that made no node
(a duplicate candidate) is kept as a failed trial for the rest of the process. The sampler
is seeded from the step's rng, so the study and the point asked are a function of the
stored nodes and of this process's duplicates: a resumed campaign asks what the live one
would have, unless the live one had asked a duplicate.

With ``model: gp`` the model is a Gaussian process instead (scikit-learn's
``GaussianProcessRegressor``: Matern 5/2 with a length per feature, plus white noise) over the
domain's :meth:`Domain.features` of each point (for compose, how many layers of each
primitive; a domain without features: the parameters one-hot and scaled to [0, 1]), so what
it learns of one design carries to every design with similar features, where TPE models each
parameter (each layer slot) on its own. It proposes the point of highest expected improvement
among ``pool`` random points and every one-parameter change of the three best points seen
(a categorical's other choices, an integer's +-1, a float's two Gaussian steps), leaving out
points whose features it has already seen or is waiting for (it cannot tell them apart; a
point being evaluated counts as the worst value seen, as TPE's constant liar does).

Options (defaults):
  model (tpe): ``tpe`` or ``gp`` (above);
  n_startup (8): random points before the model is used (counting the other agents' points);
  n_ei_candidates (24): points TPE scores per ask;
  pool (512): random points the GP scores per ask, besides the best points' neighbours;
  multivariate (true): model parameters jointly (optuna's multivariate TPE);
  learn_from_shared (true): add the other agents' evaluations (above) to the study.
"""

from __future__ import annotations

import json
import random
import warnings
from typing import Any, Literal

from pydantic import Field

from cambrian import Direction, Node, Options, Proposal, Scaffold, SearchView, hookimpl
from cambrian.plugins.operators.params import sample_point  # space-draft's uniform draw


class BOOptions(Options):
    model: Literal["tpe", "gp"] = Field("tpe", description="tpe: optuna's TPE over the parameters; gp: a Gaussian "
                                        "process over the domain's features of each point (scikit-learn)")
    pool: int = Field(512, ge=1, description="gp: random points scored per ask, besides the best points' neighbours")
    n_startup: int = Field(8, ge=1, description="random points before the model is used")
    n_ei_candidates: int = Field(24, ge=1, description="points TPE scores per ask")
    multivariate: bool = Field(True, description="model the parameters jointly")
    learn_from_shared: bool = Field(True, description="also learn from the other agents' evaluations of "
                                    "points in the space (at this agent's fidelity and seed)")


def training_set(done: list[tuple[Any, tuple[float, ...], float]],
                 running: list[tuple[float, ...]]) -> tuple[Any, Any]:
    """The GP's inputs and targets: each measured point (point, encoding, value to minimise)
    and each running point's encoding at the worst value measured (constant liar)."""
    import numpy as np

    worst = max(v for _, _, v in done)
    return (np.array([x for _, x, _ in done] + list(running)),
            np.array([v for _, _, v in done] + [worst] * len(running)))


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def distributions(space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """optuna distributions for a :meth:`Domain.search_space`."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for name, d in space.items():
        if "choices" in d:
            out[name] = CategoricalDistribution(list(d["choices"]))
        elif d.get("int"):
            out[name] = IntDistribution(int(d["low"]), int(d["high"]))
        else:
            out[name] = FloatDistribution(float(d["low"]), float(d["high"]))
    return out


class BOScaffold(Scaffold):
    name = "bo"
    Options = BOOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.opts = self.options
        self.study: Any = None  # the study of the last ask (tpe)
        self.gp: Any = None  # the Gaussian process of the last ask (gp; None while it drew at random)
        self.dead: set[str] = set()  # points asked that made no node (duplicates): failed trials
        self._asked: str | None = None

    def _sampler(self, seed: int) -> Any:
        import optuna

        with warnings.catch_warnings():  # multivariate / constant_liar are marked experimental
            warnings.simplefilter("ignore")
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.opts.n_startup,
                                              n_ei_candidates=self.opts.n_ei_candidates,
                                              multivariate=self.opts.multivariate, constant_liar=True)

    @staticmethod
    def _params(node: Node, view: SearchView) -> dict[str, Any] | None:
        # Domain.to_params gives a space-draft candidate's own point first; a view built
        # without a domain (a test's) has only that point
        return view.to_params(node.candidate) if view.to_params else node.candidate.meta.get("params")

    def observations(self, view: SearchView) -> list[tuple[dict[str, Any], float | None, bool]]:
        """``(point, value, running)`` per candidate the study learns from: this agent's nodes,
        then (``learn_from_shared``) the other agents' at the fidelity and seed of its own;
        one per candidate (the first), failed and invalid ones with value None."""
        own_ids = {n.id for n in view.nodes}
        others: list[Node] = []
        if self.opts.learn_from_shared and view.nodes:
            fidelity = view.nodes[0].fidelity
            others = [n for n in view.shared if n.id not in own_ids and n.fidelity == fidelity
                      and n.seed == view.nodes[0].seed and n.status.finished]
        out, seen = [], set()
        for n in [*view.nodes, *others]:
            params = self._params(n, view)
            if params is None or n.candidate.hash in seen:
                continue
            seen.add(n.candidate.hash)
            running = not n.status.finished
            out.append((params, None if running else n.score(view.objective), running))
        return out

    def _study(self, view: SearchView, dists: dict[str, Any]) -> Any:
        import optuna

        direction = "maximize" if view.objective.direction == Direction.MAX else "minimize"
        study = optuna.create_study(direction=direction, sampler=self._sampler(view.rng.randrange(2**31)))
        State = optuna.trial.TrialState
        points = self.observations(view) + [(json.loads(key), None, False) for key in sorted(self.dead)]
        for params, value, running in points:
            state = State.RUNNING if running else State.COMPLETE if value is not None else State.FAIL
            try:
                study.add_trial(optuna.trial.create_trial(
                    params=params, distributions={k: dists[k] for k in params if k in dists},
                    value=value if state == State.COMPLETE else None, state=state))
            except ValueError:
                continue  # a point outside this campaign's space (the config changed): not evidence here
        return study

    # -- the policy -----------------------------------------------------------------------

    def propose(self, view: SearchView) -> Proposal | None:
        import optuna

        if not view.space:
            raise ValueError("bo: the domain has no structured search space (Domain.search_space)")
        if "draft" not in view.roles:
            raise ValueError("bo: the agent needs a draft operator that reads params (space-draft)")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        made = {_key(n.candidate.meta["params"]) for n in view.nodes if "params" in n.candidate.meta}
        if self._asked is not None and self._asked not in made:
            self.dead.add(self._asked)  # the last point made no node
        if self.opts.model == "gp":
            point = self._ask_gp(view)
        else:
            dists = distributions(view.space)
            self.study = self._study(view, dists)
            point = dict(self.study.ask(dists).params)
        self._asked = _key(point)
        return Proposal("draft", options={"params": point})

    # -- the Gaussian-process model (model: gp) --------------------------------------------
    # Written here rather than taken from optuna's GPSampler: that sampler models the
    # parameters themselves (one-hot per layer slot), and what makes this model worth having
    # is that it reads the domain's features of a point instead.

    def _encode(self, params: dict[str, Any], view: SearchView) -> tuple[float, ...]:
        feats = view.features(params) if view.features else None
        if feats is not None:
            return tuple(float(feats[k]) for k in sorted(feats))
        out: list[float] = []
        for name, d in sorted(view.space.items()):
            if "choices" in d:
                out += [float(params.get(name) == c) for c in d["choices"]]
            else:
                lo, hi = float(d["low"]), float(d["high"])
                out.append((float(params[name]) - lo) / (hi - lo) if hi > lo else 0.0)
        return tuple(out)

    @staticmethod
    def _neighbours(point: dict[str, Any], space: dict[str, dict[str, Any]], rng: random.Random):
        """Every one-parameter change of ``point`` (two Gaussian steps for a float)."""
        for name, d in space.items():
            if name not in point:
                continue
            if "choices" in d:
                steps = [c for c in d["choices"] if c != point[name]]
            elif d.get("int"):
                steps = [v for v in (point[name] - 1, point[name] + 1) if d["low"] <= v <= d["high"]]
            else:
                sd = 0.1 * (float(d["high"]) - float(d["low"]))
                steps = [min(float(d["high"]), max(float(d["low"]), point[name] + rng.gauss(0, sd))) for _ in range(2)]
            for v in steps:
                yield {**point, name: v}

    def _ask_gp(self, view: SearchView) -> dict[str, Any]:
        # here, not at the top: scikit-learn costs about a second to import, and only gp asks
        import numpy as np
        from scipy.stats import norm
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        sign = -1.0 if view.objective.direction == Direction.MAX else 1.0  # the GP minimises
        # (point, its encoding, value or None, running), each point encoded once
        obs = [(p, self._encode(p, view), v, running) for p, v, running in self.observations(view)
               if set(view.space) <= set(p)]
        done = [(p, x, sign * v) for p, x, v, _ in obs if v is not None]
        seen = {x for _, x, _, _ in obs} | {self._encode(json.loads(k), view) for k in self.dead}
        rng = random.Random(view.rng.randrange(2**31))
        if len(done) < self.opts.n_startup:
            self.gp = None
            return sample_point(view.space, rng)
        X, y = training_set(done, [x for _, x, _, is_running in obs if is_running])
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(np.ones(X.shape[1]), (1e-2, 1e3), nu=2.5) \
            + WhiteKernel(0.1, (1e-6, 1e1))
        self.gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=2,
                                           random_state=rng.randrange(2**31))
        with warnings.catch_warnings():  # a length at its bound: the feature does not matter
            warnings.simplefilter("ignore")
            self.gp.fit(X, y)
        best = sorted(done, key=lambda pxv: pxv[2])[:3]
        pool = [sample_point(view.space, rng) for _ in range(self.opts.pool)]
        pool += [q for p, _, _ in best for q in self._neighbours(p, view.space, rng)]
        fresh: dict[tuple[float, ...], dict[str, Any]] = {}
        for q in pool:  # a point per unseen feature vector, the first drawn
            fresh.setdefault(self._encode(q, view), q)
        for key in seen:
            fresh.pop(key, None)
        if not fresh:
            return sample_point(view.space, rng)
        keys = list(fresh)
        mu, sd = self.gp.predict(np.array(keys), return_std=True)
        gain = best[0][2] - mu  # below the best value measured
        z = gain / np.maximum(sd, 1e-12)
        ei = gain * norm.cdf(z) + sd * norm.pdf(z)
        return fresh[keys[int(np.argmax(ei))]]

    def state(self, view: SearchView) -> dict[str, Any]:
        obs = self.observations(view)
        done = [v for _, v, _ in obs if v is not None]
        best = (max if view.objective.direction == Direction.MAX else min)(done, default=None)
        return {"trials": len(obs), "complete": len(done), "best": best}


@hookimpl
def cambrian_scaffolds():
    return [BOScaffold]
