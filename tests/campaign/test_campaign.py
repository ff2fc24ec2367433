"""End-to-end campaigns through the Python API and the CLI, including SIGKILL + resume."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from cambrian import Campaign, NodeStatus, Store

from ..conftest import kill_cli_run_when, toy_config

CLI = [sys.executable, "-m", "cambrian.cli"]


def test_python_api_campaign_writes_store_and_leaderboard(tmp_path):
    c = Campaign.from_config(toy_config(), tmp_path / "run")
    result = c.run()
    assert result.reason == "max_nodes"
    store = Store(tmp_path / "run", create=False)
    nodes = store.nodes()
    assert len(nodes) == 6 and all(n.status == NodeStatus.DONE for n in nodes)
    board = c.leaderboard()
    assert board[0] == result.best
    assert [n.score(c.objective) for n in board] == sorted(n.score(c.objective) for n in board)
    assert store.get_meta("config")["domain"]["name"] == "toy"
    assert store.get_meta("header")["python"]


def test_existing_run_dir_is_refused(tmp_path):
    Campaign.from_config(toy_config(budget={"max_nodes": 1}), tmp_path).run()
    import pytest

    from cambrian import CambrianError

    with pytest.raises(CambrianError, match="cambrian resume"):
        Campaign.from_config(toy_config(), tmp_path)


def _write_cfg(tmp_path: Path, **over) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(toy_config(**over)))
    return p


def test_cli_run_show_report(tmp_path):
    cfg = _write_cfg(tmp_path)
    out = subprocess.run([*CLI, "run", str(cfg), "--out", str(tmp_path / "r"), "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Leaderboard" in out.stdout and "report:" in out.stdout
    assert (tmp_path / "r" / "report.html").is_file()
    show = subprocess.run([*CLI, "show", str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert show.returncode == 0 and "stopped (max_nodes)" in show.stdout


def _cli_error(args, tmp_path):
    out = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("domain: toy\nagents: [\n")
    assert "malformed YAML" in _cli_error(["run", str(bad)], tmp_path)
    unknown_key = _write_cfg(tmp_path, colour="red")
    assert "colour: unknown key" in _cli_error(["run", str(unknown_key)], tmp_path)
    unknown_comp = _write_cfg(tmp_path, agents=[{"name": "a", "scaffold": "nosuch"}])
    assert "unknown scaffold 'nosuch'" in _cli_error(["run", str(unknown_comp)], tmp_path)
    assert "not found" in _cli_error(["run", str(tmp_path / "missing.yaml")], tmp_path)
    assert "no campaign store" in _cli_error(["show", str(tmp_path / "nowhere")], tmp_path)
    assert "must look like" in _cli_error(["run", str(unknown_comp), "--set", "agents"], tmp_path)


def test_help_on_every_command(tmp_path):
    for cmd in ([], ["plugins"], ["run"], ["resume"], ["show"], ["report"]):
        out = subprocess.run([*CLI, *cmd, "--help"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "Usage" in out.stdout, (cmd, out.stderr)


def _done_metrics(run: Path) -> dict[str, float]:
    s = Store(run, create=False)
    try:
        return {n.id: n.metrics["loss"].value for n in s.nodes() if n.status == NodeStatus.DONE}
    finally:
        s.close()


def test_sigkill_mid_run_then_resume_loses_and_repeats_nothing(tmp_path):
    cfg = _write_cfg(tmp_path, budget={"max_nodes": 14},
                     domain={"name": "toy", "options": {"dim": 3, "sleep_s": 0.4}},
                     agents=[{"name": "a", "scaffold": "random"}, {"name": "b", "scaffold": "random"}])
    run = tmp_path / "run"
    tmp = tmp_path / "tmp"  # the killed campaign's temporary folders (its fork server's) land here
    tmp.mkdir()
    before: dict[str, float] = {}

    def four_done() -> bool:
        if (run / Store.FILENAME).exists():
            before.update(_done_metrics(run))
        return len(before) >= 4

    kill_cli_run_when(["run", str(cfg), "--out", str(run), "--quiet"], four_done, 120, poll_s=0.3,
                      env={**os.environ, "TMPDIR": str(tmp)})
    assert 4 <= len(before) < 14, "the kill must land mid-run"
    for _ in range(600):  # the fork server (its own session) sees its campaign gone and removes its folder
        if not list(tmp.glob("cambrian-forkserver-*")):
            break
        time.sleep(0.2)
    assert not list(tmp.glob("cambrian-forkserver-*"))
    before = _done_metrics(run)  # anything that finished before the kill landed
    out = subprocess.run([*CLI, "resume", str(run), "--quiet"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    s = Store(run, create=False)
    nodes = s.nodes()
    assert len(nodes) == 14 and all(n.status == NodeStatus.DONE for n in nodes)
    after = {n.id: n.metrics["loss"].value for n in nodes}
    assert all(after[k] == v for k, v in before.items())  # nothing finished was lost or changed
    done_events = [e["node_id"] for e in s.events() if e["kind"] == "node_done"]
    assert sorted(done_events) == sorted(after)  # each node finished exactly once
    assert [e["kind"] for e in s.events("campaign_resumed")] == ["campaign_resumed"]
    assert json.loads(json.dumps(s.get_meta("config")))["budget"]["max_nodes"] == 14


def _phase_started(run: Path) -> bool:
    s = Store(run, create=False)
    try:
        return bool(s.events("phase_started")) and any(
            n.status == NodeStatus.DONE for n in s.nodes(phase="hidden"))
    finally:
        s.close()


def test_sigkill_during_phase_then_resume_repeats_nothing(tmp_path):
    cfg = _write_cfg(tmp_path, budget={"max_nodes": 6},
                     domain={"name": "toy", "options": {"dim": 3, "sleep_s": 0.3}},
                     phases={"hidden": {"top_k": 3, "seeds": 3}})
    run = tmp_path / "run"
    kill_cli_run_when(["run", str(cfg), "--out", str(run), "--quiet"],
                      lambda: (run / Store.FILENAME).exists() and _phase_started(run), 180)
    s = Store(run, create=False)
    hidden_before = {n.id: n.metrics["loss"].value for n in s.nodes(phase="hidden")
                     if n.status == NodeStatus.DONE}
    assert 1 <= len(hidden_before) < 9 and s.get_meta("phase:hidden") is None, "kill mid-phase"
    s.close()
    out = subprocess.run([*CLI, "resume", str(run), "--quiet"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    s = Store(run, create=False)
    hidden = s.nodes(phase="hidden")
    assert len(hidden) == 9 and all(n.status == NodeStatus.DONE for n in hidden)
    assert all(n.split == "hidden" for n in hidden)
    assert all({n.id: n.metrics["loss"].value for n in hidden}[k] == v for k, v in hidden_before.items())
    done = [e["node_id"] for e in s.events("node_done")]
    assert len(done) == len(set(done)) == 6 + 9  # every search and phase node evaluated once
    summary = s.get_meta("phase:hidden")
    assert len(summary["designs"]) == 3 and summary["seeds"] == [1000, 1001, 1002]  # fresh seeds
    assert all(d["mean"] is not None and len(d["values"]) == 3 for d in summary["designs"])
    assert (run / "report.html").is_file()


def test_search_takes_a_phase_result_for_the_same_job_instead_of_training_again(tmp_path, monkeypatch):
    """A reference trained before search (campaign seed, full budget) is not trained again when
    the search asks for that exact job (as halving's promote_seeds does); another seed is."""
    from cambrian import Candidate, Phase
    from cambrian.plugins.domains.toy.domain import ToyDomain

    ref = Candidate(kind="vector", content=[0.5, -0.25, 0.125])

    class References(Phase):
        name = "references"
        before_search = True

        def run(self, campaign):
            nodes = campaign.evaluate([ref], phase="references", split="val", seeds=(7, 8))
            return {"nodes": [n.id for n in nodes]}

    monkeypatch.setattr(ToyDomain, "seeds", lambda self, rng: [ref])
    monkeypatch.setattr(ToyDomain, "phases", lambda self, options: [References()])
    cfg = toy_config(seed=7, budget={"max_nodes": 1},
                     domain={"name": "toy", "options": {"dim": 3, "function": "sphere", "noise": 0.5}})
    cfg["agents"] = [{"name": "a", "operators": ["seeds"], "scaffold": {"name": "greedy"}}]
    c = Campaign.from_config(cfg, tmp_path / "run")
    c.run()
    store = c.open_store()
    (at7, at8), (search,) = store.nodes(phase="references"), store.nodes(phase="search")
    assert at7.seed == 7 and at8.seed == 8 and at7.metrics["loss"].value != at8.metrics["loss"].value
    assert search.seed == 7 and search.candidate.hash == ref.hash and search.status == NodeStatus.DONE
    assert search.metrics == at7.metrics and search.cost.cpu_s == 0  # taken, not spent again
    assert [e["payload"]["source"] for e in store.events("evaluation_reused")] == [at7.id]
    assert not (c.run_dir / "evals" / search.id).exists()  # nothing ran for it
