"""A plugin's primitive goes through the shared causality guard before (and after) compose trains
it: one that peeks at the next position is invalid, one that learns to peek is invalid once
trained, a causal one scores. Asserts the node's status and metrics."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cambrian import Candidate, EvalJob, NodeStatus, hookimpl
from cambrian.architectures import Cache, Flops, Primitive
from cambrian.execution.evaluation import evaluate_here

from .tiny import TINY_DOMAIN


class Shift(nn.Module):
    """x + gate * (the next position's x): causal only while ``gate`` is 0."""

    def __init__(self, d: int, gate: float, learn: bool):
        super().__init__()
        self.gate = nn.Parameter(torch.tensor(gate), requires_grad=learn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, T, d)
        nxt = torch.cat([x[:, 1:], torch.zeros_like(x[:, :1])], dim=1)
        return x + self.gate * nxt


class RunningMean(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d): mean of positions 0..t
        return x.cumsum(1) / torch.arange(1, x.shape[1] + 1, device=x.device)[None, :, None]


class _Base(Primitive):
    kind = "token"
    options = ()

    def params(self, o, d):
        return 1

    def flops(self, o, d, seq_len):
        return Flops(0, other=d)

    def cache(self, o, d):
        return Cache()


class Peek(_Base):
    name = "peek-guard-test"

    def build(self, o, spec, i):
        return Shift(spec.d_model, 1.0, learn=False)


class LearnsToPeek(_Base):
    name = "learns-to-peek-guard-test"

    def build(self, o, spec, i):
        return Shift(spec.d_model, 0.0, learn=True)


class Mean(_Base):
    name = "mean-guard-test"

    def build(self, o, spec, i):
        return RunningMean()


class GuardPlugin:
    @hookimpl
    def cambrian_primitives(self):
        return [Peek, LearnsToPeek, Mean]


def evaluate(run, primitive: str):
    spec = {"d_model": 32, "layers": [{"primitive": primitive}, {"primitive": "swiglu"},
                                      {"primitive": "attention"}, {"primitive": "swiglu"}]}
    job = EvalJob(node_id=primitive, run_dir=str(run), domain="compose", evaluator="compose",
                  domain_options={**TINY_DOMAIN, "mqar_steps": 0}, candidate=Candidate(kind="spec", content=spec),
                  limits={"timeout_s": 300, "threads": 1})
    work = run / "evals" / primitive / "work"
    work.mkdir(parents=True)
    return evaluate_here(job, work)


@pytest.mark.parametrize("primitive, status", [(Peek.name, NodeStatus.INVALID),
                                               (LearnsToPeek.name, NodeStatus.INVALID),
                                               (Mean.name, NodeStatus.DONE)])
def test_a_plugin_primitive_that_peeks_is_invalid(fresh_pm, tmp_path, primitive, status):
    fresh_pm.register(GuardPlugin(), "guard-test-plugin")
    out = evaluate(tmp_path, primitive)
    assert out.status == status, (out.status, out.error)
    if status == NodeStatus.INVALID:
        assert out.metrics == {} or "score" not in out.metrics
    else:
        assert math.isfinite(out.metrics["score"].value)


def test_every_caller_of_the_one_training_path_is_guarded(fresh_pm):
    """The guard lives in the train-and-score path itself (cambrian.scaling.runs), so the ``lm`` and
    ``synthetic`` evaluators and the ladder get it too, not only compose."""
    from cambrian.scaling.causality import NotCausal
    from cambrian.scaling.runs import train_task
    from cambrian.scaling.synthetic import make_task
    from cambrian.scaling.trainer import TrainConfig

    fresh_pm.register(GuardPlugin(), "guard-test-plugin")
    spec = {"d_model": 16, "layers": [{"primitive": Peek.name}, {"primitive": "swiglu"}]}
    with pytest.raises(NotCausal):
        train_task(spec, make_task("mqar"), TrainConfig(max_steps=2, threads=1), n_train=64, n_eval=32)
    spec["layers"][0]["primitive"] = Mean.name
    out = train_task(spec, make_task("mqar"), TrainConfig(max_steps=2, threads=1), n_train=64, n_eval=32)
    assert 0.0 <= out["accuracy"] <= 1.0
