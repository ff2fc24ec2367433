"""What the packs' commands modules share: the console and a pack's command group."""

from __future__ import annotations

import typer
from cambrian.plugins.reporting.console import make_console

console = make_console()


def pack_group(app: typer.Typer, name: str, help: str) -> typer.Typer:
    """The group ``cambrian NAME ...`` on the root ``app``, for a pack's commands."""
    group = typer.Typer(help=help, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group
