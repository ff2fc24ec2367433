"""The example third-party package: installed for real, found through its entry point."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cambrian import Store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "cambrian-example-plugin"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    """pip-install the example into a temporary target directory; return an env that sees it.

    It is built from a copy in a temporary folder: setuptools writes build/ and *.egg-info
    beside the sources, and the suite writes nothing into the checkout."""
    target = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("src") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, timeout=300,
                   capture_output=True)
    assert list(target.glob("cambrian_example_plugin-*.dist-info"))
    env = dict(os.environ, PYTHONPATH=str(target))
    env.pop("CAMBRIAN_LOAD_PLUGINS", None)
    return env


def test_cambrian_plugins_lists_the_example(plugin_env):
    out = subprocess.run([sys.executable, "-m", "cambrian.cli", "plugins"], env=plugin_env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [ln for ln in out.stdout.splitlines() if "example" in ln]
    assert any("hillclimb" in r and "0.1.0" in r for r in rows)
    assert any("onemax" in r for r in rows)


def test_cambrian_run_uses_the_example(plugin_env, tmp_path):
    run = tmp_path / "run"
    out = subprocess.run([sys.executable, "-m", "cambrian.cli", "run", str(EXAMPLE / "onemax.yaml"),
                          "--out", str(run), "--quiet", "--set", "budget.max_nodes=12"],
                         env=plugin_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    nodes = Store(run, create=False).nodes()
    assert len(nodes) == 12
    assert {n.operator for n in nodes} == {"bits-random", "bits-flip"}
    # Ten single-bit flips of the best node: the climber beats its two drafts.
    ones = [n.metrics["ones"].value for n in nodes]
    assert max(ones) > max(ones[:2])


def test_load_plugins_env_can_exclude_it(plugin_env):
    env = dict(plugin_env, CAMBRIAN_LOAD_PLUGINS="")
    out = subprocess.run([sys.executable, "-m", "cambrian.cli", "plugins"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "hillclimb" not in out.stdout
