import os
import signal
import subprocess
import sys
import time

import pytest

# Evaluation workers and tests use one thread each: 2-core machines, several processes.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# The suite writes only to temporary folders: hypothesis keeps its files (example database,
# constants cache) in the temporary folder, never in the checkout's .hypothesis/.
try:
    import tempfile

    from hypothesis import configuration as _hypothesis_configuration

    _hypothesis_configuration.set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "cambrian-hypothesis"))
except ImportError:  # hypothesis is a dev extra
    pass


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if item.get_closest_marker("gpu") is not None:  # a marker, not a name: a folder called gpu is no mark
            item.add_marker(skip)


@pytest.fixture
def fresh_pm(monkeypatch):
    """A plugin manager built from scratch (and the process-wide one reset afterwards)."""
    from cambrian.core.plugins import get_plugin_manager, reset_plugin_manager

    reset_plugin_manager()
    yield get_plugin_manager()
    reset_plugin_manager()


def toy_config(**over):
    """A small toy campaign config as a dict."""
    cfg = {
        "name": "t",
        "seed": 0,
        "domain": {"name": "toy", "options": {"dim": 3, "function": "sphere"}},
        "executor": {"name": "local", "options": {"workers": 2}},
        "budget": {"max_nodes": 6},
        "agents": [{"name": "a", "scaffold": "random"}],
    }
    cfg.update(over)
    return cfg


def with_options(spec: dict, index: int, **options) -> dict:
    """A copy of a spec's content with layer ``index``'s options updated (an option edit)."""
    layers = [dict(layer) for layer in spec["layers"]]
    layers[index] = {**layers[index], "options": {**layers[index].get("options", {}), **options}}
    return {**spec, "layers": layers}


def kill_cli_run_when(args, ready, timeout_s, poll_s=0.2, env=None):
    """Start ``cambrian ARGS`` in its own session, poll ``ready()`` until it holds (or the
    timeout), then SIGKILL the whole process group, as a crash or an OOM kill would."""
    proc = subprocess.Popen([sys.executable, "-m", "cambrian.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + timeout_s
    while time.time() < deadline and not ready():
        time.sleep(poll_s)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


from tests.sandbox_dirs import open_tmp_path, open_tmp_root  # noqa: E402,F401 - fixtures
