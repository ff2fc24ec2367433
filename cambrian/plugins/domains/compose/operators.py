"""Structured operators for ``spec`` candidates: no LLM, always valid output.

spec-random (draft): a random layer pattern of the proxy depth from the domain's primitives
  (at least one token mixer when the set has one).
spec-mutate (improve): one edit of the parent: swap two layers, change a layer's primitive,
  change one option of a layer, change a layer's width (its Mamba ``expand`` or MLP ``hidden``),
  change it alike in every layer of that primitive (``width-all``: every Mamba-2 twice as
  wide), insert a layer or delete one (depth kept within bounds).
  Option ``edits`` (1): edits applied in a row. Option ``kinds`` (false): edits keep each
  layer's kind (a token mixer becomes another token mixer, swaps stay within a kind) and
  inserts and deletes take a whole block (a token mixer and the channel mixer after it), so
  mixer-then-MLP stacks stay stacks. Option ``moves`` (swap, primitive, option, insert,
  delete): the edits drawn from, uniformly from the list (a move listed twice is drawn twice
  as often), e.g. without ``option`` the search changes only layer patterns. Option ``insight_bias`` (0: off): the chance
  that an edit drawing a new primitive (change, insert) takes one that an insight on the shared
  board (spec-analyze's ``about = {primitive, effect > 0}``) says goes with better scores.
spec-crossover (crossover): one-point (a cut in each parent) or uniform (per layer) crossover
  of two parents; option ``mode`` ("mixed": either, at random). When random tries find no new
  child (near-identical parents), every one-point cut pair is tried once before giving up.
spec-analyze (analyze): insights on which primitives go with better scores (no candidate).

Each operator retries (``tries``, default 20) until its candidate validates and differs from
its parents; when every try fails it returns nothing (the engine counts an idle step).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import Field

from cambrian import Candidate, Insight, Operator, OperatorContext, Options
from cambrian.plugins.domains.compose.patterns import WIDTH_OPTIONS, has_width, mutate_option
from cambrian.scaling.ladder import Layer, minimal_layers


def _attempt(ctx: OperatorContext, make: Callable[[random.Random], list[Layer] | None],
             tries: int) -> list[Candidate]:
    """Call ``make`` until its layers validate into a candidate different from the parents."""
    avoid = {p.candidate.hash for p in ctx.parents}
    for _ in range(tries):
        layers = make(ctx.rng)
        if not layers:
            continue
        try:
            cand = ctx.domain.spec(layers)
        except ValueError:
            continue
        if cand.hash not in avoid:
            return [cand]
    return []


class SpecOperator(Operator):
    kinds = ("spec",)

    class Options(Options):
        tries: int = Field(20, ge=1, description="attempts at a new valid spec before giving up")

    @property
    def tries(self) -> int:
        return self.options.tries


class SpecRandom(SpecOperator):
    name = "spec-random"
    role = "draft"

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        d = ctx.domain
        prims, mixers = list(d.primitives), d.by_kind.get("token", [])
        depth = int(ctx.options.get("depth", d.s["n_layers"]))

        def make(rng: random.Random) -> list[Layer]:
            names = [rng.choice(prims) for _ in range(depth)]
            if mixers and not any(n in mixers for n in names):
                names[rng.randrange(depth)] = rng.choice(mixers)
            return [{"primitive": n, "options": {}} for n in names]

        return _attempt(ctx, make, self.tries)


def favoured_primitives(insights: list[Insight], primitives: tuple[str, ...]) -> list[str]:
    """The domain's primitives that an insight finds better with (``about.effect > 0``)."""
    return sorted({i.about["primitive"] for i in insights
                   if i.about.get("primitive") in primitives and float(i.about.get("effect", 0)) > 0})


def _draw(rng: random.Random, choices: list[str], favoured: list[str], bias: float) -> str:
    """A primitive from ``choices``; with chance ``bias``, one of the favoured among them."""
    good = [p for p in favoured if p in choices]
    if good and bias > 0 and rng.random() < bias:  # no extra draw when off: unbiased runs stay as they were
        return rng.choice(good)
    return rng.choice(choices)


Move = Literal["swap", "primitive", "option", "width", "width-all", "insert", "delete"]
MOVES: tuple[Move, ...] = ("swap", "primitive", "option", "insert", "delete")  # the default


def mutate(layers: list[Layer], domain: Any, rng: random.Random,
           favoured: Sequence[str] = (), bias: float = 0.0, kinds: bool = False,
           moves: Sequence[Move] = MOVES) -> list[Layer] | None:
    """One random edit of ``layers`` (a new list), or None when the drawn edit does not apply.

    The edit is drawn uniformly from ``moves`` (those that keep the depth within bounds; a
    move listed twice is drawn twice as often).

    A new primitive is one of ``favoured`` with chance ``bias`` (where one applies). With
    ``kinds``, every edit keeps each layer's kind (token mixer or channel mixer): a layer
    changes to another primitive of its kind, swaps are between layers of one kind, and
    inserts and deletes take a whole block (a token mixer and the channel mixer after it)."""
    favoured = list(favoured)
    layers = [dict(x) for x in layers]
    kind_of = domain.kind_of
    block = [k for k in ("token", "channel") if domain.by_kind.get(k)] if kinds else []
    size = max(1, len(block))  # layers an insert or delete adds or removes
    n, lo, hi = len(layers), domain.s["min_layers"], domain.s["max_layers"]
    edits = [m for m in moves if not (m == "insert" and n + size > hi)
             and not (m == "delete" and n - size < lo)]
    if not edits:
        return None
    edit = rng.choice(edits)
    if edit == "swap":
        i, j = rng.sample(range(n), 2) if n > 1 else (0, 0)
        if layers[i] == layers[j] or (kinds and kind_of.get(layers[i]["primitive"])
                                      != kind_of.get(layers[j]["primitive"])):
            return None
        layers[i], layers[j] = layers[j], layers[i]
    elif edit == "primitive":
        i = rng.randrange(n)
        own = layers[i]["primitive"]
        pool = domain.by_kind.get(kind_of.get(own, ""), []) if kinds else domain.primitives
        others = [p for p in pool if p != own]
        if not others:
            return None
        layers[i] = {"primitive": _draw(rng, others, favoured, bias), "options": {}}
    elif edit in ("option", "width", "width-all"):
        names = None if edit == "option" else WIDTH_OPTIONS  # a width edit: a layer that has one
        slots = [j for j in range(n) if names is None or has_width(layers[j])]
        if not slots:
            return None
        i = rng.choice(slots)
        new = mutate_option(layers[i], domain.s["d_model"], rng, names)
        if new is None:
            return None
        if edit == "width-all":  # the same new width in every layer of that primitive
            before, after = layers[i].get("options") or {}, new["options"]
            changed = [k for k in WIDTH_OPTIONS if before.get(k) != after.get(k)]
            for j in range(n):
                if layers[j]["primitive"] == new["primitive"]:
                    opts = {k: v for k, v in (layers[j].get("options") or {}).items() if k not in changed}
                    opts.update({k: after[k] for k in changed if k in after})
                    layers[j] = {"primitive": new["primitive"], "options": opts}
        else:
            layers[i] = new
    elif edit == "insert":
        if size == 1:
            at, new_block = rng.randrange(n + 1), [_draw(rng, list(domain.primitives), favoured, bias)]
        else:  # a block goes before a token mixer or at the end, so no block is split
            at = rng.choice([i for i in range(n) if kind_of.get(layers[i]["primitive"]) == "token"] + [n])
            new_block = [_draw(rng, domain.by_kind[k], favoured, bias) for k in block]
        layers[at:at] = [{"primitive": p, "options": {}} for p in new_block]
    else:
        if size == 1:
            del layers[rng.randrange(n)]
        else:
            starts = [i for i in range(n - 1) if kind_of.get(layers[i]["primitive"]) == "token"
                      and kind_of.get(layers[i + 1]["primitive"]) == "channel"]
            if not starts:
                return None
            del layers[(i := rng.choice(starts)): i + 2]
    return layers


class SpecMutate(SpecOperator):
    name = "spec-mutate"
    role = "improve"

    class Options(SpecOperator.Options):
        edits: int = Field(1, ge=1, description="edits per mutation (a proposal's option wins)")
        insight_bias: float = Field(0.0, ge=0, le=1, description="chance a new primitive is one the "
                                    "insights board finds better with")
        kinds: bool = Field(False, description="edits keep each layer's kind; inserts and deletes "
                            "take a whole mixer-then-MLP block")
        moves: list[Move] = Field(list(MOVES), min_length=1, description="the edits drawn from "
                                  "(uniformly; list one twice to draw it twice as often): swap, "
                                  "primitive, option, width, width-all, insert, delete")

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        base = minimal_layers(ctx.parents[0].candidate.content)
        edits = int(ctx.options.get("edits", self.options.edits))
        bias = self.options.insight_bias
        favoured = favoured_primitives(ctx.insights, tuple(ctx.domain.primitives)) if bias > 0 else []

        def make(rng: random.Random) -> list[Layer] | None:
            layers: list[Layer] | None = base
            for _ in range(edits):
                layers = mutate(layers, ctx.domain, rng, favoured, bias, self.options.kinds,
                                self.options.moves) if layers else None
            return layers

        return _attempt(ctx, make, self.tries)


class SpecCrossover(SpecOperator):
    name = "spec-crossover"
    role = "crossover"

    class Options(SpecOperator.Options):
        mode: Literal["mixed", "one-point", "uniform"] = Field(
            "mixed", description="one-point, uniform, or either at random (a proposal's option wins)")

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        a, b = (minimal_layers(p.candidate.content) for p in ctx.parents[:2])
        mode = str(ctx.options.get("mode", self.options.mode))
        lo, hi = ctx.domain.s["min_layers"], ctx.domain.s["max_layers"]

        def make(rng: random.Random) -> list[Layer] | None:
            m = rng.choice(["one-point", "uniform"]) if mode == "mixed" else mode
            x, y = (a, b) if rng.random() < 0.5 else (b, a)
            if m == "one-point":
                i, j = rng.randint(1, len(x)), rng.randint(0, len(y) - 1)
                child = x[:i] + y[j:]
            elif m == "uniform":
                depth = rng.choice([len(x), len(y)])
                child = [rng.choice([p for p in (x, y) if len(p) > k])[k] for k in range(depth)]
            else:
                raise ValueError(f"spec-crossover: mode must be one-point, uniform or mixed, got {m!r}")
            return child if lo <= len(child) <= hi else None

        out = _attempt(ctx, make, self.tries)
        if out or mode == "uniform":
            return out
        # Near-identical parents rarely give a new child by chance: try every cut pair once.
        cuts = [(x, y, i, j) for x, y in ((a, b), (b, a)) for i in range(1, len(x) + 1) for j in range(len(y))]
        ctx.rng.shuffle(cuts)
        it = iter(cuts)

        def next_cut(rng: random.Random) -> list[Layer] | None:
            x, y, i, j = next(it)
            child = x[:i] + y[j:]
            return child if lo <= len(child) <= hi else None

        return _attempt(ctx, next_cut, len(cuts))


class SpecAnalyze(Operator):
    """Which primitives go with better scores: insights for the shared board, no candidate.

    For each primitive, the mean objective of the finished valid specs that use it against
    those that do not (each side at least ``min_designs``); the ``top`` largest differences
    become insights, with the best specs using the primitive as evidence and
    ``about = {"primitive", "effect"}`` (effect > 0: better with it).
    """

    name = "spec-analyze"
    role = "analyze"
    kinds = ("spec",)

    class Options(Options):
        min_designs: int = Field(3, ge=2, description="valid specs needed with and without a primitive")
        top: int = Field(2, ge=1, description="insights per analysis")

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        sign = 1.0 if ctx.objective.direction.value == "min" else -1.0
        scored = [(n, n.score(ctx.objective)) for n in ctx.shared if n.candidate.kind == "spec"]
        scored = [(n, s) for n, s in scored if s is not None]
        found = []
        for prim in sorted({layer["primitive"] for n, _ in scored for layer in n.candidate.content["layers"]}):
            has = [(n, s) for n, s in scored if any(x["primitive"] == prim for x in n.candidate.content["layers"])]
            with_ids = {n.id for n, _ in has}
            lacks = [(n, s) for n, s in scored if n.id not in with_ids]
            if min(len(has), len(lacks)) < self.options.min_designs:
                continue
            m_has, m_lacks = (sum(s for _, s in g) / len(g) for g in (has, lacks))
            effect = sign * (m_lacks - m_has)  # > 0: specs with the primitive score better
            best = sorted(has, key=lambda t: sign * t[1])[:5]
            found.append((abs(effect), prim, effect, m_has, len(has), m_lacks, len(lacks), best))
        for _, prim, effect, m_has, n_has, m_lacks, n_lacks, best in sorted(found, reverse=True)[: self.options.top]:
            ctx.new_insights.append(Insight(
                text=f"{prim}: specs with it score {m_has:.4g} on average ({n_has} designs), without it "
                     f"{m_lacks:.4g} ({n_lacks}): {'better' if effect > 0 else 'worse'} with {prim}",
                agent="", evidence=tuple(n.id for n, _ in best), about={"primitive": prim, "effect": effect}))
        return []


OPERATORS = [SpecRandom, SpecMutate, SpecCrossover, SpecAnalyze]
