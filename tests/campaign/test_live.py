"""The terminal path: ``cambrian run`` under a real pseudo-terminal, and the live view's arithmetic."""

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from types import SimpleNamespace

from rich.console import Console

from cambrian.campaign.engine import Campaign
from cambrian.core.config import parse_config
from cambrian.core.records import Budget, Cost
from cambrian.plugins.reporting.live import LiveView, budget_used, clock, eta_s, search_fraction

from ..conftest import toy_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOY = os.path.join(ROOT, "cambrian", "configs", "toy.yaml")
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def run_in_pty(args, cwd, timeout=300.0, **env_vars):
    """Run ``python -m cambrian.cli ARGS`` on a pseudo-terminal (120 x 40); returns (rc, text)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "TERM")}
    env.update(TERM="xterm-256color", **env_vars)
    proc = subprocess.Popen([sys.executable, "-m", "cambrian.cli", *args], stdin=slave, stdout=slave,
                            stderr=slave, cwd=cwd, env=env, close_fds=True)
    os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
        rc = proc.wait(timeout=30)
    finally:
        os.close(master)
    return rc, ANSI.sub(b"", out).decode(errors="replace").replace("\r", "")


def test_run_on_a_terminal_shows_the_live_view_and_finishes(tmp_path):
    run, tmp = tmp_path / "run", tmp_path / "tmp"
    tmp.mkdir()
    rc, text = run_in_pty(["run", TOY, "--out", str(run), "--set", "budget.max_nodes=6"], cwd=tmp_path,
                          TMPDIR=str(tmp))
    assert rc == 0, text[-3000:]
    assert "Traceback" not in text
    # the live view was drawn: the header with the clock and ETA, one row per agent
    assert re.search(r"toy  elapsed \d+:\d\d  nodes \d+ \(\d+ finished\)  budget: nodes \d+%", text), text[-3000:]
    assert "search ETA" in text or "search budget spent" in text
    for agent in ("random-a", "random-b", "random-c"):
        assert re.search(rf"{agent}\s+random\s", text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    assert lines[-2] == "stopped: max_nodes; nodes: {'done': 6}", lines[-5:]
    assert lines[-1] == f"report: {run / 'report.html'}"
    assert (run / "report.html").is_file()
    assert list(tmp.iterdir()) == []  # the fork server's folder went with it


def test_budget_fraction_and_eta():
    b = Budget(max_nodes=10, wall_s=100.0, llm_tokens=1000)
    assert budget_used(b, 5, 20.0, Cost(llm_prompt_tokens=100)) == {"max_nodes": 0.5, "wall_s": 0.2,
                                                                    "llm_tokens": 0.1}
    assert budget_used(Budget(), 5, 20.0, Cost()) == {}
    assert clock(65) == "1:05" and clock(3725) == "1:02:05" and clock(None) == "?"

    def fake(budget, agents=(), elapsed=30.0):
        return SimpleNamespace(config=SimpleNamespace(budget=budget), agents=list(agents),
                               elapsed=lambda: elapsed, usage=lambda agent=None: Cost())

    c = fake(Budget(max_nodes=10))
    assert search_fraction(c, {None: 4}) == 0.4
    assert eta_s(c, 0.4) == 45.0  # 30 s for 40%: 45 s for the other 60%
    c = fake(Budget(max_nodes=10, wall_s=40.0))
    assert eta_s(c, search_fraction(c, {None: 4})) == 10.0  # the wall clock ends it sooner
    # no campaign limit: search ends when the slowest agent reaches its own
    agents = [SimpleNamespace(name="a", stopped=None, config=SimpleNamespace(budget=Budget(max_nodes=4))),
              SimpleNamespace(name="b", stopped=None, config=SimpleNamespace(budget=Budget(max_nodes=8)))]
    assert search_fraction(fake(Budget(), agents), {None: 6, "a": 4, "b": 2}) == 0.25
    assert search_fraction(fake(Budget(), agents[:1] + [SimpleNamespace(
        name="c", stopped=None, config=SimpleNamespace(budget=Budget()))]), {None: 0}) is None


def test_live_view_renders_before_and_during_a_run(tmp_path):
    campaign = Campaign(parse_config(toy_config()), tmp_path / "never-written")
    console = Console(width=120, record=True, force_terminal=False)
    view = LiveView(campaign)
    console.print(view)  # before run() prepared anything
    text = console.export_text()
    assert "t  elapsed 0:00  nodes 0 (0 finished)  budget: nodes 0%" in text
    assert "a      random" in text or re.search(r"\ba\s+random\b", text)
    view.on_update(campaign, {"kind": "allocation_changed", "agent": "a", "paused": True, "reason": "behind"})
    view.on_update(campaign, {"kind": "phase_started", "phase": "hidden"})
    console.print(view)
    text = console.export_text()
    assert "paused: behind" in text and "phase hidden started" in text
    assert not (tmp_path / "never-written").exists()
