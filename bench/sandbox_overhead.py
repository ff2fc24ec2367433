"""Start-up cost of the sandbox's protections, against a bare subprocess side by side.

Runs the same tiny Python command N times each way, interleaved:
  bare        subprocess.run([python, -I, -c, ...])
  sandboxed   run_sandboxed(...): rlimits, setsid, network + PID namespaces
  unprivileged  run_sandboxed(..., unprivileged=True): + chown, setpriv uid drop, uid cleanup
Prints one line: median seconds of each and the ratios to bare.

    .venv/bin/python bench/sandbox_overhead.py --runs 20
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cambrian.execution import sandbox
from cambrian.core.config import SandboxLimits

CMD = [sys.executable, "-I", "-c", "import json; json.dumps({'x': 1})"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    limits = SandboxLimits(timeout_s=60)
    sandbox.namespace_prefix(False), sandbox._setpriv()  # one-off probes, outside the timing
    times: dict[str, list[float]] = {"bare": [], "sandboxed": [], "unprivileged": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            t = time.perf_counter()
            subprocess.run(CMD, check=True, capture_output=True)
            times["bare"].append(time.perf_counter() - t)
            for name, unpriv in (("sandboxed", False), ("unprivileged", True)):
                t = time.perf_counter()
                res = sandbox.run_sandboxed(CMD, Path(tmp) / f"{name}{i}", limits, unprivileged=unpriv)
                times[name].append(time.perf_counter() - t)
                assert res.returncode == 0, res.stderr_tail
    med = {k: statistics.median(v) for k, v in times.items()}
    iso = sandbox.namespace_prefix(False)
    print(f"sandbox_overhead runs={args.runs} net_ns={iso[1]} pid_ns={iso[2]} "
          f"uid_drop={sandbox._setpriv() is not None} bare={med['bare'] * 1e3:.1f}ms "
          f"sandboxed={med['sandboxed'] * 1e3:.1f}ms ({med['sandboxed'] / med['bare']:.2f}x) "
          f"unprivileged={med['unprivileged'] * 1e3:.1f}ms ({med['unprivileged'] / med['bare']:.2f}x)")


if __name__ == "__main__":
    main()
