"""Fatal LLM errors stop the agent at once, visibly: console, `cambrian show`, report, exit code."""

from __future__ import annotations

import html
import re
import subprocess
import sys

import yaml

from cambrian import Campaign, Store
from tests.llm.conftest import llm_toy_config, scripted_reply
from tests.llm.fake_openai import FakeOpenAI

CLI = [sys.executable, "-m", "cambrian.cli"]
BAD_KEY = (401, '{"error": {"message": "Incorrect API key provided: sk-wrong"}}')


def test_rejected_key_stops_the_agent_at_once_and_fails_the_campaign(tmp_path):
    with FakeOpenAI([BAD_KEY]) as srv:
        llm = {"name": "openai", "options": {"model": "fake-model", "base_url": srv.base_url}}
        result = Campaign.from_config(llm_toy_config(llm), tmp_path / "run").run()
        again = Campaign.resume(tmp_path / "run").run()  # still failed, and says why
    assert again.failed and "every agent stopped on an error: a: " in again.reason
    assert "the key was rejected" in again.reason
    assert len(srv.requests) == 1  # one call, no retries, no further steps
    assert result.failed and result.counts == {}
    assert "the key was rejected (HTTP 401" in result.reason and "sk-wrong" in result.reason
    assert "Incorrect API key" in result.agent_errors["a"]
    stops = Store(tmp_path / "run", create=False).events("agent_stopped")
    assert [(e["agent"], e["payload"]["operator"]) for e in stops] == [("a", "llm-draft")]


def test_one_dead_agent_does_not_fail_a_campaign_whose_other_agent_searches(tmp_path):
    with FakeOpenAI([scripted_reply]) as good, FakeOpenAI([BAD_KEY]) as bad:
        cfg = llm_toy_config({"name": "openai", "options": {"model": "m", "base_url": good.base_url}},
                             budget={"max_nodes": 3})
        broken = {**cfg["agents"][0], "name": "b",
                  "llm": {"name": "openai", "options": {"model": "m", "base_url": bad.base_url}}}
        cfg["agents"].append(broken)
        result = Campaign.from_config(cfg, tmp_path / "run").run()
    assert not result.failed and set(result.agent_errors) == {"b"}
    assert result.counts.get("done", 0) >= 1


def test_cli_says_why_in_run_show_and_report_and_exits_1(tmp_path):
    with FakeOpenAI([(404, '{"error": {"message": "The model `nosuch` does not exist"}}')]) as srv:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(yaml.safe_dump(llm_toy_config(
            {"name": "openai", "options": {"model": "nosuch", "base_url": srv.base_url}})))
        run = subprocess.run([*CLI, "run", str(cfg), "--out", str(tmp_path / "r"), "--quiet"],
                             capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "agent a stopped: llm 'openai' (nosuch at http" in run.stderr
    assert "not found (HTTP 404; check the model name" in run.stderr and "Traceback" not in run.stderr
    show = subprocess.run([*CLI, "show", str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert show.returncode == 0 and "agent a stopped: llm 'openai'" in show.stdout
    assert "does not exist" in show.stdout
    page = html.unescape((tmp_path / "r" / "report.html").read_text())
    agents = re.search(r'<section id="agents".*?</section>', page, re.S).group(0)
    assert re.search(r"<td>a</td>.*<td class=\"reason stop-error\">error: llm 'openai' \(nosuch at http.*"
                     r"not found \(HTTP 404.*does not exist</td>", agents, re.S)
