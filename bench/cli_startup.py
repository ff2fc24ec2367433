"""`cambrian --help` wall time against a reference, run alternately, median of the pairs.

The reference is another checkout (``--before DIR``, e.g. ``git archive`` of an older commit
unpacked there) or, by default, this checkout made to import the campaign graph
(``cambrian.campaign.coordinator``: langgraph and the LangChain it pulls) before the command,
which is what every command paid while the CLI imported the graph at its top. Each run is a
fresh interpreter; the two versions alternate so both see the same machine load.

    .venv/bin/python bench/cli_startup.py [--before /tmp/<v>] [--pairs 5] [--args "--help"]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
PROBE = "import sys; from cambrian.cli import main\ntry:\n    main({args!r})\nexcept SystemExit:\n    pass\n"


def command(args: list[str], preload: str = "") -> list[str]:
    return [sys.executable, "-c", preload + PROBE.format(args=args)]


def wall(cmd: list[str], tree: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree))
    t = time.perf_counter()
    subprocess.run(cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def imports_langgraph(cmd: list[str], tree: Path) -> bool:
    check = cmd[:2] + [cmd[2] + "print('langgraph' in sys.modules, file=sys.stderr)\n"]
    out = subprocess.run(check, cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)), capture_output=True, text=True)
    return out.stderr.strip().splitlines()[-1] == "True"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", type=Path, help="the reference checkout (default: this one, graph preloaded)")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--args", default="--help", help="the cambrian command line to time")
    opts = ap.parse_args()
    args = shlex.split(opts.args)
    now = (command(args), HERE)
    if opts.before:
        ref, label = (command(args), opts.before.resolve()), f"{opts.before}"
    else:
        ref, label = (command(args, "import cambrian.campaign.coordinator\n"), HERE), "graph preloaded"
    wall(*now), wall(*ref)  # warm the file cache for both
    times: dict[str, list[float]] = {"now": [], "ref": []}
    for _ in range(opts.pairs):
        times["now"].append(wall(*now))
        times["ref"].append(wall(*ref))
    med_now, med_ref = statistics.median(times["now"]), statistics.median(times["ref"])
    print(f"cambrian {opts.args}: this checkout {med_now:.2f} s (langgraph imported: {imports_langgraph(*now)}), "
          f"reference ({label}) {med_ref:.2f} s (langgraph imported: {imports_langgraph(*ref)}); "
          f"median of {opts.pairs} alternating pairs; this / reference {med_now / med_ref:.2f}x "
          f"(runs: {', '.join(f'{t:.2f}' for t in times['now'])} vs {', '.join(f'{t:.2f}' for t in times['ref'])})")


if __name__ == "__main__":
    main()
