"""A non-editable install (what a user's `pip install cambrian` gets): it ships the C++ kernel
sources as package data and builds the kernels from them, and it finds its built-in plugins
through its own entry points (no source checkout beside it)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # one pip install of the package (tens of seconds)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """pip-install a copy of the source (so no build files land in the checkout) into a target dir."""
    src = tmp_path_factory.mktemp("src")
    shutil.copytree(ROOT / "cambrian", src / "cambrian", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True, timeout=600, capture_output=True)
    return target


def run(code: str, target: Path, **env: str) -> subprocess.CompletedProcess:
    environ = dict(os.environ, PYTHONPATH=str(target), **env)
    environ.pop("CAMBRIAN_NO_CPP_EXT", None)
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True,
                          timeout=600, cwd=target)


def test_the_cpp_sources_ship_and_the_kernels_build_from_them(installed, tmp_path):
    csrc = installed / "cambrian" / "architectures" / "modules" / "csrc"
    assert {"fused_ops.cpp", "selective_scan.cpp", "vexp.h"} <= {p.name for p in csrc.iterdir()}
    code = ("import warnings; warnings.simplefilter('error')\n"
            "import torch\n"
            "from cambrian.architectures.modules import cpp_ext, fused\n"
            "print(cpp_ext.CSRC)\n"
            "assert fused.available(), 'the fused kernels did not build'\n"
            "x, w = torch.randn(4, 8), torch.rand(8) + 0.5\n"
            "ref = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w\n"
            "assert torch.allclose(fused.rms_norm(x, w, 1e-5), ref, atol=1e-5)\n")
    out = run(code, installed, CAMBRIAN_EXT_DIR=str(tmp_path / "ext"))  # an empty cache: a real build
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[0] == str(csrc)  # the packaged sources, not the checkout's
    assert list((tmp_path / "ext").rglob("cambrian_fused_ops_*.so"))


def test_the_builtins_come_from_the_installed_entry_points(installed):
    code = ("from cambrian.core import plugins\n"
            "assert plugins._declared_in_checkout() == {}, 'not a checkout'\n"
            "pm = plugins.get_plugin_manager()\n"
            "assert not pm.failures, pm.failures\n"
            "print(pm.registry()['scaffold']['random'].plugin, sorted(pm.names('domain')))\n")
    out = run(code, installed)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("scaffolds.random") and "'compose'" in out.stdout and "'toy'" in out.stdout
