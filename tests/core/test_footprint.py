"""Clean footprints: no passwd lookup for the current user; nothing left in the temp folder."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

from cambrian import Store

from ..conftest import toy_config

# Simulates a uid with no passwd entry (containers, CI runners with an arbitrary uid) in the
# campaign process and in its evaluation workers, which inherit the import path.
NO_PASSWD = '''import pwd


def _no_entry(uid):
    raise KeyError(f"getpwuid(): uid not found: {uid}")


pwd.getpwuid = _no_entry
'''


def test_a_uid_without_a_passwd_entry_runs_a_campaign(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(NO_PASSWD)
    (tmp_path / "tmp").mkdir()
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(toy_config(budget={"max_nodes": 3})))
    env = {k: v for k, v in os.environ.items() if k != "CAMBRIAN_PRIMITIVES_DIR"}
    env.update(PYTHONPATH=os.pathsep.join([str(hook), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               HOME=str(tmp_path / "home"), TMPDIR=str(tmp_path / "tmp"))
    check = subprocess.run([sys.executable, "-c", "import pwd, os; pwd.getpwuid(os.getuid())"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode != 0 and "uid not found" in check.stderr  # the simulation is in force
    for args in (["plugins"], ["run", str(config), "--out", str(tmp_path / "run"), "--quiet"]):
        out = subprocess.run([sys.executable, "-m", "cambrian.cli", *args], env=env, capture_output=True,
                             text=True, timeout=300, cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-2000:]
    nodes = Store(tmp_path / "run", create=False).nodes(phase="search")
    assert len(nodes) == 3 and all(n.status.value == "done" for n in nodes), [n.error for n in nodes]
    assert list((tmp_path / "tmp").iterdir()) == []  # no fork-server folder left behind


def test_designs_folder_needs_no_passwd(monkeypatch, tmp_path):
    from cambrian.plugins.domains.attention import designs

    monkeypatch.delenv("CAMBRIAN_PRIMITIVES_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert designs.designs_dir() == Path(tmp_path) / ".cambrian" / "primitives"
    monkeypatch.delenv("HOME")
    assert designs.design_primitives() == []  # no folder to read: no registered designs
