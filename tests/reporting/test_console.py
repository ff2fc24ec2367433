"""The CLI's consoles: a log file or a pipe gets wide rows, a terminal and COLUMNS decide otherwise."""

from __future__ import annotations

import io
import os
import pty

from rich.table import Table

from cambrian.plugins.reporting.console import LOG_WIDTH, make_console


def test_a_pipe_gets_a_wide_terminal_width_and_a_design_row_stays_on_one_line(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    buf = io.StringIO()  # not a terminal, like `cambrian run --quiet > run.log`
    monkeypatch.setattr("sys.stdout", buf)
    console = make_console()
    assert console.width == LOG_WIDTH
    design = ", ".join(["mamba", "mamba2", "swiglu", "attention"] * 3)
    t = Table("rank", "design", "score")
    t.add_row("1", design, "2.1872 ± 0.0055 (5 seeds)")
    console.print(t)
    assert any(design in line for line in buf.getvalue().splitlines())  # rich's 80 columns would wrap it


def test_columns_and_a_terminal_still_decide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert make_console().width == 60
    monkeypatch.delenv("COLUMNS")
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as tty:
            monkeypatch.setattr("sys.stdout", tty)
            console = make_console()
            assert console.is_terminal and console.width != LOG_WIDTH  # the terminal's own size
    finally:
        os.close(leader)
        os.close(follower)
