"""The shared causality guard, through the real attention evaluator: designs that are causal only
at one shape, only at some positions, or only until they are trained are invalid; an honest
design is not. (The script pack's saved models go through the same guard: tests/script.)"""

from __future__ import annotations

import numpy as np
import pytest

from cambrian import Candidate, EvalJob, NodeStatus
from cambrian.execution.evaluation import evaluate_here
from cambrian.plugins.domains.attention.domain import seed_source
from cambrian.scaling.causality import first_leak, perturb, prefix_leak, prefix_positions, probe_shapes

from .conftest import TINY

HONEST = seed_source("softmax")
WRAP = "\n_Honest = Mixer\n\n\nclass Mixer(_Honest):\n    def forward(self, x):\n        y = super().forward(x)\n"
CHEATS = {
    # causal at the one shape the old guard probed, (3, 32); peeks at the next input elsewhere
    "shape": WRAP + "        if tuple(x.shape[:2]) == (3, 32):\n            return y\n"
                    "        return y + torch.roll(x, -1, dims=1)\n",
    # peeks one step ahead only near the end of a sequence
    "position": WRAP + "        if x.shape[1] < 8:\n            return y\n"
                       "        peek = torch.zeros_like(x)\n        peek[:, -5:-1] = x[:, -4:]\n"
                       "        return y + peek\n",
    # causal while it is probed and trained, peeking once its trained weights are scored: only
    # prefix re-scoring on the evaluation windows sees it
    "stateful": "import os\n" + WRAP + "        if os.path.exists('probe.npz'):\n            return y\n"
                "        return y + torch.roll(x, -1, dims=1)\n",
}


def evaluate(run, source: str, name: str):
    options = {**TINY, "tasks": {"mqar": TINY["tasks"]["mqar"]}, "weights": {"mqar": 1.0}}
    job = EvalJob(node_id=name, run_dir=str(run), domain="attention", domain_options=options,
                  evaluator="attention", candidate=Candidate(kind="code", content=source),
                  limits={"timeout_s": 300})
    work = run / "evals" / name / "work"
    work.mkdir(parents=True)
    return evaluate_here(job, work)


def test_an_honest_design_passes(open_tmp_path):
    out = evaluate(open_tmp_path, HONEST, "honest")
    assert out.status == NodeStatus.DONE, out.error
    assert np.isfinite(out.metrics["score"].value)


@pytest.mark.parametrize("cheat", sorted(CHEATS))
def test_a_conditionally_non_causal_design_is_invalid(open_tmp_path, cheat):
    out = evaluate(open_tmp_path, HONEST + CHEATS[cheat], cheat)
    assert out.status == NodeStatus.INVALID, (out.status, out.error)
    assert "score" not in out.metrics


def test_the_guard_finds_a_late_peek_and_passes_a_causal_map():
    rng = np.random.default_rng(0)

    def causal(x):  # running mean over time: causal
        return np.cumsum(x, axis=1) / np.arange(1, x.shape[1] + 1)[None, :, None]

    def late_peek(x):  # position T-2 sees T-1
        y = causal(x).copy()
        y[:, -2] += x[:, -1]
        return y

    shapes = probe_shapes(rng, [(8, 16)], max_len=16)
    assert (8, 16) in shapes and len(shapes) >= 2
    found = {"causal": False, "late_peek": False}
    for B, T in shapes * 4:
        p = perturb(rng, rng.standard_normal((B, T, 3)), lambda s: rng.standard_normal(s))
        assert ((p.a != p.b).any(axis=-1).argmax(axis=1) == p.cut).all()  # first change at the cut
        for name, f in (("causal", causal), ("late_peek", late_peek)):
            found[name] |= first_leak(f(p.a), f(p.b), p.cut) is not None
    assert found == {"causal": False, "late_peek": True}
    x = rng.standard_normal((4, 16, 3))
    positions = [(r, 14) for r in range(4)] + prefix_positions(rng, 4, 16)
    assert prefix_leak(causal, x, causal(x), positions) is None
    assert prefix_leak(late_peek, x, late_peek(x), positions) is not None
