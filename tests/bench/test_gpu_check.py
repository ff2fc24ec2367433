"""bench/gpu_check.sh's plumbing without a GPU: it parses, its dry run lists every step with the
device's arguments, and (slow) its CPU mode runs the same steps on tiny sizes to the end."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_check.sh"
STEPS = ("imports", "tests", "train_throughput", "gpu_mfu", "mixers", "scaling_step")


def run(tmp_path: Path, timeout: float, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "PY": sys.executable, "OUT": str(tmp_path / "out"), "WHEELS": str(tmp_path / "none"),
            "SITE": str(tmp_path / "site"), "SCRATCH": str(tmp_path / "scratch"), **env}
    return subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=full, capture_output=True, text=True, check=False,
                          timeout=timeout)


def test_script_parses():
    assert shutil.which("bash")
    out = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("device, want", [
    ("cuda", {"train_throughput": "--device cuda --steps 20", "gpu_mfu": "--device cuda --steps 10",
              "mixers": "--device cuda --steps 10", "scaling_step": "--device cuda --out"}),
    ("cpu", {"train_throughput": "--device cpu --steps 1", "gpu_mfu": "--device cpu --small",
             "mixers": "--skip-hf --batch 2 --seq 64", "scaling_step": "--tiny"}),
])
def test_dry_run_lists_every_step_with_the_devices_arguments(tmp_path, device, want):
    out = run(tmp_path, 60, DRY_RUN="1", DEVICE=device)
    assert out.returncode == 0, out.stderr
    lines = {ln.split(" (limit")[0][4:]: ln for ln in out.stdout.splitlines()
             if ln.startswith("=== ") and "(limit " in ln}
    assert [s for s in STEPS if s in lines] == list(STEPS), out.stdout
    for step, args in want.items():
        assert args in lines[step], lines[step]
    assert "examples/compose-gpu.yaml" in lines["scaling_step"] and "scratch/scaling_step" in lines["scaling_step"]
    limits = [int(ln.split("(limit ")[1].split("s)")[0]) for ln in lines.values()]
    if device == "cuda":  # the steps' time limits fit in ten minutes with the machine's start
        assert sum(limits) <= 540
    else:  # the CPU mode gives a busy CPU four times as long
        assert sum(limits) <= 4 * 540
    assert "failed steps: none" in out.stdout and (tmp_path / "out" / "gpu_check.log").is_file()
    # every gpu-marked test file is run by the tests step
    marked = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                    if re.search(r"^(pytestmark = pytest\.mark\.gpu|@pytest\.mark\.gpu)", p.read_text(), re.MULTILINE))
    assert all(m in lines["tests"] for m in marked) and "tests/architectures/test_kernels_gpu.py" in marked


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("CAMBRIAN_SLOW_TESTS"), reason="about 3 minutes on 2 busy cores: "
                    "CAMBRIAN_SLOW_TESTS=1 runs it")
def test_cpu_mode_runs_every_step_on_tiny_sizes(tmp_path):
    run(tmp_path, 900, DEVICE="cpu")
    log = (tmp_path / "out" / "gpu_check.log").read_text()
    assert "failed steps: none" in log, log[-4000:]
    for step in STEPS:
        assert f"=== {step}: rc=0" in log, step
        assert (tmp_path / "out" / f"{step}.log").is_file()
    assert "train_throughput: cambrian llama" in log and "gpu_mfu: llama" in log
    assert "mixers: cambrian mamba" in log and "scaling_step: rung 125m on cpu" in log
    assert "same tokens and bpb" in log
    records = list((tmp_path / "out" / "scaling_step").rglob("runtime.json"))
    assert records and not list((tmp_path / "out").rglob("*.pt"))  # records back, checkpoints not
