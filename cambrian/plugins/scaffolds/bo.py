"""The bo scaffold: Bayesian optimisation over the domain's structured space (optuna TPE).

Model-based search in the manner of Composer's: a tree-structured Parzen estimator
(optuna's ``TPESampler``, through its ask/tell interface) models which regions of the
domain's :meth:`Domain.search_space` give good objective values and proposes the next
point there; the agent's ``space-draft`` operator turns the point into a candidate.

Every step asks optuna for one point (the first ``n_startup`` are random) and proposes a
draft with ``options={"params": point}``. When the node finishes, its value is told to the
study (a failed or invalid node as a failed trial). Points asked in parallel are
handled by TPE's constant liar. A proposal that made no node (a duplicate candidate) is
told as failed at the next step. The sampler is re-seeded from the step's rng at every ask,
and the study is rebuilt from ``observe`` replays on resume (each node carries its point in
``candidate.meta["params"]``), so the study is a function of the stored nodes.

Options (defaults):
  n_startup (8): random points before the model is used;
  n_ei_candidates (24): points TPE scores per ask;
  multivariate (true): model parameters jointly (optuna's multivariate TPE).
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
        self.study: Any = None
        self.dists: dict[str, Any] | None = None
        self.pending: dict[str, int] = {}  # point -> trial number, asked and not yet told
        self.told: set[str] = set()  # node ids already in the study
        self._backlog: list[Node] = []  # observed before the first step (a resume's replay)
        self._objective: Any = None  # the view's objective, known from the first step

    # -- the study ------------------------------------------------------------------------

    def _open(self, view: SearchView) -> None:
        import optuna

        if not view.space:
            raise ValueError("bo: the domain has no structured search space (Domain.search_space)")
        if "draft" not in view.roles:
            raise ValueError("bo: the agent needs a draft operator that reads params (space-draft)")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        direction = "maximize" if view.objective.direction == Direction.MAX else "minimize"
        self.dists = distributions(view.space)
        self.study = optuna.create_study(direction=direction, sampler=self._sampler(0))
        backlog, self._backlog = self._backlog, []
        for node in backlog:
            self._tell(node)

    def _sampler(self, seed: int) -> Any:
        import optuna

        with warnings.catch_warnings():  # multivariate / constant_liar are marked experimental
            warnings.simplefilter("ignore")
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.opts.n_startup,
                                              n_ei_candidates=self.opts.n_ei_candidates,
                                              multivariate=self.opts.multivariate, constant_liar=True)

    def _value(self, node: Node) -> float | None:
        return node.score(self._objective) if self._objective is not None else None

    def _tell(self, node: Node) -> None:
        import optuna

        params = node.candidate.meta.get("params")
        if params is None or node.id in self.told or not node.status.finished:
            return
        self.told.add(node.id)
        value = self._value(node)
        state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.FAIL
        number = self.pending.pop(_key(params), None)
        if number is not None:
            self.study.tell(number, value if value is not None else None, state=state)
            return
        try:  # replayed on resume, or asked by an earlier process
            self.study.add_trial(optuna.trial.create_trial(
                params=params, distributions={k: self.dists[k] for k in params if k in self.dists},
                value=value, state=state))
        except ValueError:
            pass  # a point outside this campaign's space (the config changed): not evidence here

    # -- the policy -----------------------------------------------------------------------

    def observe(self, node: Node) -> None:
        if self.study is None:
            self._backlog.append(node)
        else:
            self._tell(node)

    def propose(self, view: SearchView) -> Proposal | None:
        import optuna

        self._objective = view.objective
        if self.study is None:
            self._open(view)
        made = {_key(n.candidate.meta["params"]) for n in view.nodes if "params" in n.candidate.meta}
        for key, number in list(self.pending.items()):
            if key not in made:  # the last point made no node (a duplicate): a failed trial
                self.study.tell(number, state=optuna.trial.TrialState.FAIL)
                del self.pending[key]
        self.study.sampler = self._sampler(view.rng.randrange(2**31))
        trial = self.study.ask(self.dists)
        self.pending[_key(trial.params)] = trial.number
        return Proposal("draft", options={"params": dict(trial.params)})

    def state(self, view: SearchView) -> dict[str, Any]:
        if self.study is None:
            return {"trials": 0}
        trials = self.study.trials
        done = [t for t in trials if t.value is not None]
        return {"trials": len(trials), "complete": len(done),
                "best": min((t.value for t in done), default=None)
                if self.study.direction.name == "MINIMIZE" else max((t.value for t in done), default=None)}


@hookimpl
def cambrian_scaffolds():
    return [BOScaffold]
