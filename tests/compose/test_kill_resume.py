"""A 2-agent compose campaign killed with SIGKILL during search and again during the
scaling steps, resumed each time with `cambrian resume`: nothing lost, nothing repeated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from cambrian import NodeStatus, Store
from tests.compose.tiny import tiny_config

CLI = [sys.executable, "-m", "cambrian.cli"]


def _snapshot(run: Path) -> tuple[dict[str, float], list[str]]:
    """Finished nodes' scores and the phases started so far (empty before the store exists)."""
    if not (run / Store.FILENAME).exists():
        return {}, []
    s = Store(run, create=False)
    try:
        done = {n.id: n.metrics["score"].value for n in s.nodes() if n.status == NodeStatus.DONE}
        return done, [e["payload"]["phase"] for e in s.events("phase_started")]
    finally:
        s.close()


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *args, "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def _kill_when(proc: subprocess.Popen, run: Path, ready, timeout: float = 600) -> dict[str, float]:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        done, phases = _snapshot(run)
        if ready(done, phases):
            break
        time.sleep(0.2)
    assert proc.poll() is None, f"the campaign ended before the kill: {proc.stderr.read().decode()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return _snapshot(run)[0]


def test_kill_during_search_and_scaling_then_resume(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(max_nodes=5)))
    run = tmp_path / "run"

    first = _kill_when(_start(["run", str(cfg), "--out", str(run)]), run,
                       lambda done, phases: len(done) >= 2)
    s = Store(run, create=False)
    assert len([n for n in s.nodes(phase="search") if n.status == NodeStatus.DONE]) < 5, "kill mid-search"
    s.close()

    second = _kill_when(_start(["resume", str(run)]), run,
                        lambda done, phases: "scaling" in phases and any(
                            n for n in _scaling_done(run)))
    assert all(second[k] == v for k, v in first.items())  # nothing finished was lost or changed
    s = Store(run, create=False)
    assert s.get_meta("phase:scaling") is None, "kill mid-scaling"
    s.close()

    out = subprocess.run([*CLI, "resume", str(run), "--quiet"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    s = Store(run, create=False)
    nodes = s.nodes()
    final = {n.id: n for n in nodes}
    assert all(final[k].metrics["score"].value == v for k, v in second.items())
    assert len(s.nodes(phase="search")) == 5
    assert all(n.status.finished for n in nodes)
    done = [e["node_id"] for e in s.events("node_done")]
    assert len(done) == len(set(done))  # no evaluation finished twice
    for phase in ("aggregation", "scaling", "hidden"):
        assert s.get_meta(f"phase:{phase}") is not None
    assert [e["kind"] for e in s.events("campaign_resumed")] == ["campaign_resumed"] * 2
    assert (run / "report.html").is_file()


def _scaling_done(run: Path) -> list[str]:
    s = Store(run, create=False)
    try:
        return [n.id for n in s.nodes() if n.phase.startswith("scal") and n.status == NodeStatus.DONE]
    finally:
        s.close()
