"""The autoresearch-cpu baseline, run by the trusted evaluator exactly as a campaign would, is
reproducible within the seed spread the task records. Its absolute score depends on how many\nsteps fit the CPU budget on this machine, so it is not compared with a recorded number."""

from __future__ import annotations

import pytest

from cambrian import Candidate, EvalJob, NodeStatus
from cambrian.execution.evaluation import evaluate_here
from cambrian.plugins.domains.script.domain import task_from_options
from cambrian.scaling.data import default_cache_dir


def test_baseline_val_bpb_is_reproducible_within_the_recorded_seed_spread(open_tmp_path):
    tmp_path = open_tmp_path
    # the task as shipped (full built-in corpus, 8 CPU-second budget, 2 seeds); only the
    # corpus cache is shared with other runs so the shards are built once per machine
    options = {"task": "autoresearch-cpu", "overrides": {"data": {"cache_dir": str(default_cache_dir())}}}
    task = task_from_options(options)
    job = EvalJob(node_id="baseline", run_dir=str(tmp_path), domain="script", domain_options=options,
                  evaluator="script", candidate=Candidate(kind="script", content=task.seed_source()),
                  limits={"timeout_s": 600})
    out = evaluate_here(job, tmp_path / "work")
    assert out.status == NodeStatus.DONE, out.error
    m = {k: v.value for k, v in out.metrics.items()}
    spread = task.baseline.seed_spread
    assert m["repeats"] == 2 and m["seed_spread"] == spread > 0
    assert m["val_bpb_spread"] == pytest.approx(abs(m["val_bpb_run0"] - m["val_bpb_run1"]))
    assert m["val_bpb_spread"] <= spread, m
