"""The warm fork server: workers forked from one pre-imported process, confined like fresh ones."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from cambrian.core.config import SandboxLimits
from cambrian.execution.forkserver import ForkServer

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux fork server")

ENTRIES = "tests.sandbox.forkserver_entries"
SECRET = "sk-forkserver-test-31c2"


@pytest.fixture(scope="module")
def server():
    os.environ["CAMBRIAN_TEST_SECRET"] = SECRET  # in the campaign's environment, never the worker's
    try:
        fs = ForkServer(preload=["torch"])
    finally:
        del os.environ["CAMBRIAN_TEST_SECRET"]
    yield fs
    fs.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def test_worker_is_confined_and_reports_its_exit(server, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    reports = []
    for i in range(2):
        work = tmp_path / f"w{i}"
        limits = SandboxLimits(timeout_s=60, threads=2, idle_priority=i == 1)
        res = server.spawn(f"{ENTRIES}:report", [str(port), "3"], work, limits).wait()
        assert res.returncode == 3 and not res.timed_out
        assert res.stdout_tail.strip() == "to stdout" and res.stderr_tail.strip() == "to stderr"
        assert res.cpu_s > 0 and res.max_rss_mb > 0
        reports.append(json.loads((work / "report.json").read_text()))
    listener.close()
    r = reports[0]
    assert r["cwd"] == str(tmp_path / "w0")
    assert SECRET not in json.dumps(r["env"]) and r["env"]["HOME"] == str(tmp_path / "w0")
    assert r["env"]["OMP_NUM_THREADS"] == "2" and r["torch_threads"] == 2
    if server.network_isolated:
        assert r["network"].startswith("blocked")
    if server.pids_isolated:
        assert r["pid"] == 1
    assert reports[0]["random"] != reports[1]["random"]  # reseeded after the fork
    assert [r["policy"] for r in reports] == [os.SCHED_OTHER, os.SCHED_IDLE]  # the idle lane's priority
    if r["autogroup"] is not None:  # and its session's nice where the kernel groups by session
        assert [r["autogroup"] for r in reports] == ["0", "19"]


def test_timeout_kills_the_worker_and_what_left_its_session(server, tmp_path):
    limits = SandboxLimits(timeout_s=3)
    t0 = time.monotonic()
    res = server.spawn(f"{ENTRIES}:daemon_then_sleep", [], tmp_path, limits).wait()
    assert res.timed_out and res.returncode is None and "timed out" in res.reason
    assert time.monotonic() - t0 < 60
    daemon = int((tmp_path / "daemon.pid").read_text())
    for _ in range(100):  # the PID namespace dies asynchronously after its init
        if not _alive(daemon):
            break
        time.sleep(0.05)
    assert not _alive(daemon)


def test_kill_stops_a_running_worker(server, tmp_path):
    proc = server.spawn(f"{ENTRIES}:daemon_then_sleep", [], tmp_path, SandboxLimits(timeout_s=300))
    time.sleep(0.5)
    proc.kill()
    res = proc.wait()
    assert proc.killed and not res.timed_out and res.returncode == -signal.SIGKILL


def test_memory_limit_counts_beyond_the_preloaded_imports(server, tmp_path):
    small = SandboxLimits(memory_mb=256)
    res = server.spawn(f"{ENTRIES}:hog", ["2"], tmp_path / "fits", small).wait()
    assert res.returncode == 0, res.stderr_tail
    res = server.spawn(f"{ENTRIES}:hog", ["16"], tmp_path / "too_much", small).wait()
    assert res.returncode == 1 and "MemoryError" in res.stderr_tail


def test_a_crash_is_reported_with_its_signal(server, tmp_path):
    res = server.spawn(f"{ENTRIES}:segfault", [], tmp_path, SandboxLimits()).wait()
    assert res.returncode == -signal.SIGSEGV and "SIGSEGV" in res.reason


def test_a_dead_server_fails_what_it_ran_and_the_executor_restarts_it(tmp_path):
    from cambrian.plugins.executors.local import LocalExecutor

    fs = ForkServer(preload=[])
    proc = fs.spawn(f"{ENTRIES}:daemon_then_sleep", [], tmp_path / "a", SandboxLimits(timeout_s=300))
    os.kill(fs.pid, signal.SIGKILL)
    res = proc.wait()
    assert res.returncode == 1 and "fork server exited" in res.stderr_tail
    assert not fs.alive

    ex = LocalExecutor(workers=1, preload=[])
    first = ex._fork_server()
    os.kill(first.pid, signal.SIGKILL)
    first.close()
    second = ex._fork_server()
    assert second is not first and second.alive
    ex.shutdown()
    assert not second.alive


def test_server_and_workers_die_with_the_campaign_process(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from cambrian.core.config import SandboxLimits
        from cambrian.execution.forkserver import ForkServer
        fs = ForkServer(preload=[])
        fs.spawn("{ENTRIES}:daemon_then_sleep", [], Path(sys.argv[1]), SandboxLimits(timeout_s=300))
        print(fs.pid, flush=True)
        time.sleep(600)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    campaign = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE,
                                text=True, env=env)
    server_pid = int(campaign.stdout.readline())
    for _ in range(200):
        if (tmp_path / "daemon.pid").exists() and (tmp_path / "daemon.pid").read_text():
            break
        time.sleep(0.05)
    daemon = int((tmp_path / "daemon.pid").read_text())
    campaign.kill()
    campaign.wait()
    for _ in range(200):
        if not _alive(server_pid) and not _alive(daemon):
            break
        time.sleep(0.05)
    assert not _alive(server_pid) and not _alive(daemon)


def test_the_domain_names_what_the_server_preloads(tmp_path):
    """The fork server's own default is generic; the campaign passes the domain's preload."""
    from cambrian.execution.forkserver import DEFAULT_PRELOAD
    from cambrian.plugins.executors.local import LocalExecutor

    assert not any(m.startswith("cambrian.") for m in DEFAULT_PRELOAD)
    ex = LocalExecutor(workers=1, worker_preload=("xml.dom.minidom",))
    try:
        proc = ex._fork_server().spawn(f"{ENTRIES}:loaded", ["xml.dom.minidom", "wave"], tmp_path,
                                       SandboxLimits(timeout_s=120))
        assert proc.wait().returncode == 0
        assert json.loads((tmp_path / "loaded.json").read_text()) == {"xml.dom.minidom": True, "wave": False}
    finally:
        ex.shutdown()
