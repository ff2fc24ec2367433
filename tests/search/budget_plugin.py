"""Components for the budget tests: a metered LLM, an LLM operator, a costly evaluator.

Registered into a fresh process-wide plugin manager by the tests (evaluations
run in-process, so the evaluator is found there too).
"""

from __future__ import annotations

import json

from cambrian import (
    Candidate,
    Cost,
    EvalJob,
    Evaluator,
    LLMBackend,
    LLMResponse,
    Operator,
    OperatorContext,
    hookimpl,
)


class CountingLLM(LLMBackend):
    """Replies with a vector; every other reply is unusable. 100 + 20 tokens, $0.01 a call."""

    name = "counting"

    def __init__(self, **options):
        super().__init__(**options)
        self.calls = 0

    def complete(self, messages, **kwargs):
        self.calls += 1
        text = "no idea" if self.calls % 2 == 0 else json.dumps([self.calls / 10, 0.5])
        return LLMResponse(text=text, prompt_tokens=100, completion_tokens=20, cost_usd=0.01,
                           model="counting")


class AskForVector(Operator):
    """A draft operator that asks the LLM; an unusable reply fails the step (tokens spent)."""

    name = "ask-vector"
    role = "draft"
    needs_llm = True

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        reply = ctx.llm.complete([{"role": "user", "content": "a vector please"}])
        return [Candidate(kind="vector", content=json.loads(reply.text))]


class ThreeSamples(Operator):
    """A draft operator that returns three candidates at once."""

    name = "three-samples"
    role = "draft"

    def apply(self, ctx: OperatorContext) -> list[Candidate]:
        return [ctx.domain.sample(ctx.rng) for _ in range(3)]


class CostlyEvaluator(Evaluator):
    """The toy objective, reporting 1 GFLOP and 0.5 GPU-seconds per evaluation."""

    name = "costly"

    def evaluate(self, job: EvalJob, workdir):
        return {"loss": sum(v * v for v in job.candidate.content)}, Cost(flops=1e9, gpu_s=0.5)


@hookimpl
def cambrian_llm_backends():
    return [CountingLLM]


@hookimpl
def cambrian_operators():
    return [AskForVector, ThreeSamples]


@hookimpl
def cambrian_evaluators():
    return [CostlyEvaluator]
