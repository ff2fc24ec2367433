"""Task folders: built-in tasks load, bad folders fail with readable reasons, AIRS-Bench and MLGym
layouts map, keep/discard decisions respect the seed margin, the trusted checks reject bad models."""

from __future__ import annotations

import textwrap
import time

import pytest

from cambrian import Candidate, Metric, MetricSpec, Node, NodeStatus
from cambrian.plugins.domains.script.evaluator import FakeMetric, check_claim, claims
from cambrian.plugins.domains.script.history import decide
from cambrian.plugins.domains.script.task import builtin_task_names, load_task


def test_builtin_tasks_load_with_baselines():
    assert {"autoresearch-cpu", "speedrun-cpu"} <= set(builtin_task_names())
    ar = load_task("autoresearch-cpu")
    assert ar.objective == "val_bpb" and ar.objective_spec.direction.value == "min"
    assert ar.editable_file == "train.py" and "prepare.py" in ar.readonly
    assert ar.baseline.value("val_bpb") > 0 and ar.baseline.seed_spread > 0
    sp = load_task("speedrun-cpu")
    assert sp.evaluate == "lm-target" and sp.options["target_bpb"] > 0


def test_a_bad_task_folder_fails_with_a_reason(tmp_path):
    (tmp_path / "task.yaml").write_text("name: x\neditable: [train.py]\nmetrics: [{name: loss}]\nobjective: acc\n")
    with pytest.raises(ValueError, match="objective 'acc' is not one of the metrics"):
        load_task(tmp_path)
    (tmp_path / "task.yaml").write_text("name: x\neditable: [train.py]\nmetrics: [{name: loss}]\nobjective: loss\n")
    with pytest.raises(ValueError, match="'train.py' named in the task does not exist"):
        load_task(tmp_path)


def test_an_airs_bench_folder_maps(tmp_path):
    (tmp_path / "metadata.yaml").write_text(textwrap.dedent("""\
        metric_lower_is_better: true
        file_export_globs: [submission.csv]
        logging_info: {name: TimeSeriesToy, metric: MeanAbsoluteError}
        sota: [{sota_score: 0.25}]
        """))
    for f in ("project_description.md", "evaluate.py", "solution.py"):
        (tmp_path / f).write_text("# x\n")
    task = load_task(tmp_path)
    assert task.source_format == "airs-bench" and task.editable_file == "solution.py"
    assert task.objective_spec == MetricSpec(name="MeanAbsoluteError", direction="min")
    assert task.best_known == {"MeanAbsoluteError": 0.25} and task.evaluate == "command"


def test_an_mlgym_task_maps(tmp_path):
    (tmp_path / "regressionToy.yaml").write_text(textwrap.dedent("""\
        id: regressionToy
        name: Toy regression
        description: Predict y from x.
        starter_code: [baseline.py, helpers.py, evaluate.py]
        evaluation_paths: [evaluate.py]
        baseline_scores: [{r2: 0.61}]
        """))
    for f in ("baseline.py", "helpers.py", "evaluate.py"):
        (tmp_path / f).write_text("# x\n")
    task = load_task(tmp_path)
    assert task.source_format == "mlgym" and task.editable_file == "baseline.py"
    assert task.readonly == ["helpers.py"] and task.baseline.value("r2") == 0.61
    assert task.options["eval_command"] == ["python", "evaluate.py"]


def test_printed_claims_are_checked_against_the_measured_value():
    printed = claims("step 50 loss 2.1\nval_bpb: 1.2000\nsteps: 300\n")
    assert printed == {"val_bpb": 1.2, "steps": 300.0}
    check_claim(printed, "val_bpb", 1.21, True, 0.02)  # an honest claim passes
    with pytest.raises(FakeMetric, match="printed val_bpb=1.2000"):
        check_claim(printed, "val_bpb", 3.9, True, 0.02)


def _node(i, value, spread, status=NodeStatus.DONE):
    metrics = {} if value is None else {"val_bpb": Metric(name="val_bpb", value=value),
                                        "val_bpb_spread": Metric(name="val_bpb_spread", value=spread),
                                        "seed_spread": Metric(name="seed_spread", value=0.05)}
    return Node(id=f"n{i}", agent="a", operator="x", candidate=Candidate(kind="script", content=str(i)),
                status=status, metrics=metrics, error=None if value is not None else "boom",
                created_at=time.time() + i)


def test_a_seed_change_is_not_an_improvement():
    obj = MetricSpec(name="val_bpb", direction="min")
    nodes = [_node(0, 3.90, 0.03), _node(1, 3.87, 0.02), _node(2, None, 0, NodeStatus.FAILED),
             _node(3, 3.80, 0.02), _node(4, 3.79, 0.01)]
    d = {x.node_id: x for x in decide(nodes, obj)}
    assert [d[f"n{i}"].decision for i in range(5)] == ["keep", "discard", "crash", "keep", "discard"]
    assert "within the seed margin 0.0500" in d["n1"].reason
    assert d["n3"].incumbent == "n0" and d["n4"].incumbent == "n3"


def test_speedrun_validity_and_speedup_recovered():
    from cambrian.plugins.domains.script.evaluator import ScriptEvaluator, TargetNotReached

    task = load_task("speedrun-cpu").with_overrides({"reference": {"baseline_cpu_s": 20.0, "record_cpu_s": 10.0}})
    ev = ScriptEvaluator()
    runs = [{"hidden_bpb": 4.1, "visible_val_bpb": 4.15, "cpu_s": 14.0, "wall_s": 20.0},
            {"hidden_bpb": 4.2, "visible_val_bpb": 4.18, "cpu_s": 16.0, "wall_s": 22.0}]
    out = ev.aggregate(task, "lm-target", runs)
    assert out["train_cpu_s"] == 15.0 and out["speedup_recovered"] == pytest.approx(0.5)
    slow = [dict(r, hidden_bpb=4.5) for r in runs]
    with pytest.raises(TargetNotReached, match="above the target"):
        ev.aggregate(task, "lm-target", slow)


def test_search_and_final_evaluations_score_disjoint_hidden_slices():
    import numpy as np

    from cambrian.plugins.domains.script.evaluator import _held_out

    tokens = np.arange(100) % 256
    assert list(_held_out(tokens, 30, "val")) == list(range(30))
    assert list(_held_out(tokens, 30, "hidden")) == list(range(30, 60))
    with pytest.raises(ValueError, match="fewer than the 2 x 60"):
        _held_out(tokens, 60, "hidden")


def test_the_final_phase_is_offered_on_request():
    from cambrian.plugins.domains.script.domain import ScriptDomain

    d = ScriptDomain(task="autoresearch-cpu")
    assert d.phases({}) == []
    (phase,) = d.phases({"final": {"top_k": 2, "seeds": [0, 1]}})
    assert phase.name == "final" and phase.options.top_k == 2
    assert set(d.baselines()) == {"task-baseline"}
