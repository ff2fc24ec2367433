"""LLM operators: draft, improve, debug, crossover, analyze.

Each renders a jinja2 prompt, asks the agent's LLM, and parses the reply with
the domain's ``parse`` (which validates). A reply that does not parse is sent
back with the reason quoted (the ``repair.j2`` prompt), at most
``repair_retries`` times; after that the step fails (the engine logs it and
the campaign goes on).

Options (per agent through ``agents[].operator_options.<name>``, per
proposal through the scaffold's ``Proposal.options``, which win):
  templates_dir (None)   a folder searched first for templates by name
  template (None)        file name (in the search path) or path of this role's template
  system_template ("system.j2"), repair_template ("repair.j2")
  repair_retries (2), temperature / max_tokens (None = the backend's)
  max_words (150, analyze only)

Template search order: ``templates_dir``, the domain's ``prompts_dir``
attribute (a pack ships its own prompts), then this package's ``prompts/``.
Template variables: task, objective, direction_word, budget_left, parents,
leaderboard, notes, persona, candidate_kind, fence, options, max_words.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from cambrian import Candidate, Node, Operator, OperatorContext, Options, hookimpl
from cambrian.core.components import CODE_KINDS

BUILTIN_PROMPTS = Path(__file__).parent / "prompts"
MAX_ERROR_CHARS = 2000  # the tail of a long traceback is the informative part


@lru_cache(maxsize=32)
def _environment(search: tuple[str, ...]) -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(list(search)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=False, trim_blocks=True, lstrip_blocks=True,
                              autoescape=False)


def _node_view(ctx: OperatorContext, node: Node) -> dict[str, Any]:
    error = node.error or ""
    if len(error) > MAX_ERROR_CHARS:
        error = "..." + error[-MAX_ERROR_CHARS:]
    return {"id": node.id, "status": node.status.value, "operator": node.operator, "agent": node.agent,
            "text": ctx.domain.render(node.candidate), "error": error,
            "metrics": {k: m.value for k, m in node.metrics.items()}}


class LLMOperator(Operator):
    """Shared machinery; subclasses set ``name``, ``role`` and ``template``."""

    needs_llm = True
    template: ClassVar[str]

    class Options(Options):
        templates_dir: str | None = Field(None, description="a folder searched first for templates")
        template: str | None = Field(None, description="file name or path of this role's template")
        system_template: str = "system.j2"
        repair_template: str = "repair.j2"
        repair_retries: int = Field(2, ge=0, description="replies sent back with the parse error")
        temperature: float | None = Field(None, ge=0, description="None: the backend's")
        max_tokens: int | None = Field(None, ge=1, description="None: the backend's")
        max_words: int = Field(150, ge=1, description="length of an analysis note (analyze only)")

    def option(self, ctx: OperatorContext, key: str, default: Any = None) -> Any:
        """A proposal's option (from the scaffold) wins over the agent's configured one."""
        return ctx.options[key] if key in ctx.options else getattr(self.options, key, default)

    def environment(self, ctx: OperatorContext) -> Any:
        search = [self.option(ctx, "templates_dir"), getattr(ctx.domain, "prompts_dir", None),
                  BUILTIN_PROMPTS]
        tpl = self.option(ctx, "template")
        if tpl and Path(tpl).is_absolute():
            search.insert(0, Path(tpl).parent)
        return _environment(tuple(str(Path(p).expanduser()) for p in search if p))

    def variables(self, ctx: OperatorContext) -> dict[str, Any]:
        kind = ctx.domain.candidate_kind
        return {
            "task": ctx.domain.describe(), "objective": ctx.objective,
            "direction_word": "minimise" if ctx.objective.direction.value == "min" else "maximise",
            "budget_left": {k: v for k, v in ctx.budget_left.items() if v is not None},
            "parents": [_node_view(ctx, p) for p in ctx.parents],
            "leaderboard": [{"id": n.id, "agent": n.agent, "operator": n.operator,
                             "score": n.score(ctx.objective)} for n in ctx.leaderboard],
            "notes": list(ctx.notes), "persona": ctx.persona, "candidate_kind": kind,
            "fence": "python" if kind in CODE_KINDS else "json", "options": dict(ctx.options),
            "max_words": int(self.option(ctx, "max_words", 150)),
        }

    def render(self, ctx: OperatorContext, template: str, **extra: Any) -> str:
        env = self.environment(ctx)
        return env.get_template(Path(template).name).render(**self.variables(ctx), **extra).strip()

    def messages(self, ctx: OperatorContext) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.render(ctx, self.option(ctx, "system_template", "system.j2"))},
                {"role": "user", "content": self.render(ctx, self.option(ctx, "template") or self.template)}]

    def ask(self, ctx: OperatorContext, messages: list[dict[str, str]]) -> str:
        if ctx.llm is None:
            raise RuntimeError(f"operator {self.name!r} needs an LLM; the agent has none")
        kw = {k: self.option(ctx, k) for k in ("temperature", "max_tokens") if self.option(ctx, k) is not None}
        return ctx.llm.complete(messages, **kw).text

    def check(self, ctx: OperatorContext, candidate: Candidate) -> None:
        """Reject a reply that repeats a parent or a leaderboard node (a wasted evaluation)."""
        for p in [*ctx.parents, *ctx.leaderboard]:
            if candidate.hash == p.candidate.hash:
                raise ValueError(f"the candidate is identical to node {p.id}, already evaluated; "
                                 "propose a different one")

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        messages = self.messages(ctx)
        retries = int(self.option(ctx, "repair_retries", 2))
        for attempt in range(retries + 1):
            text = self.ask(ctx, messages)
            try:
                candidate = ctx.domain.parse(text)
                self.check(ctx, candidate)
            except ValueError as exc:
                if attempt == retries:
                    raise ValueError(f"no usable candidate after {retries} repair(s): {exc}") from None
                repair = self.render(ctx, self.option(ctx, "repair_template", "repair.j2"), error=str(exc))
                messages = [*messages, {"role": "assistant", "content": text},
                            {"role": "user", "content": repair}]
                continue
            meta = {**candidate.meta, "operator": self.name, "repairs": attempt}
            return [candidate.model_copy(update={"meta": meta})]
        return []


class LLMDraft(LLMOperator):
    name, role, template = "llm-draft", "draft", "draft.j2"


class LLMImprove(LLMOperator):
    name, role, template = "llm-improve", "improve", "improve.j2"


class LLMDebug(LLMOperator):
    name, role, template = "llm-debug", "debug", "debug.j2"


class LLMCrossover(LLMOperator):
    name, role, template = "llm-crossover", "crossover", "crossover.j2"


class LLMAnalyze(LLMOperator):
    """Summarises what a result teaches into a shared note; makes no candidate."""

    name, role, template = "llm-analyze", "analyze", "analyze.j2"
    MAX_NOTE_CHARS = 2000

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        text = self.ask(ctx, self.messages(ctx)).strip()
        if not text:
            raise ValueError("the analysis reply is empty")
        ctx.new_notes.append(text[: self.MAX_NOTE_CHARS])
        return []


@hookimpl
def cambrian_operators():
    return [LLMDraft, LLMImprove, LLMDebug, LLMCrossover, LLMAnalyze]
