"""The consoles the CLI and the packs' commands print to."""

from __future__ import annotations

import os
import sys

from rich.console import Console

# Rich lays out for 80 columns when it does not write to a terminal: in a log file or a pipe
# (`cambrian run --quiet > run.log`, CI) a leaderboard's design column then wraps one layer
# per line. Such output gets the width of a wide terminal instead; COLUMNS still wins.
LOG_WIDTH = 160


def make_console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=LOG_WIDTH if wide else None)
