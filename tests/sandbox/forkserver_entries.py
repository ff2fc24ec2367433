"""Entry points the fork-server tests run inside forked workers (``module:function(argv)``)."""

from __future__ import annotations

import ctypes
import json
import os
import random
import socket
import sys
import time


def _autogroup() -> str | None:
    try:
        with open("/proc/self/autogroup") as f:
            return f.read().split()[-1]  # "/autogroup-N nice K": K
    except OSError:
        return None


def report(argv: list[str]) -> int:
    """Write what the worker sees to report.json; exit with code argv[1]."""
    port = int(argv[0])
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        network = "reached"
    except OSError as exc:
        network = f"blocked: {exc}"
    info = {"pid": os.getpid(), "cwd": os.getcwd(), "env": dict(os.environ), "network": network,
            "random": random.random(), "torch_threads": _torch_threads(), "policy": os.sched_getscheduler(0), "autogroup": _autogroup()}
    with open("report.json", "w") as f:
        json.dump(info, f)
    print("to stdout")
    print("to stderr", file=sys.stderr)
    return int(argv[1])


def _torch_threads() -> int | None:
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def daemon_then_sleep(argv: list[str]) -> int:
    """Leave a grandchild in its own session (pid written to daemon.pid), then sleep."""
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            with open("daemon.pid", "w") as f:
                f.write(str(_host_pid()))
            time.sleep(600)
        os._exit(0)
    time.sleep(600)
    return 0


def _host_pid() -> int:
    """This process's pid as the test (outside the PID namespace) sees it."""
    with open("/proc/self/stat") as f:  # /proc is the host's: not remounted in the namespace
        return int(f.read().split()[0])


def hog(argv: list[str]) -> int:
    blocks = [bytearray(64 * 2**20) for _ in range(int(argv[0]))]
    return len(blocks) * 0


def segfault(argv: list[str]) -> int:
    ctypes.string_at(0)
    return 0


def loaded(argv: list[str]) -> int:
    """Write which of the modules named in argv the worker already has (from the server)."""
    with open("loaded.json", "w") as f:
        json.dump({m: m in sys.modules for m in argv}, f)
    return 0
