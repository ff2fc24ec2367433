"""The lm and synthetic evaluators, run the way a campaign runs them: a sandboxed worker writing JSON."""

import math

from cambrian import Candidate, EvalJob, NodeStatus
from cambrian.architectures import reference_spec
from cambrian.execution.evaluation import run_job
from cambrian.plugins.evaluators.lm import LMEvaluator

SPEC = reference_spec("llama", d_model=32, n_layers=1, max_seq_len=32).to_dict()
LM_OPTIONS = {"max_steps": 10, "seq_len": 32, "batch_size": 8, "val_tokens": 2048, "threads": 1}


def job(tmp_path, evaluator, options, split="val", seed=0, node="n1"):
    # The toy domain's objective is "loss", which both evaluators report.
    return EvalJob(node_id=node, run_dir=str(tmp_path), domain="toy", evaluator=evaluator,
                   evaluator_options=options, candidate=Candidate(kind="spec", content=SPEC), split=split,
                   seed=seed, limits={"timeout_s": 300, "threads": 1})


def test_lm_evaluator_in_a_sandboxed_worker(tmp_path, stdlib_corpus):
    cache = str(stdlib_corpus.root.parent.parent)
    out = run_job(job(tmp_path, "lm", {**LM_OPTIONS, "cache_dir": cache}))
    assert out.status == NodeStatus.DONE, out.error
    m = {k: v.value for k, v in out.metrics.items()}
    assert 0 < m["bpb"] < 8.5 and m["val_bpb"] == m["bpb"] and "hidden_bpb" not in m
    assert m["params"] > 0 and m["train_tokens"] == 10 * 8 * 32
    assert out.cost.flops > m["train_flops"] > 0  # training plus scoring
    assert (tmp_path / "evals" / "n1" / "result.json").is_file()


def test_lm_evaluator_scores_hidden_only_when_asked(tmp_path, stdlib_corpus):
    ev = LMEvaluator(**{**LM_OPTIONS, "max_steps": 3}, cache_dir=str(stdlib_corpus.root.parent.parent))
    val, _ = ev.evaluate(job(tmp_path, "lm", {}), tmp_path)
    hidden, _ = ev.evaluate(job(tmp_path, "lm", {}, split="hidden"), tmp_path)
    assert "hidden_bpb" in hidden and "hidden_bpb" not in val and hidden["bpb"] != val["bpb"]
    other_seed, _ = ev.evaluate(job(tmp_path, "lm", {}, seed=1), tmp_path)
    assert other_seed["bpb"] != val["bpb"]


def test_synthetic_evaluator_in_a_sandboxed_worker(tmp_path):
    options = {"tasks": ["mqar", "listops"], "max_steps": 5, "n_train": 64, "n_eval": 32, "batch_size": 8,
               "threads": 1, "task_options": {"mqar": {"num_kv_pairs": 4, "num_queries": 4}}}
    out = run_job(job(tmp_path, "synthetic", options))
    assert out.status == NodeStatus.DONE, out.error
    m = {k: v.value for k, v in out.metrics.items()}
    assert 0 <= m["acc_mqar"] <= 1 and 0 <= m["acc_listops"] <= 1
    assert m["accuracy"] == (m["acc_mqar"] + m["acc_listops"]) / 2 and math.isfinite(m["loss"])
    assert out.cost.flops > 0


def test_a_broken_spec_raises_a_readable_error(tmp_path, stdlib_corpus):
    import pytest

    from cambrian.architectures import SpecError

    bad = job(tmp_path, "lm", {}).model_copy(
        update={"candidate": Candidate(kind="spec", content={"d_model": 32, "layers": [{"primitive": "nope"}]})})
    ev = LMEvaluator(**LM_OPTIONS, cache_dir=str(stdlib_corpus.root.parent.parent))
    with pytest.raises(SpecError, match="nope"):
        ev.evaluate(bad, tmp_path)
