"""Start-up cost of the sandbox's protections, against a bare subprocess side by side.

Runs the same tiny Python command N times each way, interleaved:
  bare        subprocess.run([python, -I, -c, ...])
  sandboxed   run_sandboxed(...): rlimits, setsid, network + PID namespaces
  unprivileged  run_sandboxed(..., unprivileged=True): + chown, setpriv uid drop, uid cleanup,
                the tighter box (private /proc, every world-writable dir read-only, hidden
                paths, the disk-quota watch), its work dir under an evals/ folder, so the box
                also covers that folder and binds the work dir back (other evaluations unseen)
  unconfined  the same box without that cover (evals_root: none), for the ratio of the cover
  previous    the same, with the box as it was before the tighter one (only /tmp and
              /var/tmp read-only, the host's /proc, no disk watch), for the ratio
Prints one line: median seconds of each, the ratios to bare, tighter / previous and
confined / unconfined.

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
    times: dict[str, list[float]] = {"bare": [], "sandboxed": [], "unprivileged": [], "previous": [],
                                     "unconfined": []}
    confine = sandbox.evals_root
    tight = (sandbox.MOUNT_FLAGS, sandbox.WORLD_WRITABLE, sandbox.SandboxProcess._watch_disk)
    previous = (("--mount",), ("/tmp", "/var/tmp"), lambda self: self._waiter.join(self.limits.timeout_s))
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o711)  # the dropped uid must reach its work dir
        hide = [Path(tmp) / "hidden"]
        hide[0].mkdir()
        for i in range(args.runs):
            t = time.perf_counter()
            subprocess.run(CMD, check=True, capture_output=True)
            times["bare"].append(time.perf_counter() - t)
            for name, unpriv in (("sandboxed", False), ("unprivileged", True), ("previous", True),
                                 ("unconfined", True)):
                box = previous if name == "previous" else tight
                sandbox.MOUNT_FLAGS, sandbox.WORLD_WRITABLE, sandbox.SandboxProcess._watch_disk = box
                sandbox.evals_root = confine if name == "unprivileged" else (lambda _: "")
                work = Path(tmp) / "evals" / f"{name}{i}" / "work"  # where an evaluation's runs are
                work.parent.parent.mkdir(mode=0o711, exist_ok=True)
                work.parent.mkdir(mode=0o711)
                t = time.perf_counter()
                res = sandbox.run_sandboxed(CMD, work, limits, unprivileged=unpriv,
                                            hide=hide if name in ("unprivileged", "unconfined") else ())
                times[name].append(time.perf_counter() - t)
                assert res.returncode == 0, res.stderr_tail
        sandbox.MOUNT_FLAGS, sandbox.WORLD_WRITABLE, sandbox.SandboxProcess._watch_disk = tight
        sandbox.evals_root = confine
    med = {k: statistics.median(v) for k, v in times.items()}
    iso = sandbox.namespace_prefix(False)
    print(f"sandbox_overhead runs={args.runs} net_ns={iso[1]} pid_ns={iso[2]} "
          f"uid_drop={sandbox._setpriv() is not None} bare={med['bare'] * 1e3:.1f}ms "
          f"sandboxed={med['sandboxed'] * 1e3:.1f}ms ({med['sandboxed'] / med['bare']:.2f}x) "
          f"unprivileged={med['unprivileged'] * 1e3:.1f}ms ({med['unprivileged'] / med['bare']:.2f}x) "
          f"previous_box={med['previous'] * 1e3:.1f}ms ({med['previous'] / med['bare']:.2f}x) "
          f"tighter/previous={med['unprivileged'] / med['previous']:.3f}x "
          f"unconfined={med['unconfined'] * 1e3:.1f}ms confined/unconfined={med['unprivileged'] / med['unconfined']:.3f}x")


if __name__ == "__main__":
    main()
