"""bench/landscape.py's designs: ``name=@RUN_DIR`` (a campaign's best find as stored), a pattern
with options as `show` writes them, and one line with exit 2 for a run directory that is not a
campaign or a layer that is not ``name(key=value ...)``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from cambrian import Campaign, NodeStatus
from cambrian.plugins.reporting.summary import design_summary
from tests.conftest import toy_config, with_options

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "landscape.py"


def load_landscape():
    spec = importlib.util.spec_from_file_location("landscape", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_at_run_dir_is_the_campaigns_best_find(tmp_path):
    run = tmp_path / "run"
    campaign = Campaign.from_config(toy_config(), run)
    campaign.run()
    done = [n for n in campaign.open_store().nodes(phase="search") if n.status == NodeStatus.DONE]
    assert len(done) >= 2
    best = min(done, key=lambda n: n.metrics["loss"].value)  # toy sphere: lower loss is better
    assert load_landscape().content(f"@{run}") == best.candidate.content


def test_a_run_dir_without_a_campaign_is_one_line_and_exit_2(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), f"x=@{tmp_path / 'nothing'}", "--seeds", "1000"],
                         capture_output=True, text=True, check=False, timeout=300)
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert "no campaign store" in last and "nothing" in last
    assert "Traceback" not in out.stderr


def test_a_pattern_with_options_is_the_design_show_labels_so():
    """The label `show` gives an option edit of the Nemotron-style reference, pasted back as a
    pattern, is that very spec; the reference's own label is the reference."""
    landscape = load_landscape()
    ref = landscape.content("nemotron")
    wide = with_options(ref, 0, expand=4)
    assert landscape.content(design_summary(wide)) == wide
    assert landscape.content("m2(expand=4),sw,m2,sw,att(n_heads=2),sw,m2,sw") == wide
    assert landscape.content(design_summary(ref)) == ref


def test_an_option_that_is_not_key_value_is_one_line_and_exit_2():
    out = subprocess.run([sys.executable, str(SCRIPT), "x=m2(expand),sw", "--seeds", "1000"],
                         capture_output=True, text=True, check=False, timeout=300)
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert "'expand' is not key=value" in last and "Traceback" not in out.stderr
