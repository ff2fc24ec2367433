"""Hostile candidates through a real campaign: each is contained, recorded with a reason, and the
campaign completes. Candidates are Python sources run by the python-code evaluator."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from pathlib import Path

import pytest

from cambrian import Campaign, NodeStatus, Store
from cambrian.plugins.domains.python_task import FitTask

SECRET = "sk-sandbox-test-0d9e8f"
RUN = "from pathlib import Path\nRUN = Path.cwd().parents[3]  # run/evals/<id>/work/candidate\n"
GOOD = "import math\ndef solve(xs):\n    return [math.sin(3 * x) + 0.5 * x for x in xs]\n"

CASES = {
    "good": GOOD,
    "raises": "def solve(xs):\n    raise RuntimeError('boom from the candidate')\n",
    "segfault": "import ctypes\ndef solve(xs):\n    return ctypes.string_at(0)\n",
    "hang": "def solve(xs):\n    while True:\n        pass\n",
    "fork_bomb": "import os\ndef solve(xs):\n    while True:\n        os.fork()\n",
    "memory": "def solve(xs):\n    hog = []\n    while True:\n        hog.append(bytearray(64 * 2**20))\n",
    "write_store": RUN + "def solve(xs):\n    open(RUN / 'store.sqlite', 'ab').write(b'garbage')\n",
    "write_result": RUN + "def solve(xs):\n"
                    "    (Path.cwd().parents[1] / 'result.json').write_text('{}')\n",
    "network": "import socket\ndef solve(xs):\n    socket.create_connection(('127.0.0.1', PORT), timeout=5)\n"
               "    return [0.0] * len(xs)\n",
    "env": "import glob, os\ndef solve(xs):\n"
           "    leaked = [k for k, v in os.environ.items() if 'SECRET' in v or 'sk-' in v or 'KEY' in k]\n"
           "    for f in glob.glob('/proc/[0-9]*/environ'):\n"
           "        try:\n            data = open(f, 'rb').read()\n        except OSError:\n            continue\n"
           "        if (b'SECRET_HEAD' + b'SECRET_TAIL') in data:\n            leaked.append(f)\n"
           "    if leaked:\n        raise RuntimeError(f'leaked: {leaked}')\n"
           "    assert os.environ['HOME'] == os.getcwd()\n"
           "    return [0.5 * x for x in xs]\n",
    "fake_metric": "def solve(xs):\n    print('loss: 0.0')\n    print('{\"loss\": 0.0, \"max_error\": 0.0}')\n"
                   "    for name in ('result.json', 'metrics.json'):\n"
                   "        open(name, 'w').write('{\"loss\": 0.0}')\n"
                   "    return [0.0] * len(xs)\n",
    "daemon": "import os, time\ndef solve(xs):\n    if os.fork() == 0:\n        os.setsid()\n"
              "        if os.fork() == 0:\n            time.sleep(600)\n        os._exit(0)\n"
              "    return [0.25 * x for x in xs]\n",
    "nan": "def solve(xs):\n    return [float('nan')] * len(xs)\n",
    # its own PID namespace's /proc: itself and its runner only, no host process or command line
    "proc_view": "import os\ndef solve(xs):\n    pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
                 "    lines = [open(f'/proc/{p}/cmdline', 'rb').read() for p in pids]\n"
                 "    if len(pids) > 4 or any(b'pytest' in c for c in lines):\n"
                 "        raise RuntimeError(f'sees the host: {len(pids)} processes')\n"
                 "    return [0.125 * x for x in xs]\n",
    # many files, each under the file-size limit, together over the disk quota
    "disk_quota": "import time\ndef solve(xs):\n    for i in range(64):\n"
                  "        open(f'blob{i}', 'wb').write(b'x' * (4 << 20))\n        time.sleep(0.05)\n"
                  "    time.sleep(30)\n",
    "world_writable": "def solve(xs):\n    for d in ('/tmp', '/var/tmp', '/run/lock', '/dev/shm'):\n"
                      "        try:\n            open(d + '/cambrian-left-behind', 'w').write('x')\n"
                      "        except OSError:\n            continue\n"
                      "        if d != '/dev/shm':\n            raise RuntimeError(f'{d} is writable')\n"
                      "    return [0.0625 * x for x in xs]\n",
}


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.setblocking(False)
    sources = {k: v.replace("PORT", str(listener.getsockname()[1])).replace("SECRET_HEAD", SECRET[:8]).replace("SECRET_TAIL", SECRET[8:])
               for k, v in CASES.items()}
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_API_KEY", SECRET)
    mp.setenv("CAMBRIAN_TEST_SECRET", SECRET)
    run = tmp_path_factory.mktemp("adversarial") / "run"
    cfg = {"name": "adversarial", "seed": 0,
           "domain": {"name": "python-task", "options": {"seeds": list(sources.values())}},
           "executor": {"name": "local", "options": {"workers": 2}},
           "budget": {"max_nodes": len(sources)},
           # The worker's timeout is generous (busy CI machines); the candidate's is short.
           "evaluator": {"name": "python-code", "options": {"candidate_timeout_s": 8}},
           "sandbox": {"timeout_s": 60, "memory_mb": 256, "max_procs": 32, "disk_mb": 64},
           "agents": [{"name": "a", "operators": ["seeds"], "max_in_flight": 2}]}
    try:
        result = Campaign.from_config(cfg, run).run()
    finally:
        mp.undo()
    nodes = {next(k for k, v in sources.items() if v == n.candidate.content): n
             for n in Store(run, create=False).nodes()}
    try:
        listener.accept()[0].close()
        connected = True
    except BlockingIOError:
        connected = False
    listener.close()
    yield {"result": result, "nodes": nodes, "run": run, "connected": connected}


def sandbox_record(c, case) -> dict:
    return json.loads((c["run"] / "evals" / c["nodes"][case].id / "work" / "sandbox.json").read_text())


def test_the_campaign_completes_with_every_case_recorded(campaign):
    assert campaign["result"].reason == "max_nodes"
    assert set(campaign["nodes"]) == set(CASES)
    assert all(n.status.finished for n in campaign["nodes"].values())
    assert campaign["result"].best.id == campaign["nodes"]["good"].id


def test_good_code_scores_zero_loss(campaign):
    n = campaign["nodes"]["good"]
    assert n.status == NodeStatus.DONE and n.metrics["loss"].value == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("case, reason", [
    ("raises", "RuntimeError: boom from the candidate"),
    ("segfault", "SIGSEGV"),
    ("hang", "timed out after"),
    ("fork_bomb", "process limit: at most 32"),
    ("memory", "out of memory: the limit is 256 MB"),
    ("write_store", "Permission denied"),
    ("write_result", "Permission denied"),
    ("network", "no network in the sandbox"),
    ("disk_quota", "disk quota exceeded"),
])
def test_hostile_code_fails_with_a_readable_reason(campaign, case, reason):
    n = campaign["nodes"][case]
    assert n.status == NodeStatus.FAILED and n.metrics == {}
    assert reason in n.error and n.error.startswith("CandidateFailed: the candidate")


def test_writes_outside_the_workdir_changed_nothing(campaign):
    run = campaign["run"]
    assert sqlite3.connect(run / "store.sqlite").execute("PRAGMA integrity_check").fetchone() == ("ok",)
    result = json.loads((run / "evals" / campaign["nodes"]["write_result"].id / "result.json").read_text())
    assert result["status"] == "failed"  # the harness's own result, not the candidate's '{}'


def test_no_connection_reached_the_host(campaign):
    assert not campaign["connected"]
    assert sandbox_record(campaign, "network")["network_isolated"] is True


def test_api_keys_are_not_visible_to_candidates(campaign):
    assert campaign["nodes"]["env"].status == NodeStatus.DONE  # it raises if it finds a key
    for f in campaign["run"].rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f


def test_printed_or_written_metrics_are_ignored(campaign):
    n = campaign["nodes"]["fake_metric"]
    task = FitTask()
    truth = task.score([0.0] * task.points, "val", 0)
    assert n.status == NodeStatus.DONE
    assert n.metrics["loss"].value == pytest.approx(truth["loss"]) and truth["loss"] > 0.1


def test_escaped_daemons_die_with_the_sandbox(campaign):
    rec = sandbox_record(campaign, "daemon")
    assert campaign["nodes"]["daemon"].status == NodeStatus.DONE and rec["pids_isolated"]
    uid = rec["uid"]
    assert uid is not None and uid != 0
    alive = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _uid(p) == uid]
    assert alive == []


def _uid(proc: Path) -> int | None:
    try:
        return proc.stat().st_uid
    except OSError:
        return None


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid drop needs root")
def test_candidates_ran_as_throwaway_uids(campaign):
    uids = {sandbox_record(campaign, k)["uid"] for k in CASES}
    assert None not in uids and 0 not in uids and len(uids) == len(CASES)


def test_a_nan_objective_is_invalid_and_ranks_nowhere(campaign):
    n = campaign["nodes"]["nan"]
    assert n.status == NodeStatus.INVALID and "loss" not in n.metrics
    assert "objective is nan" in n.error
    assert campaign["result"].best.id != n.id


@pytest.mark.skipif(os.geteuid() != 0, reason="a private /proc and read-only world dirs need root")
def test_the_candidate_sees_only_its_own_processes_and_no_writable_world_dirs(campaign):
    for case in ("proc_view", "world_writable"):
        assert campaign["nodes"][case].status == NodeStatus.DONE, campaign["nodes"][case].error
    for d in ("/tmp", "/var/tmp", "/run/lock"):
        assert not Path(d, "cambrian-left-behind").exists()


def test_the_disk_quota_stopped_the_writer_early(campaign):
    work = campaign["run"] / "evals" / campaign["nodes"]["disk_quota"].id / "work" / "candidate"
    written = sum(f.stat().st_size for f in work.glob("blob*"))
    assert 48 << 20 < written < 256 << 20  # killed near the 64 MB quota, long before its 256 MB
