"""The idle lane: a phase's known-ahead evaluations run during the search and are reused once."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from concurrent.futures import Future

import yaml

from cambrian import Campaign, EvalOutcome, NodeStatus, Store

from ..conftest import kill_cli_run_when, toy_config

REFS = [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]


def _config(**hidden):
    return toy_config(domain={"name": "toy", "options": {"dim": 3, "function": "sphere", "sleep_s": 0.2}},
                      executor={"name": "local", "options": {"workers": 1}},
                      phases={"hidden": {"top_k": 1, "seeds": 2, "references": REFS, **hidden}})


def _events(store: Store, kind: str | None = None) -> list[dict]:
    return store.events(kind)


def test_known_ahead_evaluations_start_during_the_search_and_the_phase_reuses_them(tmp_path):
    c = Campaign.from_config(_config(), tmp_path / "run")
    c.run()
    store = Store(tmp_path / "run", create=False)
    phase_start = next(e["seq"] for e in _events(store, "phase_started") if e["payload"]["phase"] == "hidden")
    started = _events(store, "idle_evaluation_started")
    # the references' two fresh seeds each, started in the lane before the search ended
    assert len(started) == 4 and all(e["seq"] < phase_start for e in started)
    hidden = store.nodes(phase="hidden")
    lane_ids = {e["node_id"] for e in started}
    assert lane_ids <= {n.id for n in hidden} and all(n.status == NodeStatus.DONE for n in hidden)
    # every node ran once: one "running" event each, the lane's included
    running = Counter(e["node_id"] for e in _events(store, "node_running"))
    assert all(running[n.id] == 1 for n in hidden), running
    summary = store.get_meta("phase:hidden")
    rows = {r["label"]: r for r in summary["designs"]}
    assert len(rows["reference 0"]["values"]) == 2 and len(rows["reference 1"]["values"]) == 2
    # the lane's seeds are the phase's: fresh, never used by the search
    assert {n.seed for n in hidden} == set(summary["seeds"])
    assert not set(summary["seeds"]) & {n.seed for n in store.nodes(phase="search")}
    assert _most_at_once(store) == 1  # the local executor's default lane: one evaluation


def test_a_lane_evaluation_that_is_not_clean_is_run_again_by_its_phase(tmp_path, monkeypatch):
    c = Campaign.from_config(_config(), tmp_path / "run")
    failed: list[str] = []

    def fail_in_the_lane(self, job):  # the lane's run dies (e.g. killed at its timeout)
        failed.append(job.node_id)
        fut: Future[EvalOutcome] = Future()
        fut.set_result(EvalOutcome(node_id=job.node_id, status=NodeStatus.FAILED, error="timed out"))
        return fut

    from cambrian.plugins.executors.local import LocalExecutor
    monkeypatch.setattr(LocalExecutor, "submit_idle", fail_in_the_lane)
    c.run()
    store = Store(tmp_path / "run", create=False)
    assert len(failed) == 4 and len(set(failed)) == 4  # each tried once in the lane, never again there
    for node_id in failed:
        node = store.node(node_id)
        assert node.status == NodeStatus.DONE and node.error is None and "loss" in node.metrics
    dropped = [e for e in _events(store, "node_cancelled") if e["node_id"] in failed]
    assert len(dropped) == 4 and all("idle lane: failed: timed out" in e["payload"]["error"] for e in dropped)


def test_a_phase_that_waits_for_approval_is_not_run_ahead(tmp_path):
    c = Campaign.from_config(_config(approve=True), tmp_path / "run")
    result = c.run()
    assert result.reason == "awaiting_approval"
    store = Store(tmp_path / "run", create=False)
    assert not _events(store, "idle_evaluation_started") and not store.nodes(phase="hidden")


def test_without_an_idle_lane_the_phase_runs_everything_itself(tmp_path):
    cfg = _config()
    cfg["executor"]["options"]["idle_workers"] = 0
    Campaign.from_config(cfg, tmp_path / "run").run()
    store = Store(tmp_path / "run", create=False)
    assert not _events(store, "idle_evaluation_started")
    hidden = store.nodes(phase="hidden")
    assert len(hidden) == 6 and all(n.status == NodeStatus.DONE for n in hidden)


def _most_at_once(store: Store) -> int:
    """The most lane evaluations running at once, from the event log."""
    lane = {e["node_id"] for e in _events(store, "idle_evaluation_started")}
    now = most = 0
    for e in _events(store):
        if e["node_id"] in lane and e["kind"] == "idle_evaluation_started":
            now += 1
        elif e["node_id"] in lane and e["kind"] in ("node_done", "node_cancelled", "node_failed"):
            now -= 1
        most = max(most, now)
    return most


def test_the_lane_runs_as_many_at_once_as_the_executor_gives_it(tmp_path):
    cfg = _config()
    cfg["executor"]["options"]["idle_workers"] = 2
    Campaign.from_config(cfg, tmp_path / "run").run()
    assert _most_at_once(Store(tmp_path / "run", create=False)) == 2


def test_a_lane_evaluation_killed_with_the_run_is_cancelled_on_resume_and_run_again(tmp_path):
    cfg = _config()
    cfg["domain"]["options"]["sleep_s"] = 2.0
    cfg["budget"] = {"max_nodes": 4}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"

    def lane_running() -> bool:
        if not (run / Store.FILENAME).exists():
            return False
        s = Store(run, create=False)
        try:
            return any(s.node(e["node_id"]).status == NodeStatus.RUNNING
                       for e in s.events("idle_evaluation_started"))
        finally:
            s.close()

    kill_cli_run_when(["run", str(path), "--out", str(run), "--quiet"], lane_running, timeout_s=120, poll_s=0.1)
    s = Store(run, create=False)
    killed = [e["node_id"] for e in s.events("idle_evaluation_started")
              if s.node(e["node_id"]).status == NodeStatus.RUNNING]
    s.close()
    assert killed, "killed while a lane evaluation ran"
    out = subprocess.run([sys.executable, "-m", "cambrian.cli", "resume", str(run), "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    s = Store(run, create=False)
    unfinished = [(n.id, n.phase, n.agent, n.status.value) for n in s.nodes() if not n.status.finished]
    assert not unfinished, (unfinished, [(e["kind"], e["node_id"]) for e in s.events()][-40:])
    stopped = [e for e in s.events("node_cancelled") if e["node_id"] in killed]
    assert stopped and all("the run stopped before it finished" in e["payload"]["error"] for e in stopped)
    assert all(s.node(k).status == NodeStatus.DONE for k in killed)  # run again (lane or phase)
    assert s.get_meta("phase:hidden") is not None


def test_a_gpu_evaluation_is_left_to_its_phase(tmp_path, monkeypatch):
    import cambrian.plugins.executors.local as local

    monkeypatch.setattr(local, "uses_gpu", lambda job: True)  # idle CPU priority does not share a GPU
    Campaign.from_config(_config(), tmp_path / "run").run()
    store = Store(tmp_path / "run", create=False)
    assert not _events(store, "idle_evaluation_started") and not _events(store, "node_cancelled")
    hidden = store.nodes(phase="hidden")
    assert len(hidden) == 6 and all(n.status == NodeStatus.DONE for n in hidden)
