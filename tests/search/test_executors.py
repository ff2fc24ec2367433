"""Local and Ray executors (hook ``cambrian_executors``): the same campaign, the same results.

Ray runs as a local instance with 2 CPUs, started once for this module.
"""

import pytest

from cambrian import Campaign, NodeStatus, Store
from cambrian.core.plugins import get_plugin_manager

from .test_budgets import _left_alive

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def campaign_config(executor, **over):
    cfg = {"name": "exec", "seed": 7,
           "domain": {"name": "toy", "options": {"dim": 2, "function": "rastrigin"}},
           "executor": executor, "budget": {"max_nodes": 4},
           "agents": [{"name": "a", "scaffold": {"name": "greedy", "options": {"n_drafts": 2}}}]}
    cfg.update(over)
    return cfg


def results(run_dir):
    return sorted((n.candidate.hash, n.status.value, n.metrics["loss"].value, n.metrics["norm"].value)
                  for n in Store(run_dir, create=False).nodes())


def test_executors_are_plugins():
    assert {"local", "ray"} <= set(get_plugin_manager().names("executor"))


def test_local_and_ray_store_the_same_results(local_ray, tmp_path):
    local = Campaign.from_config(campaign_config({"name": "local", "options": {"workers": 2}}),
                                 tmp_path / "local").run()
    remote = Campaign.from_config(campaign_config({"name": "ray", "options": {"workers": 2, "cpus": 1}}),
                                  tmp_path / "ray").run()
    trusted = Campaign.from_config(campaign_config({"name": "ray", "options": {
        "workers": 2, "isolation": "thread"}}), tmp_path / "ray-thread").run()
    assert local.reason == remote.reason == trusted.reason == "max_nodes"
    assert results(tmp_path / "local") == results(tmp_path / "ray") == results(tmp_path / "ray-thread")
    assert len(results(tmp_path / "ray")) == 4
    assert (tmp_path / "ray" / "evals").is_dir()  # the sandboxed worker wrote its job and result


def test_ray_evaluation_is_stopped_at_the_wall_clock_limit(local_ray, tmp_path):
    cfg = campaign_config({"name": "ray", "options": {"workers": 2}},
                          domain={"name": "toy", "options": {"dim": 2, "sleep_s": 120}},
                          budget={"wall_s": 3.0})
    cfg["agents"][0]["max_in_flight"] = 2
    result = Campaign.from_config(cfg, tmp_path / "run").run()
    assert result.reason == "wall_s"
    nodes = Store(tmp_path / "run", create=False).nodes()
    assert len(nodes) == 2 and all(n.status == NodeStatus.CANCELLED for n in nodes)
    assert _left_alive(tmp_path / "run") == []  # the tasks took their sandboxed processes down


def _sleeper(tmp_path, node_id, sleep_s):
    from cambrian import Candidate, EvalJob

    return EvalJob(node_id=node_id, run_dir=str(tmp_path), domain="toy",
                   domain_options={"dim": 2, "function": "sphere", "sleep_s": sleep_s}, evaluator="toy",
                   candidate=Candidate(kind="vector", content=[0.5, 0.5]))


def test_local_executor_isolation_modes(tmp_path):
    local = get_plugin_manager().get("executor", "local")
    with pytest.raises(ValueError, match="isolation"):
        local(isolation="container")
    ex = local(workers=2, isolation="thread")
    fast, slow = ex.submit(_sleeper(tmp_path, "fast", 0.0)), ex.submit(_sleeper(tmp_path, "slow", 3.0))
    assert fast.result(timeout=60).status == NodeStatus.DONE
    assert fast.result().metrics["loss"].value == pytest.approx(0.5, abs=0.1)  # 2 * 0.5^2 + noise
    ex.cancel("slow")  # an in-process evaluation can't be killed: it resolves as cancelled now
    assert slow.result(timeout=1).status == NodeStatus.CANCELLED
    ex.shutdown()
