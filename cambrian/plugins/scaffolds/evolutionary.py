"""The evolutionary scaffold: a steady-state genetic algorithm, optionally on islands.

Each island first drafts ``population`` members. After that each step picks
parents from the island's population (its best ``population`` valid results,
including migrants: elitist truncation) by tournament or fitness-proportional
selection; with probability ``p_crossover`` two parents are recombined by the
agent's crossover operator, otherwise one parent is mutated by its improve
operator (vector-perturb, a structured mutate, an LLM improve...).

Islands: the n-th node an agent creates belongs to island ``n % islands`` and
steps go round-robin over islands, so membership is a pure function of the
stored creation order (a step that produced nothing is retried for the same
island). An island's generation is its members // population. Every
``migration_every`` generations of island i-1, its best ``migration_size``
results up to that point join island i's pool (a ring). Generations, members,
migrants and pools are all recomputed from the stored nodes, so a resume
continues the same populations.

Other agents: with ``immigrants: k`` the best k results of the other agents of the
campaign (the shared leaderboard, ``SearchView.shared``) join every island's pool, so
this agent also breeds from what the others found (a campaign's agents then share
designs, not only a leaderboard and insights). Their nodes stay theirs: a child of one
is this agent's node with that parent.

Options (defaults):
  population (8), selection ("tournament" or "proportional"), tournament_size (3),
  p_crossover (0.3), islands (1), migration_every (2), migration_size (1),
  immigrants (0), analyze_every (0 = never).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from cambrian import Options, Node, Proposal, Scaffold, SearchView, best_nodes, hookimpl
from cambrian.plugins.scaffolds.tree import AnalyzeEvery, normalised


class EvolutionaryScaffold(Scaffold):
    name = "evolutionary"

    class Options(Options):
        population: int = Field(8, ge=1, description="members per island (drafted first)")
        selection: Literal["tournament", "proportional"] = "tournament"
        tournament_size: int = Field(3, ge=1)
        p_crossover: float = Field(0.3, ge=0, le=1, description="chance of crossover instead of mutation")
        islands: int = Field(1, ge=1)
        migration_every: int = Field(2, ge=1, description="generations between migrations")
        migration_size: int = Field(1, ge=0, description="best results that migrate")
        immigrants: int = Field(0, ge=0, description="best results of the other agents that join the pool")
        analyze_every: int = Field(0, ge=0, description="an analyze step every N finished nodes (0: never)")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.options
        self.population, self.selection, self.tournament_size = o.population, o.selection, o.tournament_size
        self.p_crossover, self.islands = o.p_crossover, o.islands
        self.migration_every, self.migration_size = o.migration_every, o.migration_size
        self.analyze = AnalyzeEvery(o.analyze_every)
        self.seen: dict[str, Node] = {}

    def observe(self, node: Node) -> None:
        self.seen[node.id] = node

    # -- populations ----------------------------------------------------------------------

    def members(self, view: SearchView, island: int) -> list[Node]:
        return [n for i, n in enumerate(view.nodes) if i % self.islands == island]

    def migrants(self, view: SearchView, island: int) -> list[Node]:
        """Results that migrated into ``island`` from its ring neighbour so far."""
        if self.islands == 1 or self.migration_size <= 0:
            return []
        source = self.members(view, (island - 1) % self.islands)
        out: dict[str, Node] = {}
        step = self.migration_every * self.population
        for upto in range(step, len(source) + 1, step):
            done = [n for n in source[:upto] if n.id in self.seen]
            for n in best_nodes(done, view.objective)[: self.migration_size]:
                out[n.id] = n
        return list(out.values())

    def immigrants(self, view: SearchView) -> list[Node]:
        """The best ``immigrants`` finished results of the other agents (the shared leaderboard)."""
        if self.options.immigrants <= 0:
            return []
        others = [n for n in view.shared if n.agent != view.agent]
        return best_nodes(others, view.objective)[: self.options.immigrants]

    def pool(self, view: SearchView, island: int) -> list[Node]:
        """The island's breeding population: its best ``population`` valid results and
        migrants, and the other agents' immigrants."""
        own = [n for n in self.members(view, island) if n.id in self.seen]
        mine = best_nodes(own + self.migrants(view, island), view.objective)[: self.population]
        return best_nodes(mine + self.immigrants(view), view.objective)

    def pick(self, view: SearchView, pool: list[Node], exclude: str | None = None) -> Node:
        options = [n for n in pool if n.id != exclude] or pool
        if self.selection == "tournament":
            entrants = view.rng.sample(options, min(self.tournament_size, len(options)))
            return best_nodes(entrants, view.objective)[0]
        fitness = normalised({n.id: n.score(view.objective) for n in options}, view.objective)
        weights = [0.1 + fitness[n.id] for n in options]  # the worst keeps a small chance
        return view.rng.choices(options, weights=weights)[0]

    # -- the policy -----------------------------------------------------------------------

    def propose(self, view: SearchView) -> Proposal | None:
        if (step := self.analyze.step(view, self.seen)) is not None:
            return step
        island = len(view.nodes) % self.islands
        if len(self.members(view, island)) < self.population:
            return Proposal("draft")
        pool = self.pool(view, island)
        if not pool:
            return None if view.in_flight else Proposal("draft")
        can_cross = "crossover" in view.roles and len(pool) >= 2
        if can_cross and ("improve" not in view.roles or view.rng.random() < self.p_crossover):
            a = self.pick(view, pool)
            b = self.pick(view, pool, exclude=a.id)
            return Proposal("crossover", (a.id, b.id))
        if "improve" in view.roles:
            return Proposal("improve", (self.pick(view, pool).id,))
        return Proposal("draft")

    def state(self, view: SearchView) -> dict[str, Any]:
        """Per island: members, generation, migrants received and the current pool."""
        out = []
        for i in range(self.islands):
            members = self.members(view, i)
            out.append({"members": [n.id for n in members],
                        "generation": len(members) // self.population,
                        "migrants": sorted(n.id for n in self.migrants(view, i)),
                        "pool": [n.id for n in self.pool(view, i)]})
        return {"islands": out}


@hookimpl
def cambrian_scaffolds():
    return [EvolutionaryScaffold]
