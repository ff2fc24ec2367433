"""The supervisor: who gets the next free evaluation slot, and why.

Config ``coordination: {policy: fixed | bandit, ...}``:

- ``fixed``: an equal share. Each free slot goes to the eligible agent with the fewest
  evaluations so far (ties: config order).
- ``bandit``: slots follow recent success. An evaluation's reward is 1 when it improved
  the campaign's best at the moment it finished, else 0. After ``warmup`` evaluations
  each, a free slot goes to the agent with the highest UCB1 score
  ``mean + exploration * sqrt(2 ln N / n)`` (mean over its last ``window`` rewards, n its
  evaluations including those running, N the sum) or, with ``rule: thompson``, the highest
  draw from Beta(1 + successes, 1 + failures) over the window. An agent whose last
  ``pause_after`` evaluations improved nothing is paused while another agent still
  improves; when every agent has stalled, all are unpaused.

The statistics are derived from the store's nodes (replayed on resume), never kept in
the checkpoint; every decision is logged to the store with its reason. The policies' options
are part of the campaign config (``cambrian.core.config``).
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

from cambrian.core.config import BanditPolicy, Coordination, FixedPolicy


@dataclass
class AgentStats:
    window: int
    rewards: deque = field(default_factory=deque)
    evaluations: int = 0
    since_improvement: int = 0

    def add(self, improved: bool) -> None:
        self.rewards.append(1.0 if improved else 0.0)
        while len(self.rewards) > self.window:
            self.rewards.popleft()
        self.evaluations += 1
        self.since_improvement = 0 if improved else self.since_improvement + 1

    @property
    def mean(self) -> float:
        return sum(self.rewards) / len(self.rewards) if self.rewards else 0.0


class Supervisor:
    """Allocates free evaluation slots among agents under a policy."""

    def __init__(self, options: Coordination, agents: list[str], seed: int) -> None:
        self.options = options
        self.agents = agents
        self.seed = seed
        window = getattr(options, "window", 20)
        self.stats = {a: AgentStats(window) for a in agents}

    def observe(self, agent: str, improved: bool) -> None:
        """One finished evaluation of ``agent`` (in finishing order)."""
        if agent in self.stats:
            self.stats[agent].add(improved)

    def paused(self, active: list[str]) -> dict[str, str]:
        """Agents to pause now, with the reason (bandit only)."""
        opts = self.options
        if not isinstance(opts, BanditPolicy) or opts.pause_after is None:
            return {}
        stalled = {a for a in active if self.stats[a].since_improvement >= opts.pause_after}
        if stalled == set(active):  # everybody stalled: nobody is better placed, keep all going
            return {}
        return {a: f"no improvement in its last {self.stats[a].since_improvement} evaluations"
                for a in sorted(stalled)}

    def allocate(self, free: int, eligible: dict[str, int], counts: dict[str, int],
                 round_no: int) -> list[tuple[str, str]]:
        """Give up to ``free`` slots; ``eligible`` maps agent -> slots it can still take.

        ``counts`` is each agent's evaluations so far (finished or running). Returns
        (agent, reason) per slot given.
        """
        left = dict(eligible)
        counts = dict(counts)
        out: list[tuple[str, str]] = []
        rng = random.Random(f"{self.seed}:{round_no}")
        for _ in range(free):
            cands = [a for a in self.agents if left.get(a, 0) > 0]
            if not cands:
                break
            agent, reason = self._pick(cands, counts, rng)
            out.append((agent, reason))
            left[agent] -= 1
            counts[agent] = counts.get(agent, 0) + 1
        return out

    def _pick(self, cands: list[str], counts: dict[str, int], rng: random.Random) -> tuple[str, str]:
        opts = self.options
        if isinstance(opts, FixedPolicy):
            agent = min(cands, key=lambda a: counts.get(a, 0))
            tally = ", ".join(f"{a} {counts.get(a, 0)}" for a in cands)
            return agent, f"fixed: equal share, fewest evaluations ({tally})"
        cold = [a for a in cands if counts.get(a, 0) < opts.warmup]
        if cold:
            agent = min(cold, key=lambda a: counts.get(a, 0))
            return agent, f"bandit warm-up: {counts.get(agent, 0)} of {opts.warmup} evaluations"
        if opts.rule == "thompson":
            scores = {}
            for a in cands:
                s = self.stats[a]
                wins = sum(s.rewards)
                scores[a] = rng.betavariate(1 + wins, 1 + len(s.rewards) - wins)
            label = "thompson draw"
        else:
            total = sum(max(1, counts.get(a, 0)) for a in cands)
            scores = {a: self.stats[a].mean + opts.exploration * math.sqrt(
                2 * math.log(max(total, 2)) / max(1, counts.get(a, 0))) for a in cands}
            label = "ucb"
        agent = max(cands, key=lambda a: scores[a])
        detail = ", ".join(f"{a} {scores[a]:.3f} (mean {self.stats[a].mean:.2f} over "
                           f"{len(self.stats[a].rewards)}, n {counts.get(a, 0)})" for a in cands)
        return agent, f"bandit {label}: {detail}"
