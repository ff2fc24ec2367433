"""The sandbox itself: uid drop, process limit, namespaces, scrubbed environment, warnings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from cambrian.execution import sandbox
from cambrian.core.config import SandboxLimits
from cambrian.execution.sandbox import run_sandboxed

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0 or sandbox._setpriv() is None,
                               reason="the uid drop needs root and setpriv")


def py(code: str) -> list[str]:
    return [sys.executable, "-I", "-c", code]


@ROOT_ONLY
def test_unprivileged_code_writes_only_in_its_workdir(tmp_path):
    guarded = tmp_path / "guarded.txt"
    guarded.write_text("original")
    code = ("import os\nopen('mine.txt', 'w').write('ok')\n"
            f"try:\n    open({str(guarded)!r}, 'w').write('x')\nexcept PermissionError:\n    print('denied')\n"
            "print(os.getuid())")
    res = run_sandboxed(py(code), tmp_path / "w", SandboxLimits(timeout_s=60), unprivileged=True)
    assert res.returncode == 0, res.stderr_tail
    lines = res.stdout_tail.split()
    assert lines[0] == "denied" and int(lines[1]) == res.uid != 0
    assert guarded.read_text() == "original" and (tmp_path / "w" / "mine.txt").read_text() == "ok"


@ROOT_ONLY
def test_process_limit_binds_even_when_the_campaign_is_root(tmp_path):
    code = ("import os, time\nn = 0\ntry:\n    for _ in range(64):\n        if os.fork() == 0:\n"
            "            time.sleep(30)\n            os._exit(0)\n        n += 1\n"
            "except OSError as e:\n    print('stopped', n)\n")
    res = run_sandboxed(py(code), tmp_path / "w", SandboxLimits(timeout_s=60, max_procs=8), unprivileged=True)
    assert res.returncode == 0 and res.stdout_tail.split()[0] == "stopped"
    assert int(res.stdout_tail.split()[1]) < 8
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _uid(p) == res.uid]


@ROOT_ONLY
def test_timeout_kills_descendants_that_left_the_session(tmp_path):
    code = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\n"
            "time.sleep(600)\n")
    res = run_sandboxed(py(code), tmp_path / "w", SandboxLimits(timeout_s=3), unprivileged=True)
    assert res.timed_out and "timed out" in res.reason and res.pids_isolated
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _uid(p) == res.uid]


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")
def test_idle_priority_runs_the_process_under_sched_idle(tmp_path):
    code = ("import os\ntry:\n    group = open('/proc/self/autogroup').read().split()[-1]\n"
            "except OSError:\n    group = 'none'\nprint(os.sched_getscheduler(0), group)")
    seen = [run_sandboxed(py(code), tmp_path / f"w{idle}", SandboxLimits(timeout_s=60, idle_priority=idle)
                          ).stdout_tail.split() for idle in (False, True)]
    assert [int(s[0]) for s in seen] == [os.SCHED_OTHER, os.SCHED_IDLE]
    if seen[0][1] != "none":  # autogroups: its session's nice is raised too, the others' not
        assert [s[1] for s in seen] == ["0", "19"]


def test_environment_is_scrubbed(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "also-secret")
    code = "import os, json; print(json.dumps(sorted(os.environ)))"
    res = run_sandboxed(py(code), tmp_path / "w", SandboxLimits(timeout_s=60))
    assert res.returncode == 0
    assert "OPENAI_API_KEY" not in res.stdout_tail and "AWS_SECRET" not in res.stdout_tail
    assert '"HOME"' in res.stdout_tail


def test_network_namespace_has_no_route(tmp_path):
    if not sandbox.namespace_prefix(False)[1]:
        pytest.skip("no network namespace on this machine")
    code = ("import socket\ntry:\n    socket.create_connection(('1.1.1.1', 80), timeout=5)\n"
            "except OSError as e:\n    print('blocked', e.errno)\n")
    res = run_sandboxed(py(code), tmp_path / "w", SandboxLimits(timeout_s=60))
    assert res.stdout_tail.startswith("blocked") and res.network_isolated and res.warnings == ()


def test_missing_protections_are_reported_as_warnings(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "namespace_prefix", lambda network=False: ((), False, False))
    monkeypatch.setattr(sandbox, "sandbox_uid", lambda: None)
    res = run_sandboxed(py("print('hi')"), tmp_path / "w", SandboxLimits(timeout_s=60), unprivileged=True)
    assert res.returncode == 0
    text = " | ".join(res.warnings)
    assert "no network namespace" in text and "no PID namespace" in text and "own user" in text


def test_network_allowed_is_not_a_warning(tmp_path):
    res = run_sandboxed(py("pass"), tmp_path / "w", SandboxLimits(timeout_s=60, network=True))
    assert not res.network_isolated and not any("network" in w for w in res.warnings)


def _uid(proc: Path) -> int | None:
    try:
        return proc.stat().st_uid
    except OSError:
        return None


@ROOT_ONLY
def test_world_writable_places_are_read_only_but_the_workdir(request):
    if not sandbox._lock_tmp_ok():
        pytest.skip("no mount namespace on this machine")
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(dir="/tmp"))  # under /tmp, like most test run directories
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    base.chmod(0o755)
    readable = base / "data.txt"
    readable.write_text("data")
    tmp_path = base
    marker = f"cambrian-sandbox-{os.getpid()}"
    code = (f"import os\nprint(open({str(readable)!r}).read())\n"
            f"for d in ('/tmp', '/var/tmp'):\n    try:\n        open(d + '/{marker}', 'w')\n"
            "    except OSError as e:\n        print(e.errno)\n"
            f"open('/dev/shm/{marker}', 'w').write('x')\n"
            "open(os.path.join(os.getcwd(), 'mine.txt'), 'w').write('ok')\n")
    res = run_sandboxed(py(code), tmp_path / "w", SandboxLimits(timeout_s=60), unprivileged=True)
    assert res.returncode == 0, res.stderr_tail
    assert res.tmp_locked and res.stdout_tail.split() == ["data", "30", "30"]  # EROFS twice
    assert (tmp_path / "w" / "mine.txt").read_text() == "ok"
    assert not any(Path(d, marker).exists() for d in ("/tmp", "/var/tmp", "/dev/shm"))
