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

Options (defaults):
  n_startup (8): random points before the model is used;
  n_ei_candidates (24): points TPE scores per ask;
  multivariate (true): model parameters jointly (optuna's multivariate TPE);
  learn_from_shared (true): add the other agents' evaluations (above) to the study.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from pydantic import Field

from cambrian import Direction, Node, Options, Proposal, Scaffold, SearchView, hookimpl


class BOOptions(Options):
    n_startup: int = Field(8, ge=1, description="random points before the model is used")
    n_ei_candidates: int = Field(24, ge=1, description="points TPE scores per ask")
    multivariate: bool = Field(True, description="model the parameters jointly")
    learn_from_shared: bool = Field(True, description="also learn from the other agents' evaluations of "
                                    "points in the space (at this agent's fidelity and seed)")


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
        self.study: Any = None  # the study of the last ask
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
        dists = distributions(view.space)
        self.study = self._study(view, dists)
        trial = self.study.ask(dists)
        self._asked = _key(trial.params)
        return Proposal("draft", options={"params": dict(trial.params)})

    def state(self, view: SearchView) -> dict[str, Any]:
        obs = self.observations(view)
        done = [v for _, v, _ in obs if v is not None]
        best = (max if view.objective.direction == Direction.MAX else min)(done, default=None)
        return {"trials": len(obs), "complete": len(done), "best": best}


@hookimpl
def cambrian_scaffolds():
    return [BOScaffold]
