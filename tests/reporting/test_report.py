"""The HTML report of a toy campaign: what a researcher reads, checked as data and in a browser."""

from __future__ import annotations

import html
import os
import pty
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from cambrian import Campaign, EvalOutcome, Node, NodeStatus
from cambrian.core.records import Candidate
from cambrian.core.version import code_version
from cambrian.plugins.reporting.report import write_report

LONG_ERROR = "Traceback (most recent call last):\n" + "  File \"x.py\", line 1\n" * 40 + \
             "ZeroDivisionError: division by zero"


def toy_config() -> dict:
    return {"name": "toy-report", "seed": 0,
            "domain": {"name": "toy", "options": {"dim": 3, "function": "sphere", "noise": 0.0}},
            "executor": {"name": "local", "options": {"workers": 2}},
            "budget": {"max_nodes": 8},
            # beta drafts with `seeds` (the toy's starting designs stand in for hand-built
            # references): the search yield compares the other designs with them
            "agents": [{"name": "alpha", "scaffold": "random"},
                       {"name": "beta", "scaffold": {"name": "random", "options": {"p_draft": 0.2}},
                        "operators": ["seeds", "vector-perturb"]}]}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    run = tmp_path_factory.mktemp("report") / "run"
    campaign = Campaign.from_config(toy_config(), run)
    campaign.run()
    store = campaign.open_store()
    # Two failures as an evaluator records them: a long traceback and one with markup in it.
    for node_id, error in (("f00000000001", LONG_ERROR), ("f00000000002", "bad <script>alert(1)</script> value")):
        store.add_node(Node(id=node_id, agent="beta", operator="vector-perturb",
                            candidate=Candidate(kind="vector", content=[9.0, 9.0, float(len(error))])))
        store.record_outcome(EvalOutcome(node_id=node_id, status=NodeStatus.FAILED, error=error))
    page = write_report(run)
    return {"run": run, "page": page, "html": page.read_text()}


def section(page: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}"[^>]*>(.*?)</section>', page, re.S)
    assert m, f"no section {sid}"
    return m.group(1)


def test_sections_with_data_are_shown_and_empty_ones_left_out(report):
    ids = re.findall(r'<section id="([\w-]+)"', report["html"])
    assert ids[:3] == ["overview", "agents", "leaderboard"]
    assert {"search-yield", "best_so_far", "search_graph", "failures", "costs", "environment"} <= set(ids)
    # a toy campaign has no sizes, phases, verdict or notes: those sections are not written at all
    assert not {"quality_vs_cost", "aggregation", "scaling", "hidden", "verdict", "phases"} & set(ids)
    assert ">none<" not in report["html"]


def test_the_top_shows_the_config_and_the_code_version(report):
    top = html.unescape(section(report["html"], "overview"))
    assert "max_nodes: 8" in top and "function: sphere" in top and "name: beta" in top
    assert code_version() in top and (code_version().startswith("git ") or "cambrian" in code_version())
    assert re.search(r"started</td><td>20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC", top)


def test_no_epoch_floats_anywhere(report):
    text = re.sub(r'src="data:image/png;base64,[^"]+"', "", report["html"])
    assert not re.search(r"\b1\d{9}(\.\d+)?\b", text)


def test_metrics_are_sortable_numeric_columns(report):
    board = section(report["html"], "leaderboard")
    heads = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", board)
    assert heads[:7] == ["rank", "node", "design", "agent", "origin", "fidelity", "seeds"]
    assert "loss" in heads and "norm" in heads
    rows = re.findall(r"<tr>(.*?)</tr>", board, re.S)[1:]
    assert rows
    for row in rows:
        values = re.findall(r'data-v="([^"]*)"', row)
        assert len(values) == len(heads) - 4 and all(float(v) == float(v) for v in values)


def test_the_search_yield_counts_every_design_against_the_reference(report):
    from cambrian.campaign.search_yield import operator_yield

    campaign = Campaign.resume(report["run"], lock=False)
    nodes = campaign.open_store().nodes(phase="search")
    rows = re.findall(r"<tr>(.*?)</tr>", section(report["html"], "search-yield"), re.S)[1:]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r, re.S) for r in rows]
    want = operator_yield(nodes, campaign.objective)
    assert [(c[0], c[1], int(c[2])) for c in cells] == [(y.agent, y.operator, y.designs) for y in want]
    # every design but the reference and the two stored failures is compared with the reference
    designs = {n.candidate.hash for n in nodes if n.operator != "seeds"}
    assert sum(y.designs for y in want) == len(designs) and sum(y.failed for y in want) == 2
    assert sum(y.compared for y in want) == len(designs) - 2
    assert all(c[4] == f"{y.near} / {y.compared}" for c, y in zip(cells, want))


def test_show_in_a_narrow_terminal_prints_the_search_yield_whole(report):
    """`cambrian show RUN` in a real 70-column terminal: the yield table folds, nothing is cut."""
    import fcntl
    import struct
    import sys
    import termios

    from cambrian.campaign.search_yield import operator_yield

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 70, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([sys.executable, "-m", "cambrian.cli", "show", str(report["run"])],
                            stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command is done
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(timeout=120) == 0, out.decode(errors="replace")[-2000:]
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.decode())
    assert "Search yield" in text and max(len(line) for line in text.splitlines()) <= 70
    campaign = Campaign.resume(report["run"], lock=False)
    want = operator_yield(campaign.open_store().nodes(phase="search"), campaign.objective)
    body = text[text.index("Search yield"):].split("┡")[1].splitlines()[1:]
    cells = [line.split("│")[1:-1] for line in body if line.startswith("│")]
    column = ["".join(c[i].strip() for c in cells) for i in range(8)]  # a folded cell's pieces, in order
    assert column[0] == "".join(y.agent for y in want) and column[1] == "".join(y.operator for y in want)
    assert column[4] == "".join(f"{y.near}/{y.compared}" for y in want)


def test_failure_reasons_per_node_escaped_and_folded_when_long(report):
    fails = section(report["html"], "failures")
    assert "f00000000001" in fails and "f00000000002" in fails
    assert "ZeroDivisionError: division by zero" in fails and "<details>" in fails
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fails and "<script>alert" not in report["html"]


# -- in a browser ----------------------------------------------------------------------------


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _browse(page: Path, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                               "--disable-background-networking", "--disable-component-update",
                               "--no-first-run", f"--user-data-dir={profile}", "--hide-scrollbars",
                               *args, page.as_uri()],
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (Debian: apt-get install "
                                                 "chromium; .ci/run installs it)")
def test_the_page_renders_in_chromium_with_every_figure_and_table(report, tmp_path):
    from PIL import Image

    src = report["html"]
    figures = [k for ks in re.findall(r'data-figures="([^"]+)"', src) for k in ks.split()]
    assert {"leaderboard", "best_so_far", "search_graph", "costs"} <= set(figures)
    dom = _browse(report["page"], "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for key in figures:  # each figure is an <img> the browser built from the page
        assert re.search(rf'<img alt="[^"]*" data-figure="{key}" src="data:image/png;base64,', dom.stdout), key
    assert 'id="leaderboard-table"' in dom.stdout and 'id="yield-table"' in dom.stdout
    assert "ZeroDivisionError" in dom.stdout

    shot = tmp_path / "report.png"
    out = _browse(report["page"], f"--screenshot={shot}", "--window-size=1280,2400")
    assert out.returncode == 0 and shot.is_file(), out.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 2400)
    dark = sum(image.histogram()[:200])  # pixels darker than the white page: text, tables, plots
    assert dark > 0.03 * image.size[0] * image.size[1]
    if os.environ.get("CAMBRIAN_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["CAMBRIAN_KEEP_SCREENSHOT"])


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed")
def test_clicking_a_column_header_sorts_the_table(report, tmp_path):
    board = section(report["html"], "leaderboard")
    heads = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", board)
    col = heads.index("norm") + 1
    page = tmp_path / "click.html"  # the report, plus one click on the norm header after it loads
    page.write_text(report["html"].replace("</body>", "<script>document.querySelector("
                                           f"'#leaderboard-table th:nth-child({col})').click()</script></body>"))
    dom = _browse(page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    table = re.search(r'id="leaderboard-table".*?</table>', dom.stdout, re.S).group(0)
    norms = [float(v) for v in re.findall(rf'<tr>(?:\s*<td[^>]*>.*?</td>){{{col - 1}}}\s*<td[^>]*data-v="([^"]+)"',
                                          table, re.S)]
    assert len(norms) >= 3 and norms == sorted(norms)
    assert 'aria-sort="ascending"' in table
